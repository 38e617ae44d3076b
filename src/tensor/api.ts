/**
 * The functions users call. Each is one primitive op from ops.ts, or a short
 * composition of them (so it needs no gradient rule of its own).
 */
import { OpError } from "../errors.ts";
import { apply } from "./apply.ts";
import { gpu } from "../gpu/mod.ts";
import { copyInto, fillDense, normAxis } from "./launch.ts";
import { kernelChoice } from "./kernel_choice.ts";
import { fusedAttentionFits } from "./impl/attention.ts";
import type { BinaryOp, CompareOp, UnaryOp } from "./ops.ts";
import { type DType, numel, type Shape, Tensor, tensor } from "./tensor.ts";

export { tensor };

// ---- Creation ----------------------------------------------------------------

export function full(shape: Shape, value: number, dtype: DType = "f32"): Tensor {
  const t = Tensor.empty(shape, dtype);
  fillDense(t, value);
  return t;
}

export const zeros = (shape: Shape, dtype: DType = "f32"): Tensor => full(shape, 0, dtype);
export const ones = (shape: Shape, dtype: DType = "f32"): Tensor => full(shape, 1, dtype);

export function arange(n: number, dtype: DType = "i32"): Tensor {
  return tensor(Array.from({ length: n }, (_, i) => i), [n], dtype);
}

// ---- Elementwise -------------------------------------------------------------

type Operand = Tensor | number;

type Unary = (x: Tensor) => Tensor;
type Binary = (a: Operand, b: Operand) => Tensor;
type Compare = (a: Tensor, b: Operand) => Tensor;

const un = (op: UnaryOp): Unary => (x: Tensor) => apply(op, [x], {});
export const neg: Unary = un("neg");
export const exp: Unary = un("exp");
export const log: Unary = un("log");
export const sqrt: Unary = un("sqrt");
export const rsqrt: Unary = un("rsqrt");
export const abs: Unary = un("abs");
export const sin: Unary = un("sin");
export const cos: Unary = un("cos");
export const square: Unary = un("square");
export const recip: Unary = un("recip");
export const relu: Unary = un("relu");
export const sigmoid: Unary = un("sigmoid");
export const tanh: Unary = un("tanh");
export const silu: Unary = un("silu");
export const gelu: Unary = un("gelu");

/** x * scale + shift, in one kernel. */
export const affine = (x: Tensor, scale: number, shift = 0): Tensor =>
  apply("affine", [x], { s0: scale, s1: shift });
export const clamp = (x: Tensor, min: number, max: number): Tensor =>
  apply("clamp", [x], { s0: min, s1: max });

function bin(op: BinaryOp, scalar: (x: Tensor, c: number) => Tensor): Binary {
  return (a: Operand, b: Operand): Tensor => {
    if (typeof a === "number" && typeof b === "number") throw new OpError(`${op}: needs a tensor`);
    if (typeof b === "number") return scalar(a as Tensor, b);
    if (typeof a === "number") return apply(op, [scalarLike(a, b), b], {});
    return apply(op, [a, b], {});
  };
}

/** A one-element tensor that broadcasts against `like`. */
function scalarLike(v: number, like: Tensor): Tensor {
  return full(like.shape.map(() => 1), v);
}

export const add: Binary = bin("add", (x, c) => affine(x, 1, c));
export const sub: Binary = bin("sub", (x, c) => affine(x, 1, -c));
export const mul: Binary = bin("mul", (x, c) => affine(x, c, 0));
export const div: Binary = bin("div", (x, c) => affine(x, 1 / c, 0));
export const maximum: Binary = bin(
  "maximum",
  (x, c) => apply("maximum", [x, scalarLike(c, x)], {}),
);
export const minimum: Binary = bin(
  "minimum",
  (x, c) => apply("minimum", [x, scalarLike(c, x)], {}),
);

const cmp = (op: CompareOp): Compare => (a: Tensor, b: Operand) =>
  apply(op, [a, typeof b === "number" ? scalarLike(b, a) : b], {});
export const eq: Compare = cmp("eq");
export const ne: Compare = cmp("ne");
export const lt: Compare = cmp("lt");
export const le: Compare = cmp("le");
export const gt: Compare = cmp("gt");
export const ge: Compare = cmp("ge");

/** a where cond != 0, else b. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const like = cond;
  const ta = typeof a === "number" ? scalarLike(a, like) : a;
  const tb = typeof b === "number" ? scalarLike(b, like) : b;
  return apply("where", [cond, ta, tb], {});
}

/** value where mask != 0, else x (torch.Tensor.masked_fill). */
export const maskedFill = (x: Tensor, mask: Tensor, value: number): Tensor => where(mask, value, x);

export const cast = (
  x: Tensor,
  to: DType,
): Tensor => (x.dtype === to ? x : apply("cast", [x], { to }));

// ---- Views and copies --------------------------------------------------------

export const reshape = (x: Tensor, shape: readonly number[]): Tensor =>
  apply("reshape", [x], { shape: [...shape] });
export const flatten = (x: Tensor): Tensor => reshape(x, [-1]);
export const permute = (x: Tensor, dims: readonly number[]): Tensor =>
  apply("permute", [x], { dims: [...dims] });
export const contiguous = (
  x: Tensor,
): Tensor => (x.isContiguous ? x : apply("contiguous", [x], {}));
export const expand = (x: Tensor, shape: readonly number[]): Tensor =>
  apply("expand", [x], { shape: [...shape] });

export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const a = normAxis("transpose", d0, x.ndim);
  const b = normAxis("transpose", d1, x.ndim);
  const dims = x.shape.map((_, i) => i);
  [dims[a], dims[b]] = [dims[b], dims[a]];
  return permute(x, dims);
}

/** x[..., start:start+length, ...] along one axis (torch.narrow). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normAxis("narrow", axis, x.ndim);
  const starts = x.shape.map((_, i) => (i === a ? start : 0));
  const ends = x.shape.map((d, i) => (i === a ? start + length : d));
  return apply("slice", [x], { starts, ends });
}

export const slice = (x: Tensor, starts: number[], ends: number[]): Tensor =>
  apply("slice", [x], { starts, ends });
export const concat = (xs: Tensor[], axis = 0): Tensor => apply("concat", xs, { axis });

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis("unsqueeze", axis, x.ndim + 1);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

export function squeeze(x: Tensor, axis: number): Tensor {
  const a = normAxis("squeeze", axis, x.ndim);
  if (x.shape[a] !== 1) throw new OpError(`squeeze: axis ${a} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

/**
 * Writes src into dst (a view, e.g. a slice of a KV cache) in place. Not
 * recorded for autograd: for buffers that generation updates.
 */
export function assign(dst: Tensor, src: Tensor): void {
  if (dst.dtype !== src.dtype) throw new OpError(`assign: ${src.dtype} into ${dst.dtype}`);
  dst.buffer("assign");
  src.buffer("assign");
  copyInto(src, dst);
}

// ---- Reductions --------------------------------------------------------------

/** Sum over one axis, or over everything when axis is omitted. */
export function sum(x: Tensor, axis?: number, keepdim = false): Tensor {
  if (axis === undefined) return apply("sum", [reshape(x, [x.size])], { axis: 0, keepdim: false });
  return apply("sum", [x], { axis, keepdim });
}

export function mean(x: Tensor, axis?: number, keepdim = false): Tensor {
  const n = axis === undefined ? x.size : x.shape[normAxis("mean", axis, x.ndim)];
  return affine(sum(x, axis, keepdim), 1 / Math.max(n, 1));
}

export function max(x: Tensor, axis?: number, keepdim = false): Tensor {
  if (axis === undefined) return apply("max", [reshape(x, [x.size])], { axis: 0, keepdim: false });
  return apply("max", [x], { axis, keepdim });
}

/** Index of the largest entry along the last axis (i32). */
export const argmax = (x: Tensor): Tensor => apply("argmax", [x], {});

/** Sums `x` down to `shape` over broadcast dims: the gradient of a broadcast. */
export function sumTo(x: Tensor, shape: Shape): Tensor {
  let y = x;
  while (y.ndim > shape.length) y = sum(y, 0);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1 && y.shape[i] !== 1) y = sum(y, i, true);
  }
  return y;
}

// ---- Row ops ----------------------------------------------------------------

function lastAxis(op: string, x: Tensor, axis: number) {
  if (normAxis(op, axis, x.ndim) !== x.ndim - 1) {
    throw new OpError(`${op}: only the last axis is supported`);
  }
}

export function softmax(x: Tensor, axis = -1): Tensor {
  lastAxis("softmax", x, axis);
  return apply("softmax", [x], {});
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  lastAxis("logSoftmax", x, axis);
  return apply("logSoftmax", [x], {});
}

export interface CrossEntropyOptions {
  /** Per-token weights (0 masks a token), the labels' shape. */
  mask?: Tensor;
  /** Labels equal to this are skipped (PyTorch's default -100). */
  ignoreIndex?: number;
  /** "mean" divides by the number (or total mask weight) of counted tokens. */
  reduction?: "mean" | "sum" | "none";
}

/** Cross-entropy of logits [..., V] against i32 labels [...], fused with the label gather. */
export function crossEntropy(
  logits: Tensor,
  labels: Tensor,
  opts: CrossEntropyOptions = {},
): Tensor {
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const inputs = opts.mask ? [logits, labels, opts.mask] : [logits, labels];
  const loss = apply("crossEntropy", inputs, { ignoreIndex });
  const reduction = opts.reduction ?? "mean";
  if (reduction === "none") return loss;
  const total = sum(loss);
  if (reduction === "sum") return total;
  const counted = ne(cast(labels, "f32"), ignoreIndex);
  const weight = opts.mask ? mul(counted, opts.mask) : counted;
  return div(total, maximum(sum(weight), 1e-12));
}

export const rmsNorm = (x: Tensor, weight: Tensor, eps = 1e-6): Tensor =>
  apply("rmsNorm", [x, weight], { eps });

/** Cos and sin tables [maxPos, dim/2] for RoPE, computed in float64 on the host. */
export function ropeTables(
  dim: number,
  maxPos: number,
  theta = 10000,
): { cos: Tensor; sin: Tensor } {
  const half = dim / 2;
  const c = new Float32Array(maxPos * half);
  const s = new Float32Array(maxPos * half);
  for (let i = 0; i < half; i++) {
    // As Hugging Face: inv_freq = 1 / theta^(2i/dim), in float32.
    const invFreq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / dim)));
    for (let pos = 0; pos < maxPos; pos++) {
      const angle = Math.fround(pos * invFreq);
      c[pos * half + i] = Math.cos(angle);
      s[pos * half + i] = Math.sin(angle);
    }
  }
  return { cos: tensor(c, [maxPos, half]), sin: tensor(s, [maxPos, half]) };
}

/**
 * Rotary embedding of x [B, T, H, D] at positions pos (i32 [B, T]).
 * interleaved: pairs (2i, 2i+1); otherwise rotate-half pairs (i, i+D/2), as HF Llama.
 */
export function rope(
  x: Tensor,
  pos: Tensor,
  tables: { cos: Tensor; sin: Tensor },
  opts: { interleaved?: boolean } = {},
): Tensor {
  return apply("rope", [x, pos, tables.cos, tables.sin], {
    interleaved: opts.interleaved ?? false,
    inverse: false,
  });
}

export interface AttentionOptions {
  causal?: boolean;
  /** Absolute position of the first query (the KV cache length before it). */
  qOffset?: number;
  /** i32 [B]: keys before this index are masked (left padding). */
  keyStart?: Tensor;
  /** Defaults to 1/sqrt(head_dim). */
  scale?: number;
  /**
   * Bytes the scores [B, Hq, Tq, Tk] may take in one buffer before the batch
   * is split (default: the device's per-binding limit, 128 MiB on llvmpipe).
   */
  maxScoreBytes?: number;
}

/**
 * Scaled dot-product attention with grouped-query heads.
 * q: [B, Hq, Tq, D]; k, v: [B, Hkv, Tk, D] with Hq a multiple of Hkv.
 * Query heads h*G .. h*G+G-1 share kv head h, as Hugging Face's repeat_kv.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new OpError(`attention: q, k, v must be 4-D [batch, heads, seq, head_dim]`);
  }
  const [B, Hq, Tq, D] = q.shape;
  const [Bk, Hkv, Tk, Dk] = k.shape;
  if (Bk !== B || Dk !== D || v.shape[0] !== B || v.shape[1] !== Hkv || v.shape[2] !== Tk) {
    throw new OpError(`attention: q [${q.shape}], k [${k.shape}], v [${v.shape}] do not match`);
  }
  if (Hq % Hkv !== 0) {
    throw new OpError(`attention: ${Hq} query heads are not a multiple of ${Hkv} kv heads`);
  }
  const G = Hq / Hkv;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (
    Tq === 1 && D % 4 === 0 && D <= 128 && (opts.causal ?? true) &&
    !q.requiresGrad && !k.requiresGrad && !v.requiresGrad
  ) {
    // A decode step: one fused kernel instead of two M=1 matmuls and a softmax.
    const inputs = [contiguous(q), k, v, ...(opts.keyStart ? [opts.keyStart] : [])];
    return apply("decodeAttention", inputs, { scale, qPos: opts.qOffset ?? Tk - 1 });
  }
  const causal = opts.causal ?? true;
  const qOffset = opts.qOffset ?? Tk - Tq;
  const { attention: choice, attentionMaxHeadDim } = kernelChoice();
  const grad = q.requiresGrad || k.requiresGrad || v.requiresGrad;
  const fused = choice === "fused" || (choice === "fused-inference" && !grad);
  if (fused && D <= attentionMaxHeadDim && fusedAttentionFits(q, k)) {
    const inputs = opts.keyStart ? [q, k, v, opts.keyStart] : [q, k, v];
    return apply("fusedAttention", inputs, { scale, causal, qOffset });
  }
  // The scores are one buffer: past the per-binding limit, attend over batch chunks.
  const rowBytes = Hq * Tq * Tk * 4;
  const maxBytes = opts.maxScoreBytes ?? gpu().device.limits.maxStorageBufferBindingSize;
  if (B > 1 && B * rowBytes > maxBytes) {
    const n = Math.max(1, Math.floor(maxBytes / rowBytes));
    const parts: Tensor[] = [];
    for (let at = 0; at < B; at += n) {
      const m = Math.min(n, B - at);
      const part = (t: Tensor) => narrow(t, 0, at, m);
      parts.push(attention(part(q), part(k), part(v), {
        ...opts,
        keyStart: opts.keyStart && part(opts.keyStart),
      }));
    }
    return concat(parts, 0);
  }
  // Dense copies recorded on the tape, so the backward's matmuls reuse them (llama passes views).
  const qg = reshape(contiguous(q), [B, Hkv, G * Tq, D]);
  const scores = matmul(qg, contiguous(k), { transB: true });
  const inputs = opts.keyStart ? [scores, opts.keyStart] : [scores];
  const probs = apply("attentionSoftmax", inputs, {
    scale,
    causal,
    qLen: Tq,
    qOffset,
  });
  return reshape(matmul(probs, contiguous(v)), [B, Hq, Tq, v.shape[3]]);
}

// ---- Indexing ---------------------------------------------------------------

/** Rows of `table` [V, D] at i32 `ids` [...] -> [..., D]. */
export const embedding = (table: Tensor, ids: Tensor): Tensor =>
  apply("embedding", [table, ids], {});

/** x[..., idx[...]] over the last axis, e.g. the log-prob of each chosen token. */
export const gatherLast = (x: Tensor, idx: Tensor): Tensor => apply("gatherLast", [x, idx], {});

// ---- Matmul -----------------------------------------------------------------

export function matmul(
  a: Tensor,
  b: Tensor,
  opts: { transA?: boolean; transB?: boolean } = {},
): Tensor {
  return apply("matmul", [a, b], { transA: opts.transA ?? false, transB: opts.transB ?? false });
}

/** x [..., in] · weightᵀ [out, in] (+ bias [out]), as torch.nn.functional.linear. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const inF = x.shape[x.ndim - 1];
  const lead = x.shape.slice(0, -1);
  const y = matmul(reshape(x, [numel(lead), inF]), weight, { transB: true });
  const yb = bias ? add(y, bias) : y;
  return reshape(yb, [...lead, weight.shape[0]]);
}

// ---- Sampling ---------------------------------------------------------------

export interface SampleOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Mixed into the random stream: e.g. the decode step. */
  counter?: number;
}

/**
 * One token per row of logits [..., V] (i32 [...]), on the GPU. temperature
 * 0 means greedy (argmax).
 */
export function sample(logits: Tensor, opts: SampleOptions = {}): Tensor {
  const temperature = opts.temperature ?? 1;
  if (temperature === 0) return argmax(logits);
  return apply("sample", [logits], {
    temperature,
    topK: opts.topK ?? 0,
    topP: opts.topP ?? 1,
    seed: opts.seed ?? 0,
    counter: opts.counter ?? 0,
  });
}
