/** AdamW, clipping and schedules against float64 references; state save and restore. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import { assertClose } from "./support/assert.ts";
import { randn, rng } from "./support/reference.ts";
import "./support/gpu.ts";

/** torch.optim.AdamW's update, in float64. */
function adamwRef(
  p: Float64Array,
  grads: Float32Array[],
  { lr, b1, b2, eps, wd, maxNorm }: {
    lr: number;
    b1: number;
    b2: number;
    eps: number;
    wd: number;
    maxNorm: number;
  },
): Float64Array {
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  grads.forEach((g, t) => {
    const norm = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
    const coef = maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
    const step = t + 1;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] * coef;
      p[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - b2 ** step) + eps;
      p[i] -= (lr / (1 - b1 ** step)) * m[i] / denom;
    }
  });
  return p;
}

Deno.test("AdamW with clipping matches torch.optim.AdamW's update in float64 over 5 steps", async () => {
  const r = rng(5);
  const init = randn(37, r);
  for (const maxNorm of [0, 0.5]) {
    const p = E.requiresGrad(E.tensor(init, [37]));
    const opt = new E.AdamW([p], {
      lr: 0.05,
      betas: [0.9, 0.95],
      eps: 1e-8,
      weightDecay: 0.1,
      maxGradNorm: maxNorm,
    });
    const grads = Array.from({ length: 5 }, () => randn(37, r));
    for (const g of grads) {
      p.grad = E.keep(E.tensor(g));
      opt.stepUpdate();
      opt.zeroGrad();
    }
    const want = adamwRef(Float64Array.from(init), grads, {
      lr: 0.05,
      b1: 0.9,
      b2: 0.95,
      eps: 1e-8,
      wd: 0.1,
      maxNorm,
    });
    assertClose(await p.data(), want, { what: `adamw maxNorm=${maxNorm}`, rtol: 1e-5, atol: 1e-6 });
    const lastNorm = Math.sqrt(grads[4].reduce((s, x) => s + x * x, 0));
    assertClose([await opt.gradNorm()], [lastNorm], { what: "grad norm", rtol: 1e-5 });
    opt.destroy();
  }
});

Deno.test("global-norm clipping spans every parameter", async () => {
  const a = E.requiresGrad(E.tensor([0, 0]));
  const b = E.requiresGrad(E.tensor(new Float32Array(5000)));
  // Many chunks of partial sums, and a last chunk cut short.
  const cData = Float32Array.from({ length: 300_001 }, (_, i) => Math.sin(i) * 0.01);
  const c = E.requiresGrad(E.tensor(new Float32Array(cData.length)));
  const opt = new E.AdamW([a, b, c], { lr: 1, maxGradNorm: 1 });
  a.grad = E.keep(E.tensor([3, 0]));
  b.grad = E.keep(E.tensor(new Float32Array(5000).fill(0.04)));
  c.grad = E.keep(E.tensor(cData));
  opt.stepUpdate();
  const [coef, norm] = await opt.clipState.data();
  const cSquares = cData.reduce((s, x) => s + x * x, 0);
  assertClose([norm], [Math.sqrt(9 + 5000 * 0.0016 + cSquares)], { rtol: 1e-5 });
  assertClose([coef], [1 / (norm + 1e-6)], { rtol: 1e-5 });
  opt.destroy();
});

Deno.test("parameter groups set their own weight decay", async () => {
  const a = E.requiresGrad(E.tensor([1]));
  const b = E.requiresGrad(E.tensor([1]));
  const opt = new E.AdamW([{ params: [a] }, { params: [b], weightDecay: 0 }], {
    lr: 0.1,
    weightDecay: 0.5,
  });
  a.grad = E.keep(E.tensor([0]));
  b.grad = E.keep(E.tensor([0]));
  opt.stepUpdate();
  assertClose(await a.data(), [0.95]);
  assertClose(await b.data(), [1]);
  opt.destroy();
});

Deno.test("warm-up then cosine or linear decay, as transformers' schedulers", () => {
  const cfg = { warmupSteps: 10, totalSteps: 110 };
  assert.equal(E.lrFactor(0, { kind: "cosine", ...cfg }), 0);
  assert.equal(E.lrFactor(5, { kind: "cosine", ...cfg }), 0.5);
  assert.equal(E.lrFactor(10, { kind: "cosine", ...cfg }), 1);
  assertClose([E.lrFactor(60, { kind: "cosine", ...cfg })], [0.5]);
  assertClose([E.lrFactor(35, { kind: "cosine", ...cfg })], [0.5 * (1 + Math.cos(Math.PI * 0.25))]);
  assertClose([E.lrFactor(110, { kind: "cosine", ...cfg })], [0], { atol: 1e-12 });
  assertClose([E.lrFactor(60, { kind: "linear", ...cfg })], [0.5]);
  assertClose([E.lrFactor(110, { kind: "linear", ...cfg, minRatio: 0.1 })], [0.1]);
  assert.equal(E.lrFactor(50, { kind: "constant", ...cfg }), 1);
});

Deno.test("optimizer state saved and restored continues bit-identically", async () => {
  const r = rng(8);
  const init = randn(21, r);
  const grads = Array.from({ length: 6 }, () => randn(21, r));
  const run = async (restoreAt: number | null) => {
    let p = E.requiresGrad(E.tensor(init, [21]));
    let opt = new E.AdamW([p], { lr: 0.01, maxGradNorm: 1 });
    for (let s = 0; s < 6; s++) {
      if (s === restoreAt) {
        const state = await opt.stateDict();
        const weights = await p.data();
        opt.destroy();
        p.destroy();
        p = E.requiresGrad(E.tensor(weights, [21]));
        opt = new E.AdamW([p], { lr: 0.01, maxGradNorm: 1 });
        opt.loadStateDict(state);
      }
      p.grad = E.keep(E.tensor(grads[s]));
      opt.stepUpdate();
      opt.zeroGrad();
    }
    const out = await p.data();
    opt.destroy();
    return Array.from(out);
  };
  assert.deepEqual(await run(3), await run(null));
});
