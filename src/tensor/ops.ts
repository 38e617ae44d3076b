/**
 * The primitive ops: every op the engine runs, with the attributes it takes.
 * Two tables are keyed by this list: IMPL (src/tensor/impl.ts: shape rule and
 * kernel launch) and GRADS (src/autograd/grads.ts: backward rule). Adding a
 * name here makes the type checker point at both.
 */

import type { FusedAttentionAttrs } from "./impl/attention.ts";

/** Elementwise f(x): WGSL expressions of `x` (and `p.s0`, `p.s1` for attrs). */
export const UNARY = {
  neg: "-x",
  exp: "exp(x)",
  log: "log(x)",
  sqrt: "sqrt(x)",
  rsqrt: "inverseSqrt(x)",
  abs: "abs(x)",
  sin: "sin(x)",
  cos: "cos(x)",
  square: "x * x",
  recip: "1.0 / x",
  relu: "max(x, 0.0)",
  sigmoid: "sigmoid_(x)",
  tanh: "tanh_(x)",
  silu: "x * sigmoid_(x)",
  gelu: "gelu_(x)",
  /** x * scale + shift */
  affine: "x * p.s0 + p.s1",
  clamp: "clamp(x, p.s0, p.s1)",
} as const;

/** Elementwise helpers that only backward rules use; not differentiable. */
export const UNARY_HELPERS = {
  sign: "sign(x)",
  step: "select(0.0, 1.0, x > 0.0)",
  inRange: "select(0.0, 1.0, x >= p.s0 && x <= p.s1)",
  siluGrad: "silu_grad_(x)",
  geluGrad: "gelu_grad_(x)",
  /** d sigmoid / dx from the sigmoid's output y */
  sigmoidGradFromY: "x * (1.0 - x)",
  /** d tanh / dx from the tanh's output y */
  tanhGradFromY: "1.0 - x * x",
} as const;

/** Elementwise f(x, y) with broadcasting. */
export const BINARY = {
  add: "x + y",
  sub: "x - y",
  mul: "x * y",
  div: "x / y",
  maximum: "max(x, y)",
  minimum: "min(x, y)",
} as const;

/** Comparisons: 1.0 where true, else 0.0. Not differentiable. */
export const COMPARE = {
  eq: "select(0.0, 1.0, x == y)",
  ne: "select(0.0, 1.0, x != y)",
  lt: "select(0.0, 1.0, x < y)",
  le: "select(0.0, 1.0, x <= y)",
  gt: "select(0.0, 1.0, x > y)",
  ge: "select(0.0, 1.0, x >= y)",
} as const;

export type UnaryOp = keyof typeof UNARY;
export type UnaryHelperOp = keyof typeof UNARY_HELPERS;
export type BinaryOp = keyof typeof BINARY;
export type CompareOp = keyof typeof COMPARE;

/** Scalars of `affine` (scale, shift) and `clamp` / `inRange` (min, max). */
export interface ScalarAttrs {
  s0?: number;
  s1?: number;
}

type Each<K extends string, A> = { [P in K]: A };

/** Every primitive op and its attributes. */
export interface OpAttrs
  extends
    Each<UnaryOp, ScalarAttrs>,
    Each<UnaryHelperOp, ScalarAttrs>,
    Each<BinaryOp, Record<never, never>>,
    Each<CompareOp, Record<never, never>> {
  /** where(cond, a, b): a where cond != 0, else b. */
  where: Record<never, never>;
  /** A strided view copied into a new contiguous tensor. */
  contiguous: Record<never, never>;
  /** i32 <-> f32 conversion (f32 -> i32 truncates toward zero). */
  cast: { to: "f32" | "i32" };

  // Views: no kernel, the result shares storage.
  reshape: { shape: number[] };
  permute: { dims: number[] };
  slice: { starts: number[]; ends: number[] };
  expand: { shape: number[] };
  /** The inverse of slice: zeros of `shape` with the input at `starts`. */
  pad: { starts: number[]; shape: number[] };
  concat: { axis: number };

  // Reductions over one axis; the axis is removed unless keepdim.
  sum: { axis: number; keepdim: boolean };
  max: { axis: number; keepdim: boolean };
  argmax: Record<never, never>;

  // Row ops over the last axis.
  softmax: Record<never, never>;
  logSoftmax: Record<never, never>;
  softmaxBackward: { log: boolean; scale: number };
  /** softmax(scale * scores) over keys, causal and left-padding masks applied. */
  attentionSoftmax: { scale: number; causal: boolean; qLen: number; qOffset: number };
  /** One query per sequence against a whole KV cache, fused (decode steps; no gradient). */
  decodeAttention: { scale: number; qPos: number };
  /** softmax(scale q kᵀ, masked) v for many queries, fused (src/tensor/impl/attention.ts). */
  fusedAttention: FusedAttentionAttrs;
  attentionBackwardQ: FusedAttentionAttrs;
  /** dL/dk and dL/dv side by side on the last axis. */
  attentionBackwardKV: FusedAttentionAttrs;
  /** Per-row -log softmax(x)[label], times an optional mask. */
  crossEntropy: { ignoreIndex: number };
  crossEntropyBackward: { ignoreIndex: number };
  rmsNorm: { eps: number };
  rmsNormBackwardX: { eps: number };
  rmsNormBackwardW: { eps: number };
  rope: { interleaved: boolean; inverse: boolean };

  // Indexing.
  embedding: Record<never, never>;
  embeddingBackward: { rows: number };
  gatherLast: Record<never, never>;
  scatterLast: { n: number };

  matmul: { transA: boolean; transB: boolean };

  /** Categorical sampling over the last axis (i32 result). */
  sample: { temperature: number; topK: number; topP: number; seed: number; counter: number };
}

export type OpName = keyof OpAttrs;

/**
 * The ops with no gradient besides the helpers and comparisons: integer results, backward kernels
 * and the decode-only fused attention. NonDiffOp and isDifferentiable both come from this list.
 */
const NON_DIFF_OPS = [
  "argmax",
  "decodeAttention",
  "attentionBackwardQ",
  "attentionBackwardKV",
  "cast",
  "sample",
  "softmaxBackward",
  "crossEntropyBackward",
  "rmsNormBackwardX",
  "rmsNormBackwardW",
  "embeddingBackward",
  "scatterLast",
] as const satisfies readonly OpName[];

/** Ops with no gradient, hence no GRADS rule and no tape node. */
export type NonDiffOp = UnaryHelperOp | CompareOp | (typeof NON_DIFF_OPS)[number];

export type DiffOp = Exclude<OpName, NonDiffOp>;

const NON_DIFF: ReadonlySet<string> = new Set<NonDiffOp>([
  ...Object.keys(UNARY_HELPERS) as UnaryHelperOp[],
  ...Object.keys(COMPARE) as CompareOp[],
  ...NON_DIFF_OPS,
]);

export function isDifferentiable(op: OpName): op is DiffOp {
  return !NON_DIFF.has(op);
}
