/**
 * GGUF v3 files (llama.cpp's model format): metadata key-values and F32/F16 tensors, written in
 * pure TypeScript.
 *
 * Layout (little-endian): magic "GGUF", u32 version 3, u64 tensor count, u64 metadata count, the
 * metadata (key string, u32 value type, value), the tensor infos (name, u32 dims, u64 dims
 * innermost first, u32 ggml type, u64 offset into the data section), zero padding to the
 * alignment (general.alignment, default 32), then the data section, every tensor starting at a
 * multiple of the alignment. A string is a u64 byte length and UTF-8 bytes, with no terminator.
 */
import { EngineError } from "../errors.ts";
import { writeAll } from "../util/fs.ts";
import { atomicWrite } from "./files.ts";

/** GGUF metadata value types (gguf_type in ggml's gguf.h). */
const VALUE_TYPE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

/** A metadata value with its GGUF type (only the types llama-architecture files use). */
export type GgufValue =
  | { type: "u32" | "i32" | "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: string[] }
  | { type: "f32[]" | "i32[]"; value: ArrayLike<number> };

/** Tensor element types this writer stores (ggml_type values 0 and 1). */
export type GgufTensorType = "F32" | "F16";
const GGML_TYPE: Record<GgufTensorType, number> = { F32: 0, F16: 1 };
const TYPE_SIZE: Record<GgufTensorType, number> = { F32: 4, F16: 2 };

export interface GgufTensor {
  name: string;
  /**
   * Row-major shape, outermost first, as in safetensors and PyTorch (`[out, in]` for a linear
   * weight). The file lists it reversed (ne0 = the innermost, contiguous dimension).
   */
  shape: number[];
  type: GgufTensorType;
  /** float32 values; F16 tensors are rounded to half precision (nearest, ties to even). */
  data: Float32Array;
}

export interface GgufFile {
  /** Keys in file order. */
  metadata: [string, GgufValue][];
  tensors: GgufTensor[];
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// Half precision

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits of a number, rounded to nearest, ties to even (NaN stays NaN). */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15; // the half-precision biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow: infinity
  if (e <= 0) {
    // Subnormal half (or zero): value / 2^-24, rounded.
    if (e < -10) return sign; // below half the smallest subnormal: zero
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rem > half || (rem === half && (r & 1) === 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to infinity: the right result.
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++;
  return sign | r;
}

/** binary16 bits of every value. */
export function toF16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f32ToF16(data[i]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A growable little-endian byte buffer. */
class Bytes {
  #buf = new Uint8Array(1024);
  #view = new DataView(this.#buf.buffer);
  length = 0;
  readonly #enc = new TextEncoder();

  #reserve(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.#reserve(1);
    this.#view.setUint8(this.length, v);
    this.length += 1;
  }
  u32(v: number): void {
    this.#reserve(4);
    this.#view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.#reserve(4);
    this.#view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.#reserve(4);
    this.#view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    this.#reserve(8);
    this.#view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  string(s: string): void {
    const b = this.#enc.encode(s);
    this.u64(b.length);
    this.#reserve(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
  }
  zeros(n: number): void {
    this.#reserve(n);
    this.#buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}

function fail(fault: string): never {
  throw new EngineError(`GGUF: ${fault}`);
}

function checkU32(key: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail(`"${key}" must be a u32, got ${v}`);
}
function checkI32(key: string, v: number): void {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
    fail(`"${key}" must be an i32, got ${v}`);
  }
}

function writeValue(out: Bytes, key: string, v: GgufValue): void {
  switch (v.type) {
    case "u32":
      checkU32(key, v.value);
      out.u32(VALUE_TYPE.u32);
      out.u32(v.value);
      return;
    case "i32":
      checkI32(key, v.value);
      out.u32(VALUE_TYPE.i32);
      out.i32(v.value);
      return;
    case "f32":
      out.u32(VALUE_TYPE.f32);
      out.f32(v.value);
      return;
    case "bool":
      out.u32(VALUE_TYPE.bool);
      out.u8(v.value ? 1 : 0);
      return;
    case "string":
      out.u32(VALUE_TYPE.string);
      out.string(v.value);
      return;
    case "string[]":
      out.u32(VALUE_TYPE.array);
      out.u32(VALUE_TYPE.string);
      out.u64(v.value.length);
      for (const s of v.value) out.string(s);
      return;
    case "f32[]":
      out.u32(VALUE_TYPE.array);
      out.u32(VALUE_TYPE.f32);
      out.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) out.f32(v.value[i]);
      return;
    case "i32[]":
      out.u32(VALUE_TYPE.array);
      out.u32(VALUE_TYPE.i32);
      out.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) {
        checkI32(key, v.value[i]);
        out.i32(v.value[i]);
      }
      return;
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

interface Layout {
  /** Everything before the data section, padding included. */
  head: Uint8Array;
  /** Offset of each tensor in the data section. */
  offsets: number[];
  alignment: number;
  /** Bytes of the data section (the last tensor padded to the alignment too). */
  dataBytes: number;
}

function layout(file: GgufFile): Layout {
  const keys = new Set<string>();
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  for (const [key, v] of file.metadata) {
    if (key === "") fail("empty metadata key");
    if (keys.has(key)) fail(`metadata key "${key}" appears twice`);
    keys.add(key);
    if (key === "general.alignment") {
      if (v.type !== "u32" || v.value === 0 || v.value % 8 !== 0) {
        fail(`general.alignment must be a u32 multiple of 8`);
      }
      alignment = v.value;
    }
  }
  const names = new Set<string>();
  const out = new Bytes();
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(file.tensors.length);
  out.u64(file.metadata.length);
  for (const [key, v] of file.metadata) {
    out.string(key);
    writeValue(out, key, v);
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of file.tensors) {
    if (t.name === "" || new TextEncoder().encode(t.name).length >= 64) {
      fail(`tensor name ${JSON.stringify(t.name)} must have 1 to 63 bytes`);
    }
    if (names.has(t.name)) fail(`tensor "${t.name}" appears twice`);
    names.add(t.name);
    if (!(t.type in GGML_TYPE)) fail(`tensor "${t.name}": unsupported type ${t.type}`);
    if (t.shape.length < 1 || t.shape.length > 4) {
      fail(`tensor "${t.name}": ${t.shape.length} dimensions (GGUF takes 1 to 4)`);
    }
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
      fail(`tensor "${t.name}": bad shape [${t.shape.join(", ")}]`);
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      fail(
        `tensor "${t.name}": shape [${t.shape.join(", ")}] has ${count} elements, ` +
          `data has ${t.data.length}`,
      );
    }
    out.string(t.name);
    out.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) out.u64(d);
    out.u32(GGML_TYPE[t.type]);
    out.u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + count * TYPE_SIZE[t.type], alignment);
  }
  out.zeros(alignUp(out.length, alignment) - out.length);
  return { head: out.bytes(), offsets, alignment, dataBytes: offset };
}

/** The tensor's bytes as stored (little-endian F32 or F16). */
function tensorBytes(t: GgufTensor): Uint8Array {
  if (!LITTLE_ENDIAN) fail("writing GGUF needs a little-endian host");
  if (t.type === "F16") return new Uint8Array(toF16(t.data).buffer);
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** The whole file in memory. */
export function serializeGguf(file: GgufFile): Uint8Array {
  const { head, offsets, dataBytes } = layout(file);
  const out = new Uint8Array(head.length + dataBytes); // zero-filled: padding included
  out.set(head, 0);
  file.tensors.forEach((t, i) => out.set(tensorBytes(t), head.length + offsets[i]));
  return out;
}

/** Writes a GGUF file atomically (temporary file in the same folder, then rename). */
export async function writeGguf(path: string, file: GgufFile): Promise<void> {
  const { head, offsets, alignment } = layout(file);
  await atomicWrite(path, async (f) => {
    await writeAll(f, head);
    let pos = 0;
    for (let i = 0; i < file.tensors.length; i++) {
      if (offsets[i] > pos) await writeAll(f, new Uint8Array(offsets[i] - pos));
      const b = tensorBytes(file.tensors[i]);
      await writeAll(f, b);
      pos = offsets[i] + b.length;
    }
    const end = alignUp(pos, alignment);
    if (end > pos) await writeAll(f, new Uint8Array(end - pos));
  });
}
