/**
 * Small file helpers shared by the checkpoint and tokenizer readers/writers:
 * one-line file errors, JSON reading with clear messages, atomic writes.
 */
import { EngineError } from "../errors.ts";
import { type AtomicContent, writeAtomic } from "../util/fs.ts";
import { errorText, oneLine } from "../util/text.ts";

/**
 * A model file (config, weights, tokenizer) is missing or malformed. The message is one line that
 * names the file and the fault, e.g. `stories/config.json: missing key "hidden_size"`.
 */
export class ModelFileError extends EngineError {
  constructor(message: string) {
    super(oneLine(message));
  }
}

/** Whether a path exists (file or folder). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw new ModelFileError(`${path}: cannot stat (${errorText(err)})`);
  }
}

/** Reads a whole file; a missing or unreadable file is a ModelFileError naming it. */
export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new ModelFileError(`${path}: file not found`);
    if (err instanceof Deno.errors.IsADirectory) {
      throw new ModelFileError(`${path}: is a folder, not a file`);
    }
    throw new ModelFileError(`${path}: cannot read (${errorText(err)})`);
  }
}

/** Parses JSON text; a syntax error becomes `file: not valid JSON (...)`. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(`${file}: not valid JSON (${errorText(err)})`);
  }
}

/** Reads and parses a JSON file (UTF-8, BOM tolerated). */
export async function readJsonFile(path: string): Promise<unknown> {
  const bytes = await readBytes(path);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ModelFileError(`${path}: not valid UTF-8`);
  }
  return parseJsonText(text, path);
}

/** Like readJsonFile, but a missing file gives `undefined`. */
export async function readJsonFileIfExists(path: string): Promise<unknown> {
  if (!(await exists(path))) return undefined;
  return await readJsonFile(path);
}

/** Reads a JSON file whose top level must be an object. */
export async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  const json = await readJsonFile(path);
  if (!isPlainObject(json)) {
    throw new ModelFileError(`${path}: expected a JSON object at the top level`);
  }
  return json;
}

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * Writes a file atomically (src/util/fs.ts): readers see either the old or the new file, never a
 * partial one. `content` is bytes, text, or a function that writes to the open temporary file. A
 * failure is a ModelFileError naming `path` (an EngineError from `content` passes through).
 */
export async function atomicWrite(path: string, content: AtomicContent): Promise<void> {
  try {
    await writeAtomic(path, content);
  } catch (err) {
    if (err instanceof EngineError) throw err;
    throw new ModelFileError(`${path}: cannot write (${errorText(err)})`);
  }
}

/** Writes `value` as 2-space-indented JSON with a final newline, atomically. */
export async function writeJsonFile(path: string, value: unknown): Promise<void> {
  await atomicWrite(path, JSON.stringify(value, null, 2) + "\n");
}
