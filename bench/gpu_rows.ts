/**
 * The row kernels and reductions in each flavour side by side, on the shapes of a Qwen2.5-0.5B
 * student (vocabulary 151,936, hidden 896, 14 heads of 64), timed with GPU timestamps:
 * `deno run -A bench/gpu_rows.ts [--json] [--quick]`. Flavours (kernel_choice.ts): one invocation
 * per row with one-pass reductions (the CPU adapter's choice), one workgroup per row with one-pass
 * reductions, and one workgroup per row with two-pass reductions (the hardware choice). Each row
 * also gives its largest difference from the first flavour's output (not for the sampler, whose
 * flavours draw different tokens). `--quick` uses sizes a CPU adapter finishes; `--only a,b`
 * times only the ops whose names start with one of those.
 */
import * as E from "../mod.ts";
import { forceKernels, type KernelChoice } from "../src/tensor/kernel_choice.ts";
import { warmThenTime } from "./gpu_time.ts";

await E.initGpu();
const json = Deno.args.includes("--json");
const quick = Deno.args.includes("--quick");
const adapter = E.gpu().info.description;
const onlyAt = Deno.args.indexOf("--only");
const only = onlyAt < 0 ? null : Deno.args[onlyAt + 1].split(",");
const WARM = quick ? 0 : 0.3, TIMED = quick ? 0 : 0.3;

const V = quick ? 4_096 : 151_936, D = 896, T = quick ? 64 : 512, B = quick ? 2 : 4;

function rand(n: number, seed: number, scale = 1): Float32Array {
  let s = seed;
  return Float32Array.from(
    { length: n },
    () => (((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5) * scale,
  );
}
const t = (shape: number[], seed: number, scale = 1) =>
  E.keep(E.tensor(rand(shape.reduce((a, b) => a * b, 1), seed, scale), shape));

const logits = t([64, V], 1, 8);
const lossLogits = t([quick ? 64 : 2048, V], 2, 8);
const labels = E.keep(
  E.tensor(Int32Array.from({ length: lossLogits.shape[0] }, (_, i) => (i * 7919) % V), [
    lossLogits.shape[0],
  ], "i32"),
);
const hidden = t([B * T, D], 3);
const norm = t([D], 4);
const [q, k, v] = [5, 6, 7].map((s) => t([B, 14, T, 64], s));
// A decode step at batch 64: one query per sequence against a KV cache of T keys (2 KV heads).
const [dq, dk, dv] = [t([64, 14, 1, 64], 11), t([64, 2, T, 64], 12), t([64, 2, T, 64], 13)];
const big = t([quick ? 1 << 18 : 1 << 26], 8);
const params = E.requiresGrad(t([quick ? 1 << 18 : 50_000_000], 9, 0.01));
params.grad = E.keep(E.tensor(rand(params.size, 10, 0.01), params.shape));
const opt = new E.AdamW([params], { lr: 1e-4, maxGradNorm: 1 });

const OPS: { op: string; shape: string; run: () => E.Tensor | void }[] = [
  { op: "softmax", shape: `64x${V}`, run: () => E.softmax(logits) },
  {
    op: "sample (top-p 0.9)",
    shape: `64x${V}`,
    run: () => E.sample(logits, { topP: 0.9, seed: 1 }),
  },
  { op: "argmax", shape: `64x${V}`, run: () => E.argmax(logits) },
  {
    op: "crossEntropy",
    shape: `${lossLogits.shape[0]}x${V}`,
    run: () => E.crossEntropy(lossLogits, labels),
  },
  { op: "rmsNorm", shape: `${B * T}x${D}`, run: () => E.rmsNorm(hidden, norm) },
  {
    op: "attention (causal)",
    shape: `${B}x14x${T}x64`,
    run: () => E.attention(q, k, v, { causal: true }),
  },
  {
    op: "decode attention (batch 64)",
    shape: `64x14x1x64 / ${T} keys`,
    run: () => E.attention(dq, dk, dv, { causal: true, qOffset: T - 1 }),
  },
  { op: "sum, whole tensor", shape: `${big.size}`, run: () => E.sum(big) },
  { op: "max over rows", shape: `${B * T}x${D}`, run: () => E.max(hidden, 1) },
  {
    op: "AdamW step with grad-norm clipping",
    shape: `${params.size}`,
    run: () => opt.stepUpdate(),
  },
];

const FLAVOURS: [string, Partial<KernelChoice>][] = [
  ["invocation, one-pass", { rows: "invocation", reduce: "one-pass" }],
  ["workgroup, one-pass", { rows: "workgroup", reduce: "one-pass" }],
  ["workgroup, two-pass", { rows: "workgroup", reduce: "two-pass" }],
];

for (const { op, shape, run } of OPS) {
  if (only && !only.some((prefix) => op.startsWith(prefix))) continue;
  let first: Float32Array | Int32Array | null = null;
  for (const [flavour, choice] of FLAVOURS) {
    forceKernels(choice);
    const out = run();
    const data = out instanceof E.Tensor ? await out.data() : null;
    out instanceof E.Tensor && out.destroy();
    // The sampler's flavours draw different (equally distributed) tokens: no difference to show.
    let diff: number | null = op.startsWith("sample") ? null : 0;
    if (data && first && diff !== null) {
      for (let i = 0; i < data.length; i++) diff = Math.max(diff, Math.abs(data[i] - first[i]));
    }
    first ??= data;
    const { ms, reps } = await warmThenTime(run, WARM, TIMED);
    const row = {
      adapter,
      op,
      shape,
      flavour,
      ms: +ms.toFixed(4),
      reps,
      max_diff_from_first: diff,
    };
    console.log(
      json
        ? JSON.stringify(row)
        : `${op.padEnd(36)} ${shape.padEnd(14)} ${flavour.padEnd(22)} ${
          ms.toFixed(3).padStart(9)
        } ms  (diff ${diff === null ? "n/a" : diff.toExponential(1)})`,
    );
  }
}
forceKernels({});
