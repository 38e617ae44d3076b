/**
 * Kernel benchmarks. Each iteration records REPS dispatches of one op and
 * waits once (a GPU wait costs ~10 ms in Deno, so one dispatch per wait
 * would time the wait). Names give the shape and REPS so that
 * `deno task bench:report` can turn `deno bench --json` into GFLOP/s or GB/s.
 */
import * as E from "../mod.ts";
import { gpu } from "../src/gpu/mod.ts";

await E.initGpu();
const REPS = 10;

function rand(n: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2;
  });
}

function gpuBench(name: string, group: string, setup: () => () => void) {
  const run = setup();
  // Compile the pipelines and warm the pool before timing.
  E.tidy(run);
  Deno.bench({
    name: `${name} ×${REPS}`,
    group,
    async fn(b) {
      b.start();
      for (let i = 0; i < REPS; i++) E.tidy(run);
      await gpu().recorder.sync();
      b.end();
    },
  });
}

function matmulBench(
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  group: string,
  batch = 1,
) {
  const tag = `${transA ? "t" : "n"}${transB ? "t" : "n"}`;
  gpuBench(`matmul ${batch > 1 ? `${batch}x` : ""}${M}x${N}x${K} ${tag}`, group, () => {
    const a = E.keep(E.tensor(rand(batch * M * K), transA ? [batch, K, M] : [batch, M, K]));
    const b = E.keep(E.tensor(rand(batch * K * N, 2), transB ? [batch, N, K] : [batch, K, N]));
    return () => void E.matmul(a, b, { transA, transB });
  });
}

for (const n of [256, 512, 1024]) matmulBench(n, n, n, false, false, "matmul square");

// A transformer layer's linears: T tokens (batch 32 × seq 128), d and 4d.
for (const d of [128, 256]) {
  const T = 4096;
  matmulBench(T, 4 * d, d, false, true, `linear d=${d}`); // forward x·Wᵀ
  matmulBench(T, d, 4 * d, false, false, `linear d=${d}`); // backward dX = dY·W
  matmulBench(4 * d, d, T, true, false, `linear d=${d}`); // backward dW = dYᵀ·X
}

// Attention for batch 32, 4 heads, seq 128, head_dim 32.
gpuBench("attention 32x4x128x32 causal", "attention", () => {
  const shape = [32, 4, 128, 32];
  const q = E.keep(E.tensor(rand(32 * 4 * 128 * 32), shape));
  const k = E.keep(E.tensor(rand(32 * 4 * 128 * 32, 2), shape));
  const v = E.keep(E.tensor(rand(32 * 4 * 128 * 32, 3), shape));
  return () => void E.attention(q, k, v, { causal: true });
});

// Softmax with cross-entropy over a 4096 × vocab logits block, forward and backward.
for (const V of [64, 512]) {
  gpuBench(`cross_entropy 4096x${V} fwd+bwd`, "cross entropy", () => {
    const logits = E.keep(E.requiresGrad(E.tensor(rand(4096 * V), [4096, V])));
    const labels = E.keep(E.tensor(Int32Array.from({ length: 4096 }, (_, i) => i % V), [4096]));
    return () => {
      E.backward(E.crossEntropy(logits, labels));
      logits.grad?.destroy();
      logits.grad = null;
    };
  });
}

// AdamW over the reference model's 795,776 parameters, in 4 tensors.
gpuBench("adamw 795776 params", "adamw", () => {
  const sizes = [8192, 194816 * 2, 194816 * 2, 8192 + 128];
  const params = sizes.map((n, i) => E.keep(E.requiresGrad(E.tensor(rand(n, i + 1)))));
  const opt = new E.AdamW(params, { lr: 1e-3, maxGradNorm: 1 });
  for (const p of params) p.grad = E.keep(E.tensor(rand(p.size, 9)));
  return () => opt.stepUpdate();
});
