/**
 * JSON Lines input with one-line errors that name the file and the line:
 * `data/train.jsonl:17: not valid JSON (...)`, `data/train.jsonl:3: missing field "question"`,
 * `data/x.jsonl: file not found`.
 */
import { EngineError } from "../errors.ts";
import { errorText } from "../util/text.ts";

/** A dataset file is missing or malformed. The message names the file (and line) and the problem. */
export class DataError extends EngineError {}

/** One JSON object of a JSONL file, with its 1-based line number in that file. */
export interface JsonlRow {
  line: number;
  row: Record<string, unknown>;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

/** Reads a file as text; a missing or unreadable file becomes a DataError naming it. */
export async function readTextFile(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new DataError(`${path}: file not found`);
    if (err instanceof Deno.errors.IsADirectory) {
      throw new DataError(`${path}: is a directory, not a file`);
    }
    throw new DataError(`${path}: cannot read (${errorText(err)})`);
  }
}

/** Parses JSONL text; `path` only names the source in errors. Blank lines are skipped. */
export function parseJsonl(text: string, path: string): JsonlRow[] {
  const rows: JsonlRow[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (raw.trim() === "") continue;
    const where = `${path}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new DataError(`${where}: not valid JSON (${errorText(err)})`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new DataError(`${where}: expected a JSON object, got ${describe(value)}`);
    }
    rows.push({ line: i + 1, row: value as Record<string, unknown> });
  }
  return rows;
}

/** Reads a JSONL file keeping each object's line number (for ids and error messages). */
export async function readJsonlLines(path: string): Promise<JsonlRow[]> {
  return parseJsonl(await readTextFile(path), path);
}

/** Reads a JSONL file: blank lines skipped; every other line must be one JSON object. */
export async function readJsonl(path: string): Promise<Record<string, unknown>[]> {
  return (await readJsonlLines(path)).map((r) => r.row);
}

/** `row[key]` as a string; `where` ("file:line") names the row in the error. */
export function requireString(row: Record<string, unknown>, key: string, where: string): string {
  const value = row[key];
  if (value === undefined) throw new DataError(`${where}: missing field "${key}"`);
  if (typeof value !== "string") {
    throw new DataError(`${where}: field "${key}" must be a string, got ${describe(value)}`);
  }
  return value;
}

/** `row[key]` as an array of strings. */
export function requireStringArray(
  row: Record<string, unknown>,
  key: string,
  where: string,
): string[] {
  const value = row[key];
  if (value === undefined) throw new DataError(`${where}: missing field "${key}"`);
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new DataError(`${where}: field "${key}" must be an array of strings`);
  }
  return value as string[];
}

/** `row[key]` as an id: a string, or an integer written as its decimal string. */
export function requireId(row: Record<string, unknown>, key: string, where: string): string {
  const value = row[key];
  if (value === undefined) throw new DataError(`${where}: missing field "${key}"`);
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "number" && Number.isInteger(value)) return String(value);
  throw new DataError(`${where}: field "${key}" must be an integer or a non-empty string`);
}

/** Applies `offset` then `limit` to a list, checking both are non-negative integers. */
export function slice<T>(items: T[], opts: { limit?: number; offset?: number }, what: string): T[] {
  const offset = opts.offset ?? 0;
  const limit = opts.limit ?? Infinity;
  if (!Number.isInteger(offset) || offset < 0) {
    throw new DataError(`${what}: offset must be a non-negative integer, got ${offset}`);
  }
  if (limit !== Infinity && (!Number.isInteger(limit) || limit < 0)) {
    throw new DataError(`${what}: limit must be a non-negative integer, got ${limit}`);
  }
  return items.slice(offset, offset + limit);
}
