/**
 * safetensors checkpoints: reading F32, F16 and BF16 tensors (converted exactly to float32), from
 * one `model.safetensors` or from shards listed in `model.safetensors.index.json`, and writing F32.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON header
 * `{"__metadata__": {...}, "name": {"dtype", "shape", "data_offsets": [begin, end]}, ...}`, then
 * the data section; offsets are relative to the start of the data section.
 */
import { join } from "node:path";
import { EngineError } from "../errors.ts";
import { writeAll } from "../util/fs.ts";
import { errorText } from "../util/text.ts";
import {
  atomicWrite,
  exists,
  isPlainObject,
  ModelFileError,
  readBytes,
  readJsonObject,
} from "./files.ts";

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** Bytes per element of every safetensors dtype (for messages); only F32, F16, BF16 are read. */
const DTYPE_SIZES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};
const SUPPORTED = new Set(["F32", "F16", "BF16"]);

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// Half-precision conversion

/** The float32 value of IEEE binary16 bits (exact: every f16 is representable in f32). */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

const bfScratchU32 = new Uint32Array(1);
const bfScratchF32 = new Float32Array(bfScratchU32.buffer);

/** The float32 value of bfloat16 bits (exact: bf16 is the top half of an f32). */
export function bf16ToF32(bits: number): number {
  bfScratchU32[0] = (bits & 0xffff) << 16;
  return bfScratchF32[0];
}

let f16Table: Float32Array | undefined;
function f16Lookup(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16ToF32(i);
  }
  return f16Table;
}

/** Little-endian u16 values at bytes[start, start + 2 * count). */
function readU16(bytes: Uint8Array, start: number, count: number): Uint16Array {
  if (LITTLE_ENDIAN && (bytes.byteOffset + start) % 2 === 0) {
    return new Uint16Array(bytes.buffer, bytes.byteOffset + start, count);
  }
  const out = new Uint16Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = bytes[start + 2 * i] | (bytes[start + 2 * i + 1] << 8);
  }
  return out;
}

function convert(
  bytes: Uint8Array,
  dtype: string,
  start: number,
  count: number,
  copy: boolean,
): Float32Array {
  if (dtype === "F32") {
    if (LITTLE_ENDIAN && (bytes.byteOffset + start) % 4 === 0) {
      const view = new Float32Array(bytes.buffer, bytes.byteOffset + start, count);
      return copy ? view.slice() : view;
    }
    const out = new Float32Array(count);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + start, count * 4);
    for (let i = 0; i < count; i++) out[i] = dv.getFloat32(4 * i, true);
    return out;
  }
  const halves = readU16(bytes, start, count);
  if (dtype === "BF16") {
    const bits = new Uint32Array(count);
    for (let i = 0; i < count; i++) bits[i] = halves[i] << 16;
    return new Float32Array(bits.buffer);
  }
  const table = f16Lookup();
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = table[halves[i]];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

interface ParseOptions {
  /**
   * Copy F32 data out of `bytes` (default true). With false, aligned F32 tensors are views into
   * `bytes`, saving memory when the caller owns the buffer.
   */
  copy?: boolean;
}

/**
 * Parses a safetensors file held in memory. F32, F16 and BF16 tensors become Float32Array (exact);
 * any other dtype, and any structural fault, is a ModelFileError naming `file` and the fault.
 */
export function parseSafetensors(
  bytes: Uint8Array,
  file: string,
  opts: ParseOptions = {},
): Map<string, HostTensor> {
  const fail: (fault: string) => never = (fault) => {
    throw new ModelFileError(`${file}: ${fault}`);
  };
  if (bytes.length < 8) {
    fail(`truncated header: file is ${bytes.length} bytes, too short for the 8-byte header length`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = dv.getBigUint64(0, true);
  if (headerLen64 > BigInt(bytes.length - 8)) {
    fail(`header length ${headerLen64} exceeds file size ${bytes.length}`);
  }
  const headerLen = Number(headerLen64);
  const dataStart = 8 + headerLen;
  const dataSize = bytes.length - dataStart;

  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    fail(`header is not valid JSON (not UTF-8 text; header length ${headerLen} may be wrong)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    fail(`header is not valid JSON (${errorText(err)})`);
  }
  if (!isPlainObject(header)) fail(`header is not a JSON object`);
  const entries = header as Record<string, unknown>;

  const meta = entries.__metadata__;
  if (meta !== undefined && meta !== null && !isPlainObject(meta)) {
    fail(`header "__metadata__" is not an object`);
  }

  const out = new Map<string, HostTensor>();
  for (const [name, info] of Object.entries(entries)) {
    if (name === "__metadata__") continue;
    const where = `tensor "${name}"`;
    if (!isPlainObject(info)) fail(`${where}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== "string") fail(`${where}: missing or non-string "dtype"`);
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(
        `${where}: "shape" must be a list of non-negative integers, got ${JSON.stringify(shape)}`,
      );
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      fail(`${where}: "data_offsets" must be [begin, end], got ${JSON.stringify(offsets)}`);
    }
    const dt = dtype as string;
    const dims = shape as number[];
    const [begin, end] = offsets as number[];
    if (!SUPPORTED.has(dt)) {
      fail(
        `${where} has dtype ${dt}, which is not supported (only F32, F16 and BF16 are read)`,
      );
    }
    if (begin > end) fail(`${where}: data_offsets [${begin}, ${end}] are reversed`);
    if (end > dataSize) {
      fail(
        `${where}: data_offsets [${begin}, ${end}] go past the end of the data ` +
          `(${dataSize} bytes after the header)`,
      );
    }
    const count = dims.reduce((a, b) => a * b, 1);
    const size = DTYPE_SIZES[dt];
    if (end - begin !== count * size) {
      fail(
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape ` +
          `[${dims.join(", ")}] ${dt} needs ${count * size}`,
      );
    }
    out.set(name, {
      shape: [...dims],
      data: convert(bytes, dt, dataStart + begin, count, opts.copy ?? true),
    });
  }
  return out;
}

/** Reads one safetensors file. */
export async function readSafetensorsFile(path: string): Promise<Map<string, HostTensor>> {
  return parseSafetensors(await readBytes(path), path, { copy: false });
}

/**
 * Reads the weights in a model folder: `model.safetensors`, or else
 * `model.safetensors.index.json` and the shards its "weight_map" names.
 */
export async function readSafetensors(dir: string): Promise<Map<string, HostTensor>> {
  const single = join(dir, "model.safetensors");
  if (await exists(single)) return await readSafetensorsFile(single);
  const indexPath = join(dir, "model.safetensors.index.json");
  if (!(await exists(indexPath))) {
    if (!(await exists(dir))) throw new ModelFileError(`${dir}: folder not found`);
    throw new ModelFileError(
      `${dir}: no model weights (neither model.safetensors nor model.safetensors.index.json)`,
    );
  }
  const index = await readJsonObject(indexPath);
  const weightMap = index.weight_map;
  if (!isPlainObject(weightMap)) {
    throw new ModelFileError(`${indexPath}: missing or non-object "weight_map"`);
  }
  const shardNames = new Set<string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (
      typeof shard !== "string" || shard === "" || shard.startsWith("/") ||
      shard.split("/").includes("..")
    ) {
      throw new ModelFileError(
        `${indexPath}: weight_map["${name}"] must be a shard file name in the same folder, ` +
          `got ${JSON.stringify(shard)}`,
      );
    }
    shardNames.add(shard);
  }
  const shards = new Map<string, Map<string, HostTensor>>();
  for (const shard of shardNames) {
    shards.set(shard, await readSafetensorsFile(join(dir, shard)));
  }
  const out = new Map<string, HostTensor>();
  for (const [name, shard] of Object.entries(weightMap) as [string, string][]) {
    const t = shards.get(shard)!.get(name);
    if (!t) {
      throw new ModelFileError(
        `${join(dir, shard)}: tensor "${name}" is listed in model.safetensors.index.json ` +
          `but missing from this shard`,
      );
    }
    out.set(name, t);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

interface Layout {
  /** 8-byte length + space-padded JSON header. */
  head: Uint8Array;
  names: string[];
  dataBytes: number;
}

function layout(tensors: Record<string, HostTensor>, metadata?: Record<string, string>): Layout {
  const meta: Record<string, string> = { format: "pt", ...metadata };
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== "string") {
      throw new EngineError(`safetensors metadata "${k}" must be a string, got ${typeof v}`);
    }
  }
  // Sorted by name (all F32, so this is also the Rust/Python order: alignment, then name).
  const names = Object.keys(tensors).sort();
  // Built by hand so that key order is exactly as listed (JS objects reorder integer-like keys).
  const parts = [`${JSON.stringify("__metadata__")}:${JSON.stringify(meta)}`];
  let offset = 0;
  for (const name of names) {
    if (name === "" || name === "__metadata__") {
      throw new EngineError(`cannot write a tensor named ${JSON.stringify(name)} to safetensors`);
    }
    const t = tensors[name];
    if (!t || !Array.isArray(t.shape) || !(t.data instanceof Float32Array)) {
      throw new EngineError(`tensor "${name}": expected { shape: number[], data: Float32Array }`);
    }
    if (!t.shape.every((d: unknown) => isCount(d))) {
      throw new EngineError(`tensor "${name}": bad shape ${JSON.stringify(t.shape)}`);
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new EngineError(
        `tensor "${name}": shape [${t.shape.join(", ")}] has ${count} elements ` +
          `but data has ${t.data.length}`,
      );
    }
    const entry = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + 4 * count] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    offset += 4 * count;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, names, dataBytes: offset };
}

function tensorBytes(t: HostTensor): Uint8Array {
  if (!LITTLE_ENDIAN) throw new EngineError("writing safetensors needs a little-endian host");
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * Serializes tensors as F32 safetensors: `__metadata__` ({"format": "pt", ...metadata}) first,
 * tensors in sorted name order with contiguous offsets, the header space-padded to a multiple
 * of 8 bytes (as the Rust and Python implementations do).
 */
export function serializeSafetensors(
  tensors: Record<string, HostTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const { head, names, dataBytes } = layout(tensors, metadata);
  const out = new Uint8Array(head.length + dataBytes);
  out.set(head, 0);
  let pos = head.length;
  for (const name of names) {
    const b = tensorBytes(tensors[name]);
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

/** Writes an F32 safetensors file atomically (temp file in the same folder, then rename). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, HostTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const { head, names } = layout(tensors, metadata);
  await atomicWrite(path, async (file) => {
    await writeAll(file, head);
    for (const name of names) await writeAll(file, tensorBytes(tensors[name]));
  });
}
