/**
 * GRADS: the backward rule of every differentiable op, keyed by the op list
 * in src/tensor/ops.ts. A rule gets dL/dout and returns dL/dinput for each
 * input (null for inputs with no gradient, like indices). Most rules are
 * compositions of other ops; the few fused backward kernels are ops too.
 */
import { apply } from "../tensor/apply.ts";
import * as T from "../tensor/api.ts";
import type { DiffOp, OpAttrs } from "../tensor/ops.ts";
import type { Tensor } from "../tensor/tensor.ts";

export type GradRule<K extends DiffOp> = (
  g: Tensor,
  inputs: readonly Tensor[],
  out: Tensor,
  attrs: OpAttrs[K],
) => (Tensor | null)[];

type Grads = { [K in DiffOp]: GradRule<K> };

const helper = (
  op: "sign" | "step" | "siluGrad" | "geluGrad" | "sigmoidGradFromY" | "tanhGradFromY",
  x: Tensor,
) => apply(op, [x], {});

/** Gradients of a broadcasting binary op, summed back to each input's shape. */
const broadcast = (
  ga: Tensor,
  gb: Tensor,
  [a, b]: readonly Tensor[],
) => [T.sumTo(ga, a.shape), T.sumTo(gb, b.shape)];

export const GRADS: Grads = {
  neg: (g) => [T.neg(g)],
  exp: (g, _, out) => [T.mul(g, out)],
  log: (g, [x]) => [T.div(g, x)],
  sqrt: (g, _, out) => [T.div(T.affine(g, 0.5), out)],
  rsqrt: (g, _, out) => [T.mul(g, T.affine(T.mul(out, T.square(out)), -0.5))],
  abs: (g, [x]) => [T.mul(g, helper("sign", x))],
  sin: (g, [x]) => [T.mul(g, T.cos(x))],
  cos: (g, [x]) => [T.neg(T.mul(g, T.sin(x)))],
  square: (g, [x]) => [T.mul(g, T.affine(x, 2))],
  recip: (g, _, out) => [T.neg(T.mul(g, T.square(out)))],
  relu: (g, [x]) => [T.mul(g, helper("step", x))],
  sigmoid: (g, _, out) => [T.mul(g, helper("sigmoidGradFromY", out))],
  tanh: (g, _, out) => [T.mul(g, helper("tanhGradFromY", out))],
  silu: (g, [x]) => [T.mul(g, helper("siluGrad", x))],
  gelu: (g, [x]) => [T.mul(g, helper("geluGrad", x))],
  affine: (g, _, __, { s0 }) => [T.affine(g, s0 ?? 1)],
  clamp: (g, [x], _, { s0, s1 }) => [T.mul(g, apply("inRange", [x], { s0, s1 }))],

  add: (g, ins) => broadcast(g, g, ins),
  sub: (g, ins) => broadcast(g, T.neg(g), ins),
  mul: (g, ins) => broadcast(T.mul(g, ins[1]), T.mul(g, ins[0]), ins),
  div: (g, ins, out) => broadcast(T.div(g, ins[1]), T.neg(T.div(T.mul(g, out), ins[1])), ins),
  maximum: (g, ins) => {
    const pick = T.ge(ins[0], ins[1]);
    return broadcast(T.mul(g, pick), T.mul(g, T.affine(pick, -1, 1)), ins);
  },
  minimum: (g, ins) => {
    const pick = T.le(ins[0], ins[1]);
    return broadcast(T.mul(g, pick), T.mul(g, T.affine(pick, -1, 1)), ins);
  },
  where: (
    g,
    [cond, a, b],
  ) => [null, T.sumTo(T.where(cond, g, 0), a.shape), T.sumTo(T.where(cond, 0, g), b.shape)],

  contiguous: (g) => [g],
  reshape: (g, [x]) => [T.reshape(g, x.shape)],
  permute: (g, _, __, { dims }) => {
    const inverse = new Array<number>(dims.length);
    dims.forEach((d, i) => (inverse[(d + dims.length) % dims.length] = i));
    return [T.permute(g, inverse)];
  },
  slice: (g, [x], _, { starts }) => [apply("pad", [g], { starts, shape: [...x.shape] })],
  expand: (g, [x]) => [T.sumTo(g, x.shape)],
  pad: (g, [x], _, { starts }) => [T.slice(g, starts, starts.map((s, i) => s + x.shape[i]))],
  concat: (g, xs, _, { axis }) => {
    const a = axis < 0 ? axis + g.ndim : axis;
    let at = 0;
    return xs.map((x) => {
      const part = T.narrow(g, a, at, x.shape[a]);
      at += x.shape[a];
      return part;
    });
  },

  sum: (g, [x], _, { axis, keepdim }) => {
    const a = axis < 0 ? axis + x.ndim : axis;
    const kept = keepdim ? g : T.unsqueeze(g, a);
    return [T.expand(kept, x.shape)];
  },
  max: (g, [x], out, { axis, keepdim }) => {
    const a = axis < 0 ? axis + x.ndim : axis;
    const o = keepdim ? out : T.unsqueeze(out, a);
    const gk = keepdim ? g : T.unsqueeze(g, a);
    return [T.mul(T.eq(x, o), gk)];
  },

  softmax: (g, _, out) => [apply("softmaxBackward", [out, g], { log: false, scale: 1 })],
  logSoftmax: (g, _, out) => [apply("softmaxBackward", [out, g], { log: true, scale: 1 })],
  attentionSoftmax: (g, ins, out, { scale }) => [
    apply("softmaxBackward", [out, g], { log: false, scale }),
    ...ins.slice(1).map(() => null),
  ],
  fusedAttention: (g, [q, k, v, keyStart], out, attrs) => {
    const ks = keyStart ? [keyStart] : [];
    // The softmax gradient's row term, dO . O, per query row.
    const delta = T.sum(T.mul(g, out), 3);
    const dq = apply("attentionBackwardQ", [q, k, v, out, g, delta, ...ks], attrs);
    const dkv = apply("attentionBackwardKV", [q, k, v, out, g, delta, ...ks], attrs);
    const D = q.shape[3];
    return [dq, T.narrow(dkv, 3, 0, D), T.narrow(dkv, 3, D, D), ...ks.map(() => null)];
  },
  crossEntropy: (g, [logits, labels, mask], _, { ignoreIndex }) => [
    apply("crossEntropyBackward", mask ? [logits, labels, g, mask] : [logits, labels, g], {
      ignoreIndex,
    }),
    null,
    ...(mask ? [null] : []),
  ],
  rmsNorm: (g, [x, w], _, { eps }) => [
    apply("rmsNormBackwardX", [x, w, g], { eps }),
    apply("rmsNormBackwardW", [x, g], { eps }),
  ],
  rope: (g, [_, pos, cos, sin], __, { interleaved }) => [
    apply("rope", [g, pos, cos, sin], { interleaved, inverse: true }),
    null,
    null,
    null,
  ],

  embedding: (
    g,
    [table, ids],
  ) => [apply("embeddingBackward", [g, ids], { rows: table.shape[0] }), null],
  gatherLast: (g, [x, idx]) => [apply("scatterLast", [g, idx], { n: x.shape[x.ndim - 1] }), null],

  matmul: (g, [a, b], _, { transA, transB }) => {
    // C = opA(A)·opB(B): dopA = G·opB(B)ᵀ, dopB = opA(A)ᵀ·G, stored back in A's and B's layouts.
    const da = transA
      ? T.matmul(b, g, { transA: transB, transB: true })
      : T.matmul(g, b, { transB: !transB });
    const db = transB
      ? T.matmul(g, a, { transA: true, transB: transA })
      : T.matmul(a, g, { transA: !transA });
    return [T.sumTo(da, a.shape), T.sumTo(db, b.shape)];
  },
};
