import { OpError } from "../errors.ts";
import { gpu, type PooledBuffer } from "../gpu/mod.ts";

export type DType = "f32" | "i32";
export type Shape = readonly number[];
export type HostArray = Float32Array | Int32Array;

/** A pooled buffer shared by a tensor and its views; back to the pool at zero refs. */
class Storage {
  refs = 1;
  constructor(readonly buf: PooledBuffer) {}
  retain() {
    this.refs++;
  }
  release() {
    if (--this.refs === 0) gpu().pool.release(this.buf);
  }
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(",")}]`;
}

/**
 * The autograd record of the op that made a tensor. The tensor layer only
 * stores it; src/autograd/ reads it.
 */
export interface GradNode {
  op: string;
  inputs: readonly Tensor[];
  attrs: unknown;
}

let nextId = 1;

/** An f32 or i32 array on the GPU, with shape and strides (views share storage). */
export class Tensor {
  readonly id = nextId++;
  readonly shape: Shape;
  readonly strides: Shape;
  /** Offset of element [0,...,0] in the storage, in elements. */
  readonly offset: number;
  readonly dtype: DType;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: GradNode | null = null;
  #storage: Storage | null;

  private constructor(
    storage: Storage,
    shape: Shape,
    strides: Shape,
    offset: number,
    dtype: DType,
  ) {
    this.#storage = storage;
    this.shape = shape;
    this.strides = strides;
    this.offset = offset;
    this.dtype = dtype;
    track(this);
  }

  /** A new contiguous tensor with uninitialised contents. */
  static empty(shape: Shape, dtype: DType = "f32"): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new OpError(`invalid shape ${fmtShape(shape)}`);
    }
    const buf = gpu().pool.acquire(Math.max(numel(shape), 1) * 4);
    return new Tensor(new Storage(buf), [...shape], contiguousStrides(shape), 0, dtype);
  }

  /** A view of this tensor's storage; no data moves. */
  view(shape: Shape, strides: Shape, offset: number): Tensor {
    const s = this.#alive("view");
    s.retain();
    return new Tensor(s, [...shape], [...strides], offset, this.dtype);
  }

  get size(): number {
    return numel(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get isContiguous(): boolean {
    const c = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d === 1 || this.strides[i] === c[i]);
  }

  get destroyed(): boolean {
    return this.#storage === null;
  }

  /** The storage buffer; throws a clear error after destroy(). */
  buffer(op = "use"): PooledBuffer {
    return this.#alive(op).buf;
  }

  /** Returns the storage to the pool. Views of it keep it alive. */
  destroy(): void {
    if (!this.#storage) return;
    this.#storage.release();
    this.#storage = null;
    this.node = null;
    if (this.grad) {
      this.grad.destroy();
      this.grad = null;
    }
    untrack(this);
  }

  [Symbol.dispose](): void {
    this.destroy();
  }

  /** Reads the tensor back (one GPU wait). Prefer `readAll` for several. */
  async data(): Promise<HostArray> {
    return (await readAll([this]))[0];
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new OpError(`item(): tensor has shape ${fmtShape(this.shape)}`);
    return (await this.data())[0];
  }

  toString(): string {
    return `Tensor(${this.dtype}${fmtShape(this.shape)}${this.destroyed ? ", destroyed" : ""})`;
  }

  #alive(op: string): Storage {
    if (!this.#storage) {
      throw new OpError(
        `${op}: ${this.dtype} tensor of shape ${fmtShape(this.shape)} was used after destroy()`,
      );
    }
    return this.#storage;
  }
}

// ---- Host data in and out ----------------------------------------------------

/** Uploads host data into a new tensor. */
export function tensor(data: ArrayLike<number>, shape?: Shape, dtype?: DType): Tensor {
  const dt: DType = dtype ?? (data instanceof Int32Array ? "i32" : "f32");
  const sh = shape ?? [data.length];
  if (numel(sh) !== data.length) {
    throw new OpError(`tensor(): ${data.length} values do not fill shape ${fmtShape(sh)}`);
  }
  const t = Tensor.empty(sh, dt);
  const host = dt === "f32"
    ? (data instanceof Float32Array ? data : Float32Array.from(data))
    : (data instanceof Int32Array ? data : Int32Array.from(data));
  if (host.length > 0) gpu().recorder.upload(t.buffer("tensor"), 0, host);
  return t;
}

/** Reads tensors back with a single GPU wait. Views are made contiguous first. */
export async function readAll(tensors: readonly Tensor[]): Promise<HostArray[]> {
  const { recorder } = gpu();
  const flat = tensors.map((t) => (t.isContiguous ? t : contiguousHook!(t)));
  const raw = await recorder.read(flat.map((t) => ({
    buf: t.buffer("read"),
    offset: t.offset * 4,
    bytes: t.size * 4,
  })));
  flat.forEach((t, i) => t !== tensors[i] && t.destroy());
  return raw.map((r, i) => (tensors[i].dtype === "f32" ? new Float32Array(r) : new Int32Array(r)));
}

/** Set by ops.ts: copies a strided view into a contiguous tensor. */
let contiguousHook: ((t: Tensor) => Tensor) | null = null;
export function setContiguousHook(fn: (t: Tensor) => Tensor): void {
  contiguousHook = fn;
}

// ---- Scopes: deterministic freeing -------------------------------------------

const scopes: Set<Tensor>[] = [];

function track(t: Tensor) {
  scopes[scopes.length - 1]?.add(t);
}
function untrack(t: Tensor) {
  for (const s of scopes) s.delete(t);
}

function keptTensors(value: unknown): Tensor[] {
  if (value instanceof Tensor) return [value];
  if (Array.isArray(value)) return value.flatMap(keptTensors);
  if (value && typeof value === "object") return Object.values(value).flatMap(keptTensors);
  return [];
}

/**
 * Runs `fn` and destroys every tensor it created except those it returns
 * (which move to the enclosing scope). Like tf.tidy: GPU memory is freed at a
 * known point instead of whenever the garbage collector runs.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const keep = new Set(keptTensors(result));
  for (const t of scope) {
    if (keep.has(t)) scopes[scopes.length - 1]?.add(t);
    else t.destroy();
  }
  return result;
}

/** Takes a tensor out of every scope: it lives until destroy(). */
export function keep<T extends Tensor>(t: T): T {
  untrack(t);
  return t;
}
