/** Kernels that own one row each: reductions, softmax, cross-entropy, RMSNorm, sampling. */
import { OpError } from "../../errors.ts";
import {
  type Binding,
  checkId,
  expectDtype,
  f32bits,
  fail,
  flags,
  grid,
  i32bits,
  launch,
  normAxis,
  rowWG,
  sameShape,
  withDense,
} from "../launch.ts";
import { fmtShape, Tensor } from "../tensor.ts";
import { fitsLoopBudget, kernelChoice, SOFTWARE_LOOP_BUDGET } from "../kernel_choice.ts";

/**
 * Kernels written for both row flavours (shaders/lib/rows_{{ROWS}}.wgsl): one
 * invocation per row, or one workgroup per row (kernel_choice.ts picks). Each
 * takes the row length as its second parameter. The number is how many times
 * the kernel walks its row at most (the sampler's bisections walk it up to 64
 * times), for the software adapter's loop budget.
 */
const ROW_PASSES = new Map([
  ["softmax.wgsl", 3],
  ["softmax_backward.wgsl", 2],
  ["cross_entropy.wgsl", 2],
  ["cross_entropy_backward.wgsl", 4],
  ["rmsnorm.wgsl", 2],
  ["rmsnorm_backward_x.wgsl", 2],
  ["reduce.wgsl", 1],
  ["argmax.wgsl", 1],
  ["sample.wgsl", 68],
  ["masked_softmax.wgsl", 3],
  ["decode_attention.wgsl", 1],
  ["optim/grad_norm.wgsl", 1],
]);

/**
 * Kernels with a twin that moves 4 entries per load and store, for one-invocation rows whose
 * length is a multiple of 4: llvmpipe pays per load instruction, not per byte (about 95 cycles for
 * a vec4 load across 8 lanes, 34 for a scalar one; docs/matmul-variants.md).
 */
const VEC4_TWIN = new Map([
  ["masked_softmax.wgsl", "masked_softmax_vec4.wgsl"],
  ["softmax_backward.wgsl", "softmax_backward_vec4.wgsl"],
  ["rmsnorm.wgsl", "rmsnorm_vec4.wgsl"],
  ["rmsnorm_backward_x.wgsl", "rmsnorm_backward_x_vec4.wgsl"],
]);

/** Lanes of a workgroup-per-row kernel: the row's length up to a power of two, 32 to 256. */
function rowLanes(n: number): number {
  return Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(Math.max(n, 1)))));
}

/**
 * One row per invocation or per workgroup, as the kernel choice says; on the software adapter a
 * row too long for one invocation's loop budget goes to a workgroup (its lanes share the walk).
 */
export function rowLaunch(
  shader: string,
  defines: Record<string, string>,
  bindings: Binding[],
  params: number[],
  rows: number,
  opts: {
    writes?: number[];
    /** One invocation per row whatever the adapter (rows strided in memory: adjacent invocations read adjacent rows). */
    perInvocation?: boolean;
    /** Elements one row walks, when not the row length params[1] (a reduction's chunk). */
    walk?: number;
    /** Pipeline constants besides the workgroup size. */
    constants?: Record<string, number>;
    /** The shader's entry point, when not main. */
    entry?: string;
  } = {},
) {
  const { writes, perInvocation = false, constants = {}, entry } = opts;
  const passes = ROW_PASSES.get(shader);
  const n = opts.walk ?? params[1];
  const walk = (lanes: number) => (passes ?? 1) * Math.ceil(n / lanes);
  const workgroup = passes !== undefined && !perInvocation &&
    (kernelChoice().rows === "workgroup" || !fitsLoopBudget(walk(1)));
  const lanes = workgroup ? rowLanes(n) : 1;
  if (!fitsLoopBudget(walk(lanes))) {
    throw new OpError(
      `${shader.replace(".wgsl", "")}: a row of ${n} is more than one ${
        workgroup ? "workgroup" : "invocation"
      } may walk on the CPU adapter (llvmpipe stops a shader after ${SOFTWARE_LOOP_BUDGET} loop steps); split the row`,
    );
  }
  if (workgroup) {
    const d = { ...defines, ROWS: "workgroup", LANES: String(lanes) };
    launch(
      { shader, entry, defines: d, constants: { ...constants, WG: lanes } },
      bindings,
      params,
      grid(rows, 1),
      writes,
    );
    return;
  }
  const wg = rowWG();
  const twin = n % 4 === 0 && !perInvocation ? VEC4_TWIN.get(shader) : undefined;
  const d = passes !== undefined && !twin ? { ...defines, ROWS: "invocation" } : defines;
  launch(
    { shader: twin ?? shader, entry, defines: d, constants: { ...constants, WG: wg } },
    bindings,
    params,
    grid(rows, wg),
    writes,
  );
}

function lastDim(op: string, t: Tensor): { rows: number; n: number } {
  if (t.ndim === 0) fail(op, "needs at least one axis", t);
  const n = t.shape[t.ndim - 1];
  if (n === 0) fail(op, "last axis is empty", t);
  return { rows: t.size / n, n };
}

export function reduce(max: boolean) {
  return ([x]: Tensor[], { axis, keepdim }: { axis: number; keepdim: boolean }): Tensor => {
    const op = max ? "max" : "sum";
    expectDtype(op, x, "f32", "input");
    const a = normAxis(op, axis, x.ndim);
    const n = x.shape[a] ?? 1;
    if (max && n === 0) fail(op, `axis ${a} is empty`, x);
    const outer = x.shape.slice(0, a).reduce((p, d) => p * d, 1);
    const inner = x.shape.slice(a + 1).reduce((p, d) => p * d, 1);
    const shape = keepdim
      ? x.shape.map((d, i) => (i === a ? 1 : d))
      : x.shape.filter((_, i) => i !== a);
    const out = Tensor.empty(shape);
    if (out.size === 0) return out;
    const defines = { MAX: String(max) };
    const perInvocation = inner > 1;
    const chunks = reduceChunks(outer * inner, n);
    withDense([x], (xd) => {
      if (chunks === 1) {
        rowLaunch("reduce.wgsl", defines, [xd, out], [outer, n, inner, n], outer * inner, {
          perInvocation,
        });
        return;
      }
      const chunk = Math.ceil(n / chunks);
      const part = Tensor.empty([outer, Math.ceil(n / chunk), inner]);
      rowLaunch("reduce.wgsl", defines, [xd, part], [outer, n, inner, chunk], part.size, {
        perInvocation,
        walk: chunk,
      });
      const m = part.shape[1];
      rowLaunch("reduce.wgsl", defines, [part, out], [outer, m, inner, m], outer * inner, {
        perInvocation,
      });
      part.destroy();
    });
    return out;
  };
}

/** Rows (workgroups or invocations) it takes to fill a large GPU: an H200 holds ~8 workgroups of 256 on each of its 132 SMs. */
const REDUCE_FILL = 1024;
/** The least a first-pass chunk sums: 8 elements per lane of a 256-lane workgroup. */
const MIN_CHUNK = 2048;

/**
 * Chunks per row for a reduction: 1 (one pass) unless the kernel choice is two-pass and there are
 * too few rows to fill the GPU, as in a whole-tensor sum (then each row is cut so that about
 * REDUCE_FILL rows of work run at once, and a second pass reduces the chunks), or the row is
 * longer than the CPU adapter lets one invocation walk.
 */
function reduceChunks(rows: number, n: number): number {
  // A row longer than one invocation's loop budget on the CPU adapter is cut into chunks within it.
  const budget = fitsLoopBudget(n) ? 1 : Math.ceil(n / SOFTWARE_LOOP_BUDGET);
  if (kernelChoice().reduce !== "two-pass" || rows >= REDUCE_FILL) return budget;
  return Math.max(budget, Math.min(Math.ceil(REDUCE_FILL / rows), Math.floor(n / MIN_CHUNK)));
}

export function argmax([x]: Tensor[]): Tensor {
  expectDtype("argmax", x, "f32", "input");
  const { rows, n } = lastDim("argmax", x);
  const out = Tensor.empty(x.shape.slice(0, -1), "i32");
  withDense([x], (xd) => rowLaunch("argmax.wgsl", {}, [xd, out], [rows, n], rows));
  return out;
}

export function softmax(log: boolean) {
  return ([x]: Tensor[]): Tensor => {
    const op = log ? "logSoftmax" : "softmax";
    expectDtype(op, x, "f32", "input");
    const { rows, n } = lastDim(op, x);
    const out = Tensor.empty(x.shape);
    withDense(
      [x],
      (xd) => rowLaunch("softmax.wgsl", { LOG: String(log) }, [xd, out], [rows, n], rows),
    );
    return out;
  };
}

export function softmaxBackward(
  [y, g]: Tensor[],
  { log, scale }: { log: boolean; scale: number },
): Tensor {
  if (!sameShape(y.shape, g.shape)) fail("softmaxBackward", "y and grad shapes differ", y, g);
  const { rows, n } = lastDim("softmaxBackward", y);
  const out = Tensor.empty(y.shape);
  withDense(
    [y, g],
    (yd, gd) =>
      rowLaunch("softmax_backward.wgsl", { LOG: String(log) }, [yd, gd, out], [
        rows,
        n,
        f32bits(scale),
      ], rows),
  );
  return out;
}

/**
 * scores: [B, X, R, Tk] (X heads or head groups, R query rows per head), with
 * query row r at position qOffset + r % qLen; keyStart: optional i32 [B].
 */
export function attentionSoftmax(
  [scores, keyStart]: Tensor[],
  { scale, causal, qLen, qOffset }: {
    scale: number;
    causal: boolean;
    qLen: number;
    qOffset: number;
  },
): Tensor {
  const op = "attentionSoftmax";
  if (scores.ndim !== 4) fail(op, "scores must be [batch, heads, rows, keys]", scores);
  const [B, X, R, Tk] = scores.shape;
  if (qLen <= 0 || R % qLen !== 0) {
    fail(op, `rows per head ${R} is not a multiple of qLen ${qLen}`, scores);
  }
  if (keyStart) {
    expectDtype(op, keyStart, "i32", "keyStart");
    if (keyStart.size !== B) fail(op, "keyStart needs one entry per batch row", scores, keyStart);
  }
  const out = Tensor.empty(scores.shape);
  const rows = B * X * R;
  withDense([scores, keyStart ?? scores], (sd, kd) =>
    rowLaunch(
      "masked_softmax.wgsl",
      {},
      [sd, kd, out],
      [rows, Tk, X * R, qLen, qOffset, causal ? 1 : 0, keyStart ? 1 : 0, f32bits(scale)],
      rows,
    ));
  return out;
}

function ceInputs(op: string, logits: Tensor, labels: Tensor, mask?: Tensor) {
  expectDtype(op, logits, "f32", "logits");
  expectDtype(op, labels, "i32", "labels");
  const { rows, n } = lastDim(op, logits);
  if (labels.size !== rows || !sameShape(labels.shape, logits.shape.slice(0, -1))) {
    fail(op, "labels must have the logits' shape without the class axis", logits, labels);
  }
  if (mask) {
    expectDtype(op, mask, "f32", "mask");
    if (!sameShape(mask.shape, labels.shape)) {
      fail(op, "mask must have the labels' shape", labels, mask);
    }
  }
  return { rows, n };
}

/** inputs: logits [..., V], labels i32 [...], optional mask f32 [...]. */
export function crossEntropy(
  [logits, labels, mask]: Tensor[],
  { ignoreIndex }: { ignoreIndex: number },
): Tensor {
  const op = "crossEntropy";
  const { rows, n } = ceInputs(op, logits, labels, mask);
  const out = Tensor.empty(labels.shape);
  const check = checkId(`${op}: labels ${fmtShape(labels.shape)} for ${n} classes`);
  withDense([logits, labels, mask ?? labels], (ld, yd, md) =>
    rowLaunch(
      "cross_entropy.wgsl",
      {},
      [ld, yd, md, out, flags()],
      [rows, n, mask ? 1 : 0, i32bits(ignoreIndex), check],
      rows,
      { writes: [3, 4] },
    ));
  return out;
}

/** inputs: logits, labels, grad of the per-row loss, optional mask. */
export function crossEntropyBackward(
  [logits, labels, g, mask]: Tensor[],
  { ignoreIndex }: { ignoreIndex: number },
): Tensor {
  const { rows, n } = ceInputs("crossEntropyBackward", logits, labels, mask);
  const out = Tensor.empty(logits.shape);
  withDense([logits, labels, mask ?? labels, g], (ld, yd, md, gd) =>
    rowLaunch(
      "cross_entropy_backward.wgsl",
      {},
      [ld, yd, md, gd, out],
      [rows, n, mask ? 1 : 0, i32bits(ignoreIndex)],
      rows,
    ));
  return out;
}

function normInputs(op: string, x: Tensor, w: Tensor) {
  expectDtype(op, x, "f32", "input");
  const { rows, n } = lastDim(op, x);
  if (w.ndim !== 1 || w.shape[0] !== n) fail(op, `weight must be [${n}]`, x, w);
  return { rows, n };
}

export function rmsNorm([x, w]: Tensor[], { eps }: { eps: number }): Tensor {
  const { rows, n } = normInputs("rmsNorm", x, w);
  const out = Tensor.empty(x.shape);
  withDense(
    [x, w],
    (xd, wd) => rowLaunch("rmsnorm.wgsl", {}, [xd, wd, out], [rows, n, f32bits(eps)], rows),
  );
  return out;
}

export function rmsNormBackwardX([x, w, g]: Tensor[], { eps }: { eps: number }): Tensor {
  const { rows, n } = normInputs("rmsNormBackwardX", x, w);
  const out = Tensor.empty(x.shape);
  withDense(
    [x, w, g],
    (xd, wd, gd) =>
      rowLaunch("rmsnorm_backward_x.wgsl", {}, [xd, wd, gd, out], [rows, n, f32bits(eps)], rows),
  );
  return out;
}

const W_CHUNK = 256;

export function rmsNormBackwardW([x, g]: Tensor[], { eps }: { eps: number }): Tensor {
  const { rows, n } = lastDim("rmsNormBackwardW", x);
  const chunks = Math.ceil(rows / W_CHUNK);
  const rstd = Tensor.empty([rows]);
  const part = Tensor.empty([chunks, n]);
  const out = Tensor.empty([n]);
  withDense([x, g], (xd, gd) => {
    const ts = [xd, gd, rstd, part];
    const params = [rows, n, f32bits(eps), W_CHUNK];
    const access = ["read", "read", "rw", "rw"] as const;
    const wg = rowWG();
    launch(
      {
        shader: "rmsnorm_backward_w.wgsl",
        entry: "inv_rms",
        constants: { WG: wg },
        bindings: access,
      },
      ts,
      params,
      grid(rows, wg),
    );
    launch(
      {
        shader: "rmsnorm_backward_w.wgsl",
        entry: "partial",
        constants: { WG: wg },
        bindings: access,
      },
      ts,
      params,
      grid(chunks * n, wg),
    );
    rowLaunch("reduce.wgsl", { MAX: "false" }, [part, out], [1, chunks, n, chunks], n, {
      perInvocation: true,
    });
  });
  rstd.destroy();
  part.destroy();
  return out;
}

/** x: [B, T, H, D]; pos: i32 [B, T]; cos, sin: [maxPos, D/2]. */
export function rope(
  [x, pos, cos, sin]: Tensor[],
  { interleaved, inverse }: { interleaved: boolean; inverse: boolean },
): Tensor {
  const op = "rope";
  if (x.ndim !== 4) fail(op, "x must be [batch, seq, heads, head_dim]", x);
  const [B, T, H, D] = x.shape;
  if (D % 2 !== 0) fail(op, "head_dim must be even", x);
  expectDtype(op, pos, "i32", "positions");
  if (!sameShape(pos.shape, [B, T])) fail(op, `positions must be [${B},${T}]`, x, pos);
  if (cos.ndim !== 2 || cos.shape[1] !== D / 2 || !sameShape(cos.shape, sin.shape)) {
    fail(op, `cos and sin tables must be [max_pos, ${D / 2}]`, cos, sin);
  }
  const out = Tensor.empty(x.shape);
  const pairs = B * T * H * (D / 2);
  const check = checkId(
    `${op}: positions ${fmtShape(pos.shape)} for a table of ${cos.shape[0]} positions`,
  );
  withDense([x, pos, cos, sin], (xd, pd, cd, sd) =>
    launch(
      { shader: "rope.wgsl", defines: { INTERLEAVED: String(interleaved) } },
      [xd, pd, cd, sd, out, flags()],
      [pairs, H, D, cos.shape[0], inverse ? 1 : 0, check],
      grid(pairs),
      [4, 5],
    ));
  return out;
}

export function sample(
  [x]: Tensor[],
  { temperature, topK, topP, seed, counter }: {
    temperature: number;
    topK: number;
    topP: number;
    seed: number;
    counter: number;
  },
): Tensor {
  const op = "sample";
  expectDtype(op, x, "f32", "logits");
  if (!(temperature > 0)) {
    throw new OpError(`${op}: temperature must be > 0 (use argmax for greedy), got ${temperature}`);
  }
  if (!(topP > 0 && topP <= 1)) throw new OpError(`${op}: top_p must be in (0, 1], got ${topP}`);
  if (!Number.isInteger(topK) || topK < 0) {
    throw new OpError(`${op}: top_k must be a whole number >= 0, got ${topK}`);
  }
  const { rows, n } = lastDim(op, x);
  const out = Tensor.empty(x.shape.slice(0, -1), "i32");
  withDense([x], (xd) =>
    rowLaunch(
      "sample.wgsl",
      {},
      [xd, out],
      [rows, n, topK, seed >>> 0, counter >>> 0, f32bits(1 / temperature), f32bits(topP)],
      rows,
    ));
  return out;
}

/** q: [B, Hq, 1, D]; k, v: the whole cache [B, Hkv, L, D]; keyStart: optional i32 [B]. */
export function decodeAttention(
  [q, k, v, keyStart]: Tensor[],
  { scale, qPos }: { scale: number; qPos: number },
): Tensor {
  const op = "decodeAttention";
  const [B, Hq, Tq, D] = q.shape;
  const [, Hkv, L] = k.shape;
  if (Tq !== 1) fail(op, "needs one query per sequence", q);
  if (!sameShape(k.shape, [B, Hkv, L, D]) || !sameShape(v.shape, k.shape) || Hq % Hkv !== 0) {
    fail(op, "q, k, v do not match", q, k, v);
  }
  if (qPos >= L) fail(op, `query position ${qPos} is past the cache's ${L} keys`, k);
  if (D % 4 !== 0 || D > 128) fail(op, "head_dim must be a multiple of 4, at most 128", q);
  const out = Tensor.empty(q.shape);
  const rows = B * Hq;
  withDense([q, k, v, keyStart ?? k], (qd, kd, vd, sd) =>
    rowLaunch(
      "decode_attention.wgsl",
      {},
      [qd, kd, vd, sd, out],
      [rows, Hq, Hq / Hkv, L, D / 4, qPos, keyStart ? 1 : 0, f32bits(scale)],
      rows,
      { walk: L, constants: { DIM4: D / 4 } },
    ));
  return out;
}
