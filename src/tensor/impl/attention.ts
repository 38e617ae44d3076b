/**
 * Fused attention over many queries (training, scoring, prefill) and its
 * backward: no [T, T] scores in memory, causal pairs past the diagonal skipped,
 * and q, k, v read in place from strided views (shaders/lib/attention_block.wgsl).
 * The forward keeps each query row's logsumexp in its output's storage, past
 * the output itself; the backward recomputes each probability from it, as
 * FlashAttention does.
 */
import { contiguousCopy, expectDtype, f32bits, fail, grid, launch, sameShape } from "../launch.ts";
import { Tensor } from "../tensor.ts";
import { type AdapterKind, adapterKind, fitsLoopBudget } from "../kernel_choice.ts";

export interface FusedAttentionAttrs {
  scale: number;
  causal: boolean;
  /** Absolute position of query 0 (keys before it come from a KV cache). */
  qOffset: number;
}

/**
 * Each invocation owns `rows` rows and a workgroup has `lanes` invocations: rows past their causal
 * bound idle while the block's last row works, so blocks stay small. On the CPU adapter at the PPO
 * shape (bench/attention_block.ts, GPU ms, two runs): forward 4 rows 31-33, 2 rows 34, 1 row
 * (earlier) 41-56; forward + backward with the backward at 2 rows 148-150, at 4 rows 155-156, at
 * 1 row 159-171 (the backward holds four register blocks a row, and llvmpipe spills them). A
 * hardware GPU wants many threads and few registers each: one row a thread, 64 a workgroup
 * (unmeasured; bench/gpu.sh compares them).
 */
interface Block {
  lanes: number;
  rows: number;
}
const BLOCKS: Record<AdapterKind, { forward: Block; backward: Block }> = {
  software: { forward: { lanes: 8, rows: 4 }, backward: { lanes: 8, rows: 2 } },
  hardware: { forward: { lanes: 64, rows: 1 }, backward: { lanes: 64, rows: 1 } },
};
let forced: { forward: Block; backward: Block } | null = null;

/** Sets the block shapes for this process (bench/attention_block.ts compares them); null: the table's. */
export function setAttentionBlock(forward: Block | null, backward: Block | null = forward): void {
  forced = forward && backward ? { forward, backward } : null;
}

const blocks = () => forced ?? BLOCKS[adapterKind()];

/** The widest head the kernels hold in registers (their private arrays). */
const MAX_HEAD_DIM = 128;

/** A [B, heads, T, D] view as the kernels address it: (offset, batch, head, row) in vec4 units. */
function view4(t: Tensor): number[] {
  const [sb, sh, st, sd] = t.strides;
  const all = [t.offset, sb, sh, st];
  if (sd !== 1 && t.shape[3] > 1) return [];
  if (all.some((x) => x % 4 !== 0)) return [];
  return all.map((x) => x / 4);
}

/**
 * Whether the fused kernels take these operands: head_dim a multiple of 4 (at most 128), rows
 * aligned to vec4, and every invocation's loop within the software adapter's budget.
 */
export function fusedAttentionFits(q: Tensor, k: Tensor): boolean {
  const [, Hq, Tq, D] = q.shape;
  const [, Hkv, Tk] = k.shape;
  return D % 4 === 0 && D <= MAX_HEAD_DIM && fitsLoopBudget(Tk) &&
    fitsLoopBudget((Hq / Hkv) * Tq);
}

/** A tensor's [B, heads, T, D] view as vec4 units, copied contiguous first if it is not aligned. */
function operand(t: Tensor, temps: Tensor[]): [Tensor, number[]] {
  const v = view4(t);
  if (v.length) return [t, v];
  const d = contiguousCopy(t);
  temps.push(d);
  return [d, view4(d)];
}

interface Shapes {
  B: number;
  Hq: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  D: number;
}

function shapes(op: string, q: Tensor, k: Tensor, v: Tensor, keyStart?: Tensor): Shapes {
  if (q.ndim !== 4 || k.ndim !== 4) fail(op, "q, k, v must be [batch, heads, seq, head_dim]");
  const [B, Hq, Tq, D] = q.shape;
  const [, Hkv, Tk] = k.shape;
  if (!sameShape(k.shape, [B, Hkv, Tk, D]) || !sameShape(v.shape, k.shape) || Hq % Hkv !== 0) {
    fail(op, "q, k, v do not match", q, k, v);
  }
  if (D % 4 !== 0 || D > MAX_HEAD_DIM) {
    fail(op, `head_dim must be a multiple of 4, at most ${MAX_HEAD_DIM}`, q);
  }
  if (keyStart) {
    expectDtype(op, keyStart, "i32", "keyStart");
    if (keyStart.size !== B) fail(op, "keyStart needs one entry per batch row", q, keyStart);
  }
  return { B, Hq, Hkv, Tq, Tk, D };
}

/** Params of lib/attention_block.wgsl: scalars, then the q, k, v, g and out views. */
function params(
  s: Shapes,
  blk: Block,
  a: FusedAttentionAttrs,
  hasKeyStart: boolean,
  rows: number,
  bhCount: number,
  lseOff: number,
  views: { q?: number[]; k?: number[]; v?: number[]; g?: number[]; out?: number[] },
): number[] {
  const none = [0, 0, 0, 0];
  return [
    s.Hq,
    s.Hq / s.Hkv,
    s.Tq,
    s.Tk,
    a.qOffset,
    a.causal ? 1 : 0,
    hasKeyStart ? 1 : 0,
    f32bits(a.scale),
    Math.ceil(rows / (blk.lanes * blk.rows)),
    bhCount,
    blk.lanes * blk.rows,
    lseOff,
    ...(views.q ?? none),
    ...(views.k ?? none),
    ...(views.v ?? none),
    ...(views.g ?? none),
    ...(views.out ?? none),
  ];
}

/** Workgroups for `bh` (batch, head) pairs of `rows` rows each. */
const groups = (blk: Block, bh: number, rows: number) =>
  grid(bh * Math.ceil(rows / (blk.lanes * blk.rows)), 1);

/**
 * An empty [B, heads, T, width] tensor laid out as [B, T, heads, width] (llama's own layout, so
 * its permute back is contiguous), with `tail` more floats of storage after it.
 */
function headsView(B: number, H: number, T: number, width: number, tail = 0): Tensor {
  const n = B * T * H * width;
  const base = Tensor.empty([n + tail]);
  const out = base.view([B, H, T, width], [T * H * width, width, H * width, 1], 0);
  base.destroy();
  return out;
}

/** Where a fused attention output's logsumexps start in its storage, in vec4 units. */
const lseOffset = (o: Tensor) => o.size / 4;

/**
 * The forward's per-row logsumexps, [B, Hq, Tq] as vec4 rows after its output (the backward
 * binds the output's storage and reads them there).
 */
function checkForwardOutput(op: string, o: Tensor, q: Tensor) {
  if (!sameShape(o.shape, q.shape) || o.offset !== 0) {
    fail(op, "needs the fusedAttention output itself, logsumexps and all", o, q);
  }
}

function run(
  shader: string,
  blk: Block,
  D: number,
  bindings: Tensor[],
  p: number[],
  workgroups: [number, number, number],
) {
  launch(
    { shader, defines: { R: String(blk.rows) }, constants: { WG: blk.lanes, DIM4: D / 4 } },
    bindings,
    p,
    workgroups,
  );
}

/**
 * inputs: q [B, Hq, Tq, D], k and v [B, Hkv, Tk, D], optional i32 keyStart [B] -> [B, Hq, Tq, D]
 * (its storage holds each query row's logsumexp after it, for the backward).
 */
export function fusedAttention(
  [q, k, v, keyStart]: Tensor[],
  attrs: FusedAttentionAttrs,
): Tensor {
  const s = shapes("fusedAttention", q, k, v, keyStart);
  const temps: Tensor[] = [];
  const [qd, qv] = operand(q, temps);
  const [kd, kv] = operand(k, temps);
  const [vd, vv] = operand(v, temps);
  const out = headsView(s.B, s.Hq, s.Tq, s.D, 4 * s.B * s.Hq * s.Tq);
  const p = params(s, blocks().forward, attrs, !!keyStart, s.Tq, s.B * s.Hq, lseOffset(out), {
    q: qv,
    k: kv,
    v: vv,
    out: view4(out),
  });
  run(
    "attention_forward.wgsl",
    blocks().forward,
    s.D,
    [qd, kd, vd, keyStart ?? kd, out],
    p,
    groups(blocks().forward, s.B * s.Hq, s.Tq),
  );
  for (const t of temps) t.destroy();
  return out;
}

/**
 * The backward kernels' bindings and params. inputs: q, k, v, o (the fusedAttention output),
 * g (dL/do), delta (dO . O per query row, [B, Hq, Tq]), optional keyStart.
 */
function backward(
  op: string,
  shader: string,
  [q, k, v, o, g, delta, keyStart]: Tensor[],
  attrs: FusedAttentionAttrs,
  output: (s: Shapes) => { out: Tensor; rows: number; bh: number },
): Tensor {
  const s = shapes(op, q, k, v, keyStart);
  checkForwardOutput(op, o, q);
  if (!sameShape(delta.shape, [s.B, s.Hq, s.Tq]) || !delta.isContiguous || delta.offset !== 0) {
    fail(op, "delta must be a dense [batch, heads, queries]", delta);
  }
  const temps: Tensor[] = [];
  const [qd, qv] = operand(q, temps);
  const [kd, kv] = operand(k, temps);
  const [vd, vv] = operand(v, temps);
  const [gd, gv] = operand(g, temps);
  const { out, rows, bh } = output(s);
  const p = params(s, blocks().backward, attrs, !!keyStart, rows, bh, lseOffset(o), {
    q: qv,
    k: kv,
    v: vv,
    g: gv,
    out: view4(out),
  });
  run(
    shader,
    blocks().backward,
    s.D,
    [qd, kd, vd, gd, o, delta, keyStart ?? kd, out],
    p,
    groups(blocks().backward, bh, rows),
  );
  for (const t of temps) t.destroy();
  return out;
}

/** dL/dq [B, Hq, Tq, D]; inputs as `backward`'s. */
export function attentionBackwardQ(inputs: Tensor[], attrs: FusedAttentionAttrs): Tensor {
  return backward("attentionBackwardQ", "attention_backward_q.wgsl", inputs, attrs, (s) => ({
    out: headsView(s.B, s.Hq, s.Tq, s.D),
    rows: s.Tq,
    bh: s.B * s.Hq,
  }));
}

/** [B, Hkv, Tk, 2D]: dL/dk, then dL/dv, on the last axis; inputs as `backward`'s. */
export function attentionBackwardKV(inputs: Tensor[], attrs: FusedAttentionAttrs): Tensor {
  return backward("attentionBackwardKV", "attention_backward_kv.wgsl", inputs, attrs, (s) => ({
    out: headsView(s.B, s.Hkv, s.Tk, 2 * s.D),
    rows: s.Tk,
    bh: s.B * s.Hkv,
  }));
}
