/**
 * Finite-difference gradient checks: the GPU's backward pass against central
 * differences of an independent float64 CPU forward. L = sum(w · f(x)) with
 * random w, so every output element's gradient path is exercised.
 */
import * as E from "../../mod.ts";
import { assertClose } from "./assert.ts";
import { randn, rng } from "./reference.ts";

export interface GradInput {
  data: Float32Array | Int32Array;
  shape: number[];
  /** false for indices, masks and other inputs without a gradient. */
  grad?: boolean;
}

export async function gradcheck(
  what: string,
  inputs: GradInput[],
  gpuFn: (...xs: E.Tensor[]) => E.Tensor,
  cpuFn: (...xs: Float64Array[]) => ArrayLike<number>,
  { h = 1e-4, rtol = 2e-3, atol = 2e-4, seed = 7 } = {},
): Promise<void> {
  const leaves = inputs.map((inp) => {
    const t = E.tensor(inp.data, inp.shape);
    if (inp.grad !== false) E.requiresGrad(t);
    return t;
  });
  const out = gpuFn(...leaves);
  const w = randn(out.size, rng(seed));
  const loss = E.sum(E.mul(out, E.tensor(w, out.shape)));
  E.backward(loss);

  const f64 = inputs.map((inp) => Float64Array.from(inp.data));
  const L = () => {
    const y = cpuFn(...f64);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += w[i] * y[i];
    return s;
  };
  assertClose(await out.data(), cpuFn(...f64), {
    what: `${what}: forward`,
    rtol: 1e-4,
    atol: 1e-5,
  });
  for (let k = 0; k < inputs.length; k++) {
    if (inputs[k].grad === false) continue;
    const numeric = new Float64Array(f64[k].length);
    for (let j = 0; j < numeric.length; j++) {
      const x0 = f64[k][j];
      f64[k][j] = x0 + h;
      const up = L();
      f64[k][j] = x0 - h;
      const down = L();
      f64[k][j] = x0;
      numeric[j] = (up - down) / (2 * h);
    }
    const g = leaves[k].grad;
    if (!g) throw new Error(`${what}: input ${k} got no gradient`);
    assertClose(await g.data(), numeric, { what: `${what}: d/d input ${k}`, rtol, atol });
  }
  for (const t of [...leaves, out, loss]) t.destroy();
}
