/**
 * A finite-difference check of every backward rule in GRADS. CASES is typed
 * by the op list, so adding a differentiable op without a check here fails
 * type-checking.
 */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import { apply } from "../src/tensor/apply.ts";
import type { DiffOp } from "../src/tensor/ops.ts";
import { GRADS } from "../src/autograd/grads.ts";
import * as R from "./support/reference.ts";
import { gradcheck, type GradInput } from "./support/gradcheck.ts";
import "./support/gpu.ts";

const r = R.rng(99);
const inp = (shape: number[], scale = 1, grad = true): GradInput => ({
  data: R.randn(R.numel(shape), r, scale),
  shape,
  grad,
});
const pos = (shape: number[]): GradInput => ({
  data: R.randn(R.numel(shape), r).map((v) => Math.abs(v) + 0.5),
  shape,
});
const map = (f: (v: number) => number) => (x: Float64Array) => x.map(f);
const unary =
  (op: (x: E.Tensor) => E.Tensor, f: (v: number) => number, input = inp([3, 5])) => () =>
    gradcheck(op.name || "unary", [input], op, map(f));
const bin = (
  op: (a: E.Tensor, b: E.Tensor) => E.Tensor,
  f: (a: number, b: number) => number,
  sa = [2, 3, 4],
  sb = [3, 1],
) =>
() =>
  gradcheck(
    "binary",
    [inp(sa), {
      ...inp(sb),
      data: R.randn(R.numel(sb), r).map((v) => Math.sign(v) * (Math.abs(v) + 0.5)),
    }],
    op,
    (a, b) => R.broadcastMap([sa, sb], [a, b], f).data,
  );
const sigm = (v: number) => 1 / (1 + Math.exp(-v));

const CASES: Record<DiffOp, () => Promise<void>> = {
  neg: unary(E.neg, (v) => -v),
  exp: unary(E.exp, Math.exp),
  log: unary(E.log, Math.log, pos([4, 3])),
  sqrt: unary(E.sqrt, Math.sqrt, pos([4, 3])),
  rsqrt: unary(E.rsqrt, (v) => 1 / Math.sqrt(v), pos([4, 3])),
  abs: unary(E.abs, Math.abs),
  sin: unary(E.sin, Math.sin),
  cos: unary(E.cos, Math.cos),
  square: unary(E.square, (v) => v * v),
  recip: unary(E.recip, (v) => 1 / v, pos([2, 7])),
  relu: unary(E.relu, (v) => Math.max(v, 0)),
  sigmoid: unary(E.sigmoid, sigm),
  tanh: unary(E.tanh, Math.tanh),
  silu: unary(E.silu, (v) => v * sigm(v)),
  gelu: unary(
    E.gelu,
    (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
  ),
  affine: unary((x) => E.affine(x, -2.5, 1), (v) => -2.5 * v + 1),
  clamp: unary((x) => E.clamp(x, -0.3, 0.4), (v) => Math.min(Math.max(v, -0.3), 0.4)),

  add: bin(E.add, (a, b) => a + b),
  sub: bin(E.sub, (a, b) => a - b, [5], [3, 5]),
  mul: bin(E.mul, (a, b) => a * b),
  div: bin(E.div, (a, b) => a / b, [3, 4], [4]),
  maximum: bin(E.maximum, Math.max, [4, 3], [4, 3]),
  minimum: bin(E.minimum, Math.min, [2, 5], [1, 5]),
  where: () => {
    const cond = {
      data: Float32Array.from({ length: 12 }, (_, i) => i % 3 === 0 ? 1 : 0),
      shape: [3, 4],
      grad: false,
    };
    return gradcheck(
      "where",
      [cond, inp([4]), inp([3, 1])],
      E.where,
      (c, a, b) =>
        R.broadcastMap([[3, 4], [4], [3, 1]], [c, a, b], (cv, av, bv) => (cv ? av : bv)).data,
    );
  },

  contiguous: () =>
    gradcheck(
      "contiguous",
      [inp([3, 5])],
      (x) => E.contiguous(E.transpose(x)),
      (x) => R.permute(x, [3, 5], [1, 0]),
    ),
  reshape: () =>
    gradcheck(
      "reshape",
      [inp([3, 4])],
      (x) =>
        E.mul(
          E.reshape(x, [2, 6]),
          E.tensor(Float32Array.from({ length: 12 }, (_, i) => i), [2, 6]),
        ),
      (x) => x.map((v, i) => v * i),
    ),
  permute: () =>
    gradcheck(
      "permute",
      [inp([2, 3, 4])],
      (x) => E.permute(x, [2, 0, 1]),
      (x) => R.permute(x, [2, 3, 4], [2, 0, 1]),
    ),
  slice: () =>
    gradcheck("slice", [inp([4, 5])], (x) => E.slice(x, [1, 2], [3, 5]), (x) => {
      const out: number[] = [];
      for (let i = 1; i < 3; i++) for (let j = 2; j < 5; j++) out.push(x[i * 5 + j]);
      return out;
    }),
  expand: () =>
    gradcheck(
      "expand",
      [inp([3, 1])],
      (x) => E.expand(x, [2, 3, 4]),
      (x) => Array.from({ length: 24 }, (_, i) => x[Math.floor(i / 4) % 3]),
    ),
  pad: () =>
    gradcheck(
      "pad",
      [inp([2, 2])],
      (x) => apply("pad", [x], { starts: [1, 0], shape: [4, 3] }),
      (x) => {
        const out = new Array(12).fill(0);
        for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) out[(i + 1) * 3 + j] = x[i * 2 + j];
        return out;
      },
    ),
  concat: () =>
    gradcheck("concat", [inp([2, 3]), inp([2, 1])], (a, b) => E.concat([a, b], 1), (a, b) => {
      const out: number[] = [];
      for (let i = 0; i < 2; i++) out.push(a[i * 3], a[i * 3 + 1], a[i * 3 + 2], b[i]);
      return out;
    }),

  sum: () =>
    gradcheck(
      "sum",
      [inp([3, 4, 5])],
      (x) => E.sum(x, 1),
      (x) => R.reduce(x, [3, 4, 5], 1, (v) => v.reduce((a, b) => a + b, 0)),
    ),
  max: () =>
    gradcheck(
      "max",
      [inp([4, 6])],
      (x) => E.max(x, 1, true),
      (x) => R.reduce(x, [4, 6], 1, (v) => Math.max(...v)),
    ),

  softmax: () =>
    gradcheck("softmax", [inp([3, 7], 2)], (x) => E.softmax(x), (x) => R.rows(x, 7, R.softmaxRow)),
  logSoftmax: () =>
    gradcheck(
      "logSoftmax",
      [inp([3, 7], 2)],
      (x) => E.logSoftmax(x),
      (x) => R.rows(x, 7, R.logSoftmaxRow),
    ),
  fusedAttention: () => {
    // Called as the op itself, so it runs whatever the adapter's attention choice.
    const [B, Hq, Hkv, Tq, Tk, D] = [2, 4, 2, 5, 7, 8];
    const attrs = { scale: 0.4, causal: true, qOffset: 2 };
    const keyStart = [1, 4];
    return gradcheck(
      "fusedAttention",
      [inp([B, Hq, Tq, D]), inp([B, Hkv, Tk, D]), inp([B, Hkv, Tk, D])],
      (q, k, v) => apply("fusedAttention", [q, k, v, E.tensor(Int32Array.from(keyStart))], attrs),
      (q, k, v) => R.attention(q, k, v, [B, Hq, Tq, D], Hkv, Tk, { ...attrs, keyStart }),
    );
  },
  attentionSoftmax: () => {
    // scores [B=2, X=1, R=2*3 (G=2, Tq=3), Tk=5], query t at qOffset 2 + t, batch 1 left-padded by 1.
    const keyStart = { data: new Int32Array([0, 1]), shape: [2], grad: false };
    return gradcheck(
      "attentionSoftmax",
      [inp([2, 1, 6, 5]), keyStart],
      (s, ks) =>
        apply("attentionSoftmax", [s, ks], { scale: 0.7, causal: true, qLen: 3, qOffset: 2 }),
      (s, ks) => {
        const out = new Float64Array(s.length);
        for (let row = 0; row < 12; row++) {
          const b = Math.floor(row / 6);
          const t = (row % 6) % 3;
          const lo = ks[b];
          const hi = 2 + t + 1;
          const vals = Array.from({ length: hi - lo }, (_, j) => 0.7 * s[row * 5 + lo + j]);
          R.softmaxRow(vals).forEach((p, j) => (out[row * 5 + lo + j] = p));
        }
        return out;
      },
    );
  },
  crossEntropy: () => {
    const labels = { data: new Int32Array([2, -100, 0, 4, 1]), shape: [5], grad: false };
    const mask = { data: new Float32Array([1, 1, 0.5, 0, 1]), shape: [5], grad: false };
    return gradcheck(
      "crossEntropy",
      [inp([5, 6], 2), labels, mask],
      (x, y, m) => E.crossEntropy(x, y, { mask: m, reduction: "none" }),
      (x, y, m) => R.crossEntropy(x, y, 6, m),
    );
  },
  rmsNorm: async () => {
    // Rows of 6 take the scalar kernels, rows of 8 their vec4 twins.
    for (const n of [6, 8]) {
      await gradcheck(
        `rmsNorm n=${n}`,
        [inp([4, n]), inp([n])],
        (x, w) => E.rmsNorm(x, w, 1e-5),
        (x, w) => R.rmsNorm(x, w, n, 1e-5),
      );
    }
  },
  rope: async () => {
    const tables = E.ropeTables(8, 16, 100);
    const p = { data: new Int32Array([0, 3, 5, 1, 2, 9]), shape: [2, 3], grad: false };
    for (const interleaved of [false, true]) {
      await gradcheck(
        `rope interleaved=${interleaved}`,
        [inp([2, 3, 2, 8]), p],
        (x, ps) => E.rope(x, ps, tables, { interleaved }),
        (x, ps) => R.rope(x, ps, [2, 3, 2, 8], 100, interleaved),
      );
    }
  },

  embedding: () => {
    const ids = { data: new Int32Array([3, 0, 3, 3, 1, 0, 2]), shape: [7], grad: false };
    return gradcheck(
      "embedding",
      [inp([5, 4]), ids],
      E.embedding,
      (t, id) => Array.from(id).flatMap((i) => Array.from(t.slice(i * 4, i * 4 + 4))),
    );
  },
  gatherLast: () => {
    const idx = { data: new Int32Array([1, 4, 0]), shape: [3], grad: false };
    return gradcheck(
      "gatherLast",
      [inp([3, 5]), idx],
      E.gatherLast,
      (x, i) => Array.from(i, (j, row) => x[row * 5 + j]),
    );
  },

  matmul: async () => {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const [M, N, K] = [3, 5, 4];
        await gradcheck(
          `matmul tA=${transA} tB=${transB}`,
          [inp(transA ? [2, K, M] : [2, M, K]), inp(transB ? [N, K] : [K, N])],
          (a, b) => E.matmul(a, b, { transA, transB }),
          (a, b) => R.matmul(a, b, 2, M, N, K, transA, transB, false, true),
        );
      }
    }
  },
};

for (const [op, check] of Object.entries(CASES)) {
  Deno.test(`gradient of ${op} matches finite differences`, check);
}

Deno.test("every op in GRADS has a gradient check", () => {
  assert.deepEqual(Object.keys(CASES).sort(), Object.keys(GRADS).sort());
});

Deno.test("attention (q, k, v) gradients match finite differences with GQA and a KV offset", async () => {
  const [B, Hq, Hkv, Tq, Tk, D] = [2, 4, 2, 3, 5, 4];
  await gradcheck(
    "attention",
    [inp([B, Hq, Tq, D]), inp([B, Hkv, Tk, D]), inp([B, Hkv, Tk, D])],
    (q, k, v) => E.attention(q, k, v, { causal: true, qOffset: 2 }),
    (q, k, v) => R.attention(q, k, v, [B, Hq, Tq, D], Hkv, Tk, { causal: true, qOffset: 2 }),
  );
});

Deno.test("attention split over the batch (scores past the binding limit) has the same gradients", async () => {
  const [B, Hq, Hkv, Tq, Tk, D] = [3, 4, 2, 3, 5, 4];
  await gradcheck(
    "attention split",
    [inp([B, Hq, Tq, D]), inp([B, Hkv, Tk, D]), inp([B, Hkv, Tk, D])],
    // Room for two rows' scores per chunk: chunks of 2 and 1.
    (q, k, v) =>
      E.attention(q, k, v, { causal: true, qOffset: 2, maxScoreBytes: 2 * Hq * Tq * Tk * 4 }),
    (q, k, v) => R.attention(q, k, v, [B, Hq, Tq, D], Hkv, Tk, { causal: true, qOffset: 2 }),
  );
});

Deno.test("attention and softmax gradients over rows of a multiple of 4 (the vec4 kernels) match finite differences", async () => {
  // Tk = 8 and 12: one-invocation rows take the vec4 twins; the mask boundaries fall inside chunks.
  const [B, Hq, Hkv, Tq, Tk, D] = [2, 2, 1, 3, 8, 4];
  await gradcheck(
    "attention, 8 keys",
    [inp([B, Hq, Tq, D]), inp([B, Hkv, Tk, D]), inp([B, Hkv, Tk, D])],
    (q, k, v) =>
      E.attention(q, k, v, {
        causal: true,
        qOffset: 5,
        keyStart: E.tensor(Int32Array.from([0, 3])),
      }),
    (q, k, v) =>
      R.attention(q, k, v, [B, Hq, Tq, D], Hkv, Tk, { causal: true, qOffset: 5, keyStart: [0, 3] }),
  );
  await gradcheck(
    "softmax, 12",
    [inp([3, 12], 2)],
    (x) => E.softmax(x),
    (x) => R.rows(x, 12, R.softmaxRow),
  );
  await gradcheck(
    "logSoftmax, 16",
    [inp([2, 16], 2)],
    (x) => E.logSoftmax(x),
    (x) => R.rows(x, 16, R.logSoftmaxRow),
  );
});

Deno.test("gradients accumulate across backward calls, and noGrad records nothing", async () => {
  const x = E.requiresGrad(E.tensor([1, 2, 3]));
  E.backward(E.sum(E.square(x)));
  E.backward(E.sum(E.affine(x, 3)));
  assert.deepEqual(Array.from(await x.grad!.data()), [5, 7, 9]);
  const y = E.noGrad(() => E.square(x));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
});
