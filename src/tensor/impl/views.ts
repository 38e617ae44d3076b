/** Ops that only re-describe storage (reshape, permute, slice, expand), and the copies around them. */
import { OpError } from "../../errors.ts";
import { contiguousCopy, copyInto, fail, fillDense, normAxis } from "../launch.ts";
import { contiguousStrides, fmtShape, numel, Tensor } from "../tensor.ts";

/** Resolves one -1 in a target shape, and checks the element count. */
export function resolveShape(op: string, t: Tensor, shape: readonly number[]): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) {
    const known = numel(out.filter((_, i) => i !== free));
    out[free] = known === 0 ? 0 : t.size / known;
  }
  if (!out.every((d) => Number.isInteger(d) && d >= 0) || numel(out) !== t.size) {
    fail(op, `cannot view ${t.size} elements as ${fmtShape(shape)}`, t);
  }
  return out;
}

export function reshape([t]: Tensor[], { shape }: { shape: number[] }): Tensor {
  const target = resolveShape("reshape", t, shape);
  if (t.isContiguous) return t.view(target, contiguousStrides(target), t.offset);
  const c = contiguousCopy(t);
  const v = c.view(target, contiguousStrides(target), 0);
  c.destroy();
  return v;
}

export function permute([t]: Tensor[], { dims }: { dims: number[] }): Tensor {
  const sorted = [...dims].map((d) => normAxis("permute", d, t.ndim)).sort((a, b) => a - b);
  if (dims.length !== t.ndim || sorted.some((d, i) => d !== i)) {
    fail("permute", `dims [${dims}] are not a permutation of ${t.ndim} axes`, t);
  }
  const ds = dims.map((d) => normAxis("permute", d, t.ndim));
  return t.view(ds.map((d) => t.shape[d]), ds.map((d) => t.strides[d]), t.offset);
}

export function slice(
  [t]: Tensor[],
  { starts, ends }: { starts: number[]; ends: number[] },
): Tensor {
  if (starts.length !== t.ndim || ends.length !== t.ndim) {
    fail("slice", `needs ${t.ndim} starts and ends, got [${starts}] and [${ends}]`, t);
  }
  let offset = t.offset;
  const shape = t.shape.map((d, i) => {
    const s = starts[i];
    const e = ends[i];
    if (!(0 <= s && s <= e && e <= d)) {
      fail("slice", `range ${s}:${e} is out of bounds for axis ${i} of size ${d}`, t);
    }
    offset += s * t.strides[i];
    return e - s;
  });
  return t.view(shape, t.strides, offset);
}

export function expand([t]: Tensor[], { shape }: { shape: number[] }): Tensor {
  const lead = shape.length - t.ndim;
  if (lead < 0) fail("expand", `cannot expand to fewer dims ${fmtShape(shape)}`, t);
  const strides = shape.map((d, i) => {
    if (i < lead) return 0;
    const td = t.shape[i - lead];
    if (td === d) return t.strides[i - lead];
    if (td === 1) return 0;
    return fail("expand", `cannot expand to ${fmtShape(shape)}`, t);
  });
  return t.view(shape, strides, t.offset);
}

export function contiguous([t]: Tensor[]): Tensor {
  return contiguousCopy(t);
}

export function pad(
  [g]: Tensor[],
  { starts, shape }: { starts: number[]; shape: number[] },
): Tensor {
  const out = Tensor.empty(shape, g.dtype);
  fillDense(out, 0);
  const region = out.view(
    g.shape,
    out.strides,
    starts.reduce((o, s, i) => o + s * out.strides[i], 0),
  );
  copyInto(g, region);
  region.destroy();
  return out;
}

export function concat(ts: Tensor[], { axis }: { axis: number }): Tensor {
  if (ts.length === 0) throw new OpError("concat: no tensors");
  const first = ts[0];
  const a = normAxis("concat", axis, first.ndim);
  for (const t of ts) {
    if (
      t.ndim !== first.ndim || t.dtype !== first.dtype ||
      t.shape.some((d, i) => i !== a && d !== first.shape[i])
    ) {
      fail("concat", `shapes differ off axis ${a}`, ...ts);
    }
  }
  const shape = [...first.shape];
  shape[a] = ts.reduce((s, t) => s + t.shape[a], 0);
  const out = Tensor.empty(shape, first.dtype);
  let at = 0;
  for (const t of ts) {
    const region = out.view(t.shape, out.strides, at * out.strides[a]);
    copyInto(t, region);
    region.destroy();
    at += t.shape[a];
  }
  return out;
}
