/** What every kernel front-end needs: shape checks, grids, dense inputs, dispatch. */
import { OpError } from "../errors.ts";
import { type Access, gpu, type KernelSpec, type PooledBuffer } from "../gpu/mod.ts";
import { fmtShape, setContiguousHook, type Shape, Tensor } from "./tensor.ts";

export { f32bits, i32bits } from "../gpu/mod.ts";

/** Workgroup counts for `n` invocations in groups of `wg`, 2-D past 65535 groups. */
export function grid(n: number, wg = 64): [number, number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= 65535) return [groups, 1, 1];
  const x = 65535;
  return [x, Math.ceil(groups / x), 1];
}

/**
 * Workgroup size of the one-invocation-per-row kernels. On the CPU adapter a
 * workgroup runs on one thread, so small groups spread few rows over cores.
 */
export function rowWG(): number {
  return gpu().info.software ? 8 : 64;
}

/** One storage binding: a tensor (read, or written if `rw`) or a raw buffer. */
export type Binding = Tensor | PooledBuffer;

/** Records one dispatch of `spec` over `bindings`, in binding order. */
export function launch(
  spec: Omit<KernelSpec, "bindings"> & { bindings?: readonly Access[] },
  bindings: readonly Binding[],
  params: ArrayLike<number>,
  workgroups: readonly [number, number, number],
  writes: readonly number[] = [bindings.length - 1],
): void {
  const g = gpu();
  const access = spec.bindings ?? bindings.map((_, i) => (writes.includes(i) ? "rw" : "read"));
  const kernel = g.pipelines.kernel({ ...spec, bindings: access });
  const bufs = bindings.map((b) => (b instanceof Tensor ? b.buffer(spec.shader) : b));
  g.recorder.dispatch(kernel, bufs, params, workgroups);
}

/** The bad-index reporting buffer and an id naming what was checked. */
export function checkId(what: string): number {
  return gpu().recorder.check(what);
}

export function flags(): PooledBuffer {
  return gpu().recorder.flags;
}

export function fail(op: string, why: string, ...tensors: Tensor[]): never {
  const shapes = tensors.map((t) => `${t.dtype}${fmtShape(t.shape)}`).join(", ");
  throw new OpError(`${op}: ${why}${shapes ? ` (got ${shapes})` : ""}`);
}

export function expectDtype(op: string, t: Tensor, dtype: "f32" | "i32", what: string): void {
  if (t.dtype !== dtype) fail(op, `${what} must be ${dtype}`, t);
}

export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) {
    throw new OpError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Numpy broadcasting of two shapes, or a clear error. */
export function broadcastShapes(op: string, ...tensors: Tensor[]): number[] {
  const rank = Math.max(...tensors.map((t) => t.ndim));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const t of tensors) {
      const td = t.shape[t.ndim - rank + i] ?? 1;
      if (td === 1) continue;
      if (d !== 1 && td !== d) fail(op, "shapes cannot be broadcast together", ...tensors);
      d = td;
    }
    out.push(d);
  }
  return out;
}

/** Strides of `t` read as if broadcast to `shape` (0 on broadcast dims). */
export function broadcastStrides(t: Tensor, shape: Shape): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((d, i) => {
    if (i < lead) return 0;
    return t.shape[i - lead] === 1 && d !== 1 ? 0 : t.strides[i - lead];
  });
}

/**
 * Runs `fn` with every tensor dense (contiguous from element 0), copying
 * views first; the copies are freed once the kernels are recorded.
 */
export function withDense<T>(
  tensors: readonly (Tensor | undefined)[],
  fn: (...dense: Tensor[]) => T,
): T {
  const temps: Tensor[] = [];
  const dense = tensors.map((t) => {
    if (!t || (t.isContiguous && t.offset === 0)) return t as Tensor;
    const c = contiguousCopy(t);
    temps.push(c);
    return c;
  });
  try {
    return fn(...dense);
  } finally {
    for (const t of temps) t.destroy();
  }
}

/** Up to 8 dims per operand, packed as WGSL array<vec4<u32>, 2>. */
export const MAX_RANK = 8;

function pack8(v: readonly number[]): number[] {
  const out = new Array<number>(8).fill(0);
  v.forEach((x, i) => (out[i] = x));
  return out;
}

export interface Walk {
  offset: number;
  strides: readonly number[];
}

/**
 * Drops size-1 dims and merges neighbours that every operand walks
 * contiguously: a permuted 4-D copy often becomes 2-D, a dense one 1-D.
 */
export function collapseDims(
  shape: readonly number[],
  walks: readonly Walk[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = walks.map(() => []);
  shape.forEach((d, i) => {
    if (d === 1) return;
    const last = outShape.length - 1;
    if (last >= 0 && walks.every((w, k) => outStrides[k][last] === w.strides[i] * d)) {
      outShape[last] *= d;
      walks.forEach((w, k) => (outStrides[k][last] = w.strides[i]));
    } else {
      outShape.push(d);
      walks.forEach((w, k) => outStrides[k].push(w.strides[i]));
    }
  });
  return { shape: outShape, strides: outStrides };
}

/**
 * Records an elementwise kernel built on shaders/lib/strided.wgsl: operands
 * a, b, c (as many as given) are read through their own offsets and strides
 * over `shape`, and the output through `out`'s. Dims are collapsed first and
 * the kernel is specialised on the remaining rank.
 */
export function stridedLaunch(
  spec: { shader: string; defines?: Record<string, string> },
  bindings: readonly Binding[],
  shape: readonly number[],
  operands: readonly Walk[],
  out: Walk,
  s0 = 0,
  s1 = 0,
): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  const walks = [...operands, out];
  const c = collapseDims(shape, walks);
  if (c.shape.length > MAX_RANK) throw new OpError(`rank ${c.shape.length} exceeds ${MAX_RANK}`);
  const dense = c.shape.length <= 1 && c.strides.every((s) => s.length === 0 || s[0] === 1);
  const strideOf = (k: number) => pack8(c.strides[k] ?? c.strides[walks.length - 1]);
  const f = new Float32Array([s0, s1]);
  const fu = new Uint32Array(f.buffer);
  const outK = walks.length - 1;
  const params = [
    n,
    c.shape.length,
    operands[0]?.offset ?? 0,
    operands[1]?.offset ?? 0,
    operands[2]?.offset ?? 0,
    out.offset,
    fu[0],
    fu[1],
    ...pack8(c.shape),
    ...strideOf(operands.length > 0 ? 0 : outK),
    ...strideOf(operands.length > 1 ? 1 : outK),
    ...strideOf(operands.length > 2 ? 2 : outK),
    ...strideOf(outK),
  ];
  launch(
    {
      shader: spec.shader,
      defines: { ...spec.defines, RANK: String(c.shape.length), STRIDED: String(!dense) },
    },
    bindings,
    params,
    grid(n),
  );
}

/**
 * The same walks four elements at a time, or null: the innermost collapsed axis must be contiguous
 * in every walk with a length divisible by 4, and every other stride and offset divisible by 4.
 * Shape, strides and offsets come back in vec4 units, for the *_vec4 kernels (on the CPU adapter a
 * vec4 load is one load, where four scalar ones are four per-lane gathers).
 */
export function vec4Walks(
  shape: readonly number[],
  walks: readonly Walk[],
): { shape: number[]; walks: Walk[] } | null {
  const c = collapseDims(shape, walks);
  const r = c.shape.length - 1;
  const by4 = (x: number) => x % 4 === 0;
  if (
    r < 0 || !by4(c.shape[r]) || !walks.every((w) => by4(w.offset)) ||
    !c.strides.every((s) => s[r] === 1 && s.slice(0, r).every(by4))
  ) {
    return null;
  }
  const q = (s: number[]) => s.map((x, i) => (i === r ? 1 : x / 4));
  return {
    shape: c.shape.map((d, i) => (i === r ? d / 4 : d)),
    walks: walks.map((w, k) => ({ offset: w.offset / 4, strides: q(c.strides[k]) })),
  };
}

/** dst view <- src view, bit for bit (f32 or i32). */
export function copyInto(src: Tensor, dst: Tensor): void {
  if (!sameShape(src.shape, dst.shape)) fail("copy", "shapes differ", src, dst);
  const v = vec4Walks(src.shape, [src, dst]);
  if (v) {
    // Four words per invocation: several times the throughput on the CPU adapter.
    stridedLaunch({ shader: "copy_vec4.wgsl" }, [src, dst], v.shape, [v.walks[0]], v.walks[1]);
    return;
  }
  stridedLaunch({ shader: "copy.wgsl" }, [src, dst], dst.shape, [src], dst);
}

export function contiguousCopy(t: Tensor): Tensor {
  const out = Tensor.empty(t.shape, t.dtype);
  copyInto(t, out);
  return out;
}
setContiguousHook(contiguousCopy);

/** Fills a dense tensor with one value, as f32 or i32 bits. */
export function fillDense(t: Tensor, value: number): void {
  if (t.size === 0) return;
  const bits = t.dtype === "f32"
    ? new Uint32Array(new Float32Array([value]).buffer)[0]
    : value >>> 0;
  launch({ shader: "fill.wgsl" }, [t], [t.size, bits], grid(t.size));
}
