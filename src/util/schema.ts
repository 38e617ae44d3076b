/**
 * A small typed config-schema DSL: builders (`obj`, `num`, `int`, `bool`, `str`,
 * `oneOf`, `arr`, `optional`, `variant`) describe a config, `Infer<typeof S>`
 * is its TypeScript type, `validate` fills defaults and names the first fault
 * in one line, `applyOverrides` takes `key.path=value` arguments coerced by
 * the schema, and `describe` lists every key for `--help`.
 */
import { EngineError } from "../errors.ts";
import { firstLine } from "./text.ts";

/** A config file or override the schema rejects; the message is one line. */
export class ConfigError extends EngineError {}

type Kind = "num" | "int" | "bool" | "str" | "oneOf" | "arr" | "obj" | "optional" | "variant";

/** A schema node describing values of type `T`. Build with the functions below. */
export interface Schema<T> {
  readonly kind: Kind;
  readonly doc?: string;
  readonly hasDefault: boolean;
  readonly default?: T;
  /** num, int: inclusive bounds. arr: bounds on the length. */
  readonly min?: number;
  readonly max?: number;
  /** oneOf: the allowed strings. */
  readonly values?: readonly string[];
  /** arr: the item schema. */
  readonly item?: AnySchema;
  /** obj: the fields. */
  readonly fields?: Readonly<Record<string, AnySchema>>;
  /** optional: the wrapped schema. */
  readonly inner?: AnySchema;
  /** variant: the discriminating key and one `obj` schema per tag value. */
  readonly tag?: string;
  readonly cases?: Readonly<Record<string, AnySchema>>;
  /** variant: the tag used when the value leaves it out. */
  readonly defaultTag?: string;
  /** Phantom: carries `T` for `Infer`; never set. */
  readonly __type?: T;
}

// deno-lint-ignore no-explicit-any
type AnySchema = Schema<any>;

/** The TypeScript type of values a schema accepts (after defaults are filled). */
export type Infer<S> = S extends Schema<infer T> ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & unknown;
type OptionalKeys<F> = { [K in keyof F]: undefined extends Infer<F[K]> ? K : never }[keyof F];
type ObjType<F> = Simplify<
  & { [K in Exclude<keyof F, OptionalKeys<F>>]: Infer<F[K]> }
  & { [K in OptionalKeys<F>]?: Infer<F[K]> }
>;
type VariantType<Tag extends string, C> = {
  [K in keyof C]: Simplify<{ [P in Tag]: K } & Infer<C[K]>>;
}[keyof C];

interface Doc {
  /** One line for `--help`. */
  doc?: string;
}

interface NumOpts extends Doc {
  default?: number;
  /** Inclusive lower bound. */
  min?: number;
  /** Inclusive upper bound. */
  max?: number;
}

function node<T>(kind: Kind, o: Doc & { default?: unknown }, extra: object = {}): Schema<T> {
  const s: Record<string, unknown> = { kind, hasDefault: o.default !== undefined, ...extra };
  if (o.doc !== undefined) s.doc = o.doc;
  if (o.default !== undefined) s.default = o.default;
  return s as unknown as Schema<T>;
}

/** A finite number. */
export function num(o: NumOpts = {}): Schema<number> {
  return node("num", o, { min: o.min, max: o.max });
}

/** An integer. */
export function int(o: NumOpts = {}): Schema<number> {
  return node("int", o, { min: o.min, max: o.max });
}

/** true or false (overrides also take 1/0, yes/no, on/off). */
export function bool(o: Doc & { default?: boolean } = {}): Schema<boolean> {
  return node("bool", o);
}

/** A string. */
export function str(o: Doc & { default?: string } = {}): Schema<string> {
  return node("str", o);
}

/** One of a fixed set of strings. */
export function oneOf<const V extends readonly string[]>(
  values: V,
  o: Doc & { default?: V[number] } = {},
): Schema<V[number]> {
  return node("oneOf", o, { values: [...values] });
}

/** A list of items; `min`/`max` bound its length. */
export function arr<T>(
  item: Schema<T>,
  o: Doc & { default?: T[]; min?: number; max?: number } = {},
): Schema<T[]> {
  return node("arr", o, { item, min: o.min, max: o.max });
}

/** An object with exactly these keys; a missing object is built from its fields' defaults. */
export function obj<F extends Record<string, AnySchema>>(
  fields: F,
  o: Doc = {},
): Schema<ObjType<F>> {
  const s = node<ObjType<F>>("obj", o, { fields });
  return { ...s, hasDefault: Object.values(fields).every(hasValueWhenMissing) };
}

/** A value that may be left out (or set to null), giving `undefined`. */
export function optional<T>(inner: Schema<T>, o: Doc = {}): Schema<T | undefined> {
  return node("optional", { doc: o.doc ?? inner.doc }, { inner });
}

/**
 * A tagged union of objects: `variant("kind", { http: obj({...}), local: obj({...}) })`
 * accepts `{ kind: "http", ...http fields }` or `{ kind: "local", ... }`. Each case is
 * an `obj` schema without the tag key. With a `default` tag, the tag may be left out.
 * An override that changes the tag (`teacher.kind=http`) keeps only the keys the new
 * case has.
 */
export function variant<const Tag extends string, C extends Record<string, AnySchema>>(
  tag: Tag,
  cases: C,
  o: Doc & { default?: keyof C & string } = {},
): Schema<VariantType<Tag, C>> {
  for (const [name, c] of Object.entries(cases)) {
    if (c.kind !== "obj") throw new Error(`variant case ${name} must be an obj schema`);
    if (c.fields && tag in c.fields) throw new Error(`variant case ${name} must not define ${tag}`);
  }
  const def = o.default;
  const s = node<VariantType<Tag, C>>("variant", { doc: o.doc }, { tag, cases, defaultTag: def });
  return { ...s, hasDefault: def !== undefined && hasValueWhenMissing(cases[def]) };
}

function hasValueWhenMissing(s: AnySchema): boolean {
  return s.kind === "optional" || s.hasDefault;
}

// ---------------------------------------------------------------------------
// Validation

/**
 * Checks `value` against `schema`, filling defaults, and returns the typed config.
 * Throws a ConfigError `<source>: <key.path> <fault>` on the first fault found.
 */
export function validate<S extends AnySchema>(schema: S, value: unknown, source: string): Infer<S> {
  return check(schema, value, "", source) as Infer<S>;
}

function check(s: AnySchema, v: unknown, path: string, src: string): unknown {
  if (s.kind === "optional") {
    return v === undefined || v === null ? undefined : check(s.inner!, v, path, src);
  }
  if (v === undefined) {
    if (s.kind === "obj") return check(s, {}, path, src);
    if (s.kind === "variant" && s.defaultTag !== undefined) {
      return check(s, { [s.tag!]: s.defaultTag }, path, src);
    }
    if (s.hasDefault) return structuredClone(s.default);
    throw fault(src, `${name(path)} is required`);
  }
  switch (s.kind) {
    case "num":
    case "int": {
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw fault(
          src,
          `${name(path)} must be ${s.kind === "int" ? "an integer" : "a number"}, got ${show(v)}`,
        );
      }
      if (s.kind === "int" && !Number.isInteger(v)) {
        throw fault(src, `${name(path)} must be an integer, got ${show(v)}`);
      }
      if (s.min !== undefined && v < s.min) {
        throw fault(src, `${name(path)} must be >= ${s.min}, got ${v}`);
      }
      if (s.max !== undefined && v > s.max) {
        throw fault(src, `${name(path)} must be <= ${s.max}, got ${v}`);
      }
      return v;
    }
    case "bool":
      if (typeof v !== "boolean") {
        throw fault(src, `${name(path)} must be true or false, got ${show(v)}`);
      }
      return v;
    case "str":
      if (typeof v !== "string") throw fault(src, `${name(path)} must be a string, got ${show(v)}`);
      return v;
    case "oneOf":
      return checkOneOf(s.values!, v, path, src);
    case "arr": {
      if (!Array.isArray(v)) throw fault(src, `${name(path)} must be a list, got ${show(v)}`);
      if (s.min !== undefined && v.length < s.min) {
        throw fault(src, `${name(path)} must have at least ${s.min} items, got ${v.length}`);
      }
      if (s.max !== undefined && v.length > s.max) {
        throw fault(src, `${name(path)} must have at most ${s.max} items, got ${v.length}`);
      }
      return v.map((x, i) => check(s.item!, x, `${path}[${i}]`, src));
    }
    case "obj": {
      const o = asObject(v, path, src);
      const fields = s.fields!;
      for (const k of Object.keys(o)) {
        if (!(k in fields)) throw unknownKey(src, path, k, Object.keys(fields));
      }
      const out: Record<string, unknown> = {};
      for (const [k, f] of Object.entries(fields)) {
        const x = check(f, o[k], join(path, k), src);
        if (x !== undefined) out[k] = x;
      }
      return out;
    }
    case "variant": {
      const o = asObject(v, path, src);
      const tag = s.tag!;
      const tagPath = join(path, tag);
      const t = o[tag] === undefined ? s.defaultTag : o[tag];
      if (t === undefined) throw fault(src, `${tagPath} is required`);
      const names = Object.keys(s.cases!);
      const kind = checkOneOf(names, t, tagPath, src);
      const c = s.cases![kind];
      const rest = { ...o };
      delete rest[tag];
      for (const k of Object.keys(rest)) {
        if (!(k in c.fields!)) {
          throw unknownKey(src, path, k, Object.keys(c.fields!), ` for ${tagPath} "${kind}"`);
        }
      }
      return { [tag]: kind, ...(check(c, rest, path, src) as object) };
    }
    default:
      return v;
  }
}

function checkOneOf(values: readonly string[], v: unknown, path: string, src: string): string {
  if (typeof v === "string" && values.includes(v)) return v;
  const hint = typeof v === "string" ? suggest(v, values) : undefined;
  throw fault(
    src,
    `${name(path)} must be one of ${values.map((x) => JSON.stringify(x)).join(", ")}, got ${
      show(v)
    }` +
      (hint ? ` (did you mean "${hint}"?)` : ""),
  );
}

function asObject(v: unknown, path: string, src: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw fault(src, `${name(path)} must be an object, got ${show(v)}`);
  }
  return v as Record<string, unknown>;
}

function unknownKey(
  src: string,
  path: string,
  key: string,
  known: string[],
  qualifier = "",
): ConfigError {
  const hint = suggest(key, known);
  const mean = hint ? ` (did you mean ${join(path, hint)}?)` : "";
  return fault(src, `unknown key ${join(path, key)}${qualifier}${mean}`);
}

function fault(src: string, msg: string): ConfigError {
  return new ConfigError(`${src}: ${msg}`.replace(/[\r\n]+/g, " "));
}

function name(path: string): string {
  return path === "" ? "the config" : path;
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/** A short rendering of a value for error messages. */
function show(v: unknown): string {
  if (v === undefined) return "nothing";
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  if (typeof v === "number" && !Number.isFinite(v)) s = String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The closest candidate by edit distance, if close enough to be a likely typo. */
function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestD <= limit ? best : undefined;
}

/** Levenshtein distance, counting an adjacent transposition as one edit. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

// ---------------------------------------------------------------------------
// Command-line overrides

/**
 * Applies `key.path=value` overrides to a plain config value (not modified; a new
 * value is returned, not yet validated as a whole). Each value is coerced by the
 * schema's type at its path: numbers, `true`/`false`, strings as written, lists
 * as JSON (`[0.5,1]`) or comma-separated (`0.5,1` or `[a,b]`), objects as JSON,
 * `null` to unset an optional key. Faults name the override.
 */
export function applyOverrides(schema: AnySchema, value: unknown, overrides: string[]): unknown {
  let out: unknown = value === undefined || value === null ? {} : structuredClone(value);
  for (const ov of overrides) {
    const src = `override ${JSON.stringify(ov)}`;
    const eq = ov.indexOf("=");
    const key = eq < 0 ? "" : ov.slice(0, eq).trim();
    const segs = key.split(".");
    if (eq <= 0 || segs.some((s) => s === "")) throw fault(src, "expected key.path=value");
    out = setAt(schema, out, segs, 0, ov.slice(eq + 1), src);
  }
  return out;
}

function setAt(
  s: AnySchema,
  cur: unknown,
  segs: string[],
  i: number,
  text: string,
  src: string,
): unknown {
  const path = segs.slice(0, i).join(".");
  if (i === segs.length) return coerce(s, text, path, src);
  if (s.kind === "optional") return setAt(s.inner!, cur, segs, i, text, src);
  const key = segs[i];
  const here = join(path, key);
  if (s.kind !== "obj" && s.kind !== "variant") {
    const what = s.kind === "arr" ? `a list; set it whole (${path}=[...])` : `a ${typeName(s)}`;
    throw fault(src, `unknown key ${segs.join(".")} (${path} is ${what})`);
  }
  if (cur === undefined || cur === null) cur = {};
  if (typeof cur !== "object" || Array.isArray(cur)) {
    throw fault(src, `cannot set ${segs.join(".")}: ${name(path)} is ${show(cur)}, not an object`);
  }
  const o = { ...(cur as Record<string, unknown>) };
  if (s.kind === "obj") {
    const f = s.fields![key];
    if (!f) throw unknownKey(src, path, key, Object.keys(s.fields!));
    const x = setAt(f, o[key], segs, i + 1, text, src);
    if (x === undefined) delete o[key];
    else o[key] = x;
    return o;
  }
  // variant
  const tag = s.tag!;
  const cases = s.cases!;
  if (key === tag) {
    if (i + 1 !== segs.length) {
      throw fault(src, `unknown key ${segs.join(".")} (${here} is a string)`);
    }
    const kind = checkOneOf(Object.keys(cases), text, here, src);
    const before = o[tag] === undefined ? s.defaultTag : o[tag];
    if (before !== kind) {
      for (const k of Object.keys(o)) if (k !== tag && !(k in cases[kind].fields!)) delete o[k];
    }
    o[tag] = kind;
    return o;
  }
  const curKind = String(o[tag] ?? s.defaultTag ?? "");
  const holder = cases[curKind]?.fields?.[key]
    ? cases[curKind]
    : Object.values(cases).find((c) => c.fields![key]);
  if (!holder) {
    const all = new Set([tag]);
    for (const c of Object.values(cases)) for (const k of Object.keys(c.fields!)) all.add(k);
    throw unknownKey(src, path, key, [...all]);
  }
  const x = setAt(holder.fields![key], o[key], segs, i + 1, text, src);
  if (x === undefined) delete o[key];
  else o[key] = x;
  return o;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function coerce(s: AnySchema, text: string, path: string, src: string): unknown {
  const t = text.trim();
  switch (s.kind) {
    case "optional":
      return t === "null" ? undefined : coerce(s.inner!, text, path, src);
    case "num":
    case "int":
      return check(s, NUMBER.test(t) ? Number(t) : text, path, src);
    case "bool": {
      const b = ({
        true: true,
        false: false,
        "1": true,
        "0": false,
        yes: true,
        no: false,
        on: true,
        off: false,
      } as Record<
        string,
        boolean
      >)[t.toLowerCase()];
      return check(s, b ?? text, path, src);
    }
    case "str":
      return text;
    case "oneOf":
      return check(s, t, path, src);
    case "arr": {
      if (t.startsWith("[")) {
        try {
          const parsed = JSON.parse(t);
          if (Array.isArray(parsed)) return check(s, parsed, path, src);
        } catch { /* not JSON: comma-separated below */ }
      }
      const body = t.startsWith("[") && t.endsWith("]") ? t.slice(1, -1).trim() : t;
      const parts = body === "" ? [] : body.split(",");
      const items = parts.map((p, j) => coerce(s.item!, p.trim(), `${path}[${j}]`, src));
      return check(s, items, path, src);
    }
    case "obj":
    case "variant": {
      let parsed: unknown;
      try {
        parsed = JSON.parse(t);
      } catch {
        throw fault(src, `${name(path)} must be an object (as JSON), got ${show(text)}`);
      }
      return check(s, parsed, path, src);
    }
  }
}

// ---------------------------------------------------------------------------
// Loading

/**
 * Reads a JSON config (or starts from `{}` when `path` is null), applies the
 * overrides, and validates. Missing files and invalid JSON are ConfigErrors.
 */
export async function loadConfig<S extends AnySchema>(
  schema: S,
  path: string | null,
  overrides: string[] = [],
): Promise<Infer<S>> {
  let raw: unknown = {};
  if (path !== null) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new ConfigError(`${path}: config file not found`);
      }
      if (err instanceof Deno.errors.IsADirectory) {
        throw new ConfigError(`${path}: is a directory, not a config file`);
      }
      throw new ConfigError(`${path}: cannot read config (${firstLine(err)})`);
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${path}: invalid JSON (${firstLine(err)})`);
    }
  }
  const merged = applyOverrides(schema, raw, overrides);
  return validate(schema, merged, path ?? "config");
}

// ---------------------------------------------------------------------------
// Help

/** One aligned line per key: `key.path  type  default  doc`, for `--help`. */
export function describe(schema: AnySchema): string[] {
  const rows: string[][] = [];
  walk(schema, "", "", rows);
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    [r[0].padEnd(widths[0]), r[1].padEnd(widths[1]), r[2].padEnd(widths[2]), r[3]].join("  ")
      .trimEnd()
  );
}

function walk(s: AnySchema, path: string, note: string, rows: string[][], optional = false): void {
  if (s.kind === "optional") return walk(s.inner!, path, note, rows, true);
  if (s.kind === "obj") {
    for (const [k, f] of Object.entries(s.fields!)) walk(f, join(path, k), note, rows);
    return;
  }
  if (s.kind === "variant") {
    const tagPath = join(path, s.tag!);
    const names = Object.keys(s.cases!);
    rows.push([
      tagPath,
      names.join("|"),
      s.defaultTag ?? (optional ? "-" : "required"),
      s.doc ?? "",
    ]);
    for (const k of names) walk(s.cases![k], path, `[${tagPath}=${k}] `, rows);
    return;
  }
  const def = s.hasDefault
    ? (typeof s.default === "string" && s.default !== "" ? s.default : JSON.stringify(s.default))
    : optional
    ? "-"
    : "required";
  rows.push([path, typeName(s), def, `${note}${s.doc ?? ""}`.trim()]);
}

function typeName(s: AnySchema): string {
  switch (s.kind) {
    case "num":
    case "int": {
      const t = s.kind === "int" ? "int" : "number";
      if (s.min !== undefined && s.max !== undefined) return `${t} in [${s.min}, ${s.max}]`;
      if (s.min !== undefined) return `${t} >= ${s.min}`;
      if (s.max !== undefined) return `${t} <= ${s.max}`;
      return t;
    }
    case "bool":
      return "bool";
    case "str":
      return "string";
    case "oneOf":
      return s.values!.join("|");
    case "arr":
      return `${typeName(s.item!)}[]`;
    case "optional":
      return typeName(s.inner!);
    default:
      return "object";
  }
}
