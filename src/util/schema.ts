/**
 * Config schemas on zod: builders (`obj`, `num`, `int`, `bool`, `str`, `oneOf`, `arr`,
 * `optional`, `variant`) return zod schemas with this project's conventions (strict objects,
 * a missing object built from its fields' defaults, a `doc` line per key). zod validates and
 * derives the TypeScript types (`Infer<typeof S>`); this file turns zod's first issue into one
 * line (`config.json: unknown key sft.lrr (did you mean sft.lr?)`), applies `key.path=value`
 * overrides coerced by the schema at their path, and lists every key for `--help`.
 */
import { z } from "zod";
import { EngineError } from "../errors.ts";
import { firstLine } from "./text.ts";

/** A config file or override the schema rejects; the message is one line. */
export class ConfigError extends EngineError {}

// deno-lint-ignore no-explicit-any
type AnySchema = z.ZodType<any, any>;

/** The TypeScript type of values a schema accepts (after defaults are filled). */
export type Infer<S extends AnySchema> = z.output<S>;

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

/** What zod's metadata holds for a key: its help line, and a variant's default tag. */
interface Meta {
  doc?: string;
  defaultTag?: string;
}

const meta = (s: AnySchema): Meta => (z.globalRegistry.get(s) ?? {}) as Meta;

function finish<S extends AnySchema, T>(s: S, o: Doc & { default?: T }) {
  const documented = o.doc === undefined ? s : s.meta({ doc: o.doc });
  return (o.default === undefined ? documented : documented.default(o.default as never)) as S;
}

function bounded(s: z.ZodNumber, o: NumOpts): z.ZodNumber {
  if (o.min !== undefined) s = s.min(o.min);
  if (o.max !== undefined) s = s.max(o.max);
  return s;
}

/** A finite number. */
export function num(o: NumOpts = {}): z.ZodType<number, number> {
  return finish(bounded(z.number(), o), o);
}

/** An integer. */
export function int(o: NumOpts = {}): z.ZodType<number, number> {
  return finish(bounded(z.number().int(), o), o);
}

/** true or false (overrides also take 1/0, yes/no, on/off). */
export function bool(o: Doc & { default?: boolean } = {}): z.ZodType<boolean, boolean> {
  return finish(z.boolean(), o);
}

/** A string. */
export function str(o: Doc & { default?: string } = {}): z.ZodType<string, string> {
  return finish(z.string(), o);
}

/** One of a fixed set of strings. */
export function oneOf<const V extends readonly [string, ...string[]]>(
  values: V,
  o: Doc & { default?: V[number] } = {},
): z.ZodType<V[number], V[number]> {
  return finish(z.enum(values), o);
}

/** A list of items; `min`/`max` bound its length. */
export function arr<S extends AnySchema>(
  item: S,
  o: Doc & { default?: z.output<S>[]; min?: number; max?: number } = {},
): z.ZodType<z.output<S>[], z.input<S>[]> {
  let s = z.array(item);
  if (o.min !== undefined) s = s.min(o.min);
  if (o.max !== undefined) s = s.max(o.max);
  return finish(s, o);
}

/** An object with exactly these keys; a missing object is built from its fields' defaults. */
export function obj<F extends Record<string, AnySchema>>(fields: F, o: Doc = {}) {
  const s = z.strictObject(fields);
  const documented = o.doc === undefined ? s : s.meta({ doc: o.doc });
  // prefault, not default: {} goes through the fields' own defaults.
  return s.safeParse({}).success ? documented.prefault({} as never) : documented;
}

/** A value that may be left out (or set to null), giving `undefined`. */
export function optional<S extends AnySchema>(inner: S, o: Doc = {}) {
  const s = z.preprocess((v) => (v === null ? undefined : v), inner.optional());
  return o.doc === undefined ? s : s.meta({ doc: o.doc });
}

/**
 * A tagged union of objects: `variant("kind", { http: obj({...}), local: obj({...}) })`
 * accepts `{ kind: "http", ...http fields }` or `{ kind: "local", ... }`. Each case is
 * an `obj` schema without the tag key. With a `default` tag, the tag may be left out.
 * An override that changes the tag (`teacher.kind=http`) keeps only the keys the new
 * case has.
 */
export function variant<
  const Tag extends string,
  C extends Record<string, z.ZodObject | z.ZodPrefault<z.ZodObject>>,
>(tag: Tag, cases: C, o: Doc & { default?: keyof C & string } = {}) {
  const options = Object.entries(cases).map(([name, c]) => {
    const shape = caseShape(c);
    if (tag in shape) throw new Error(`variant case ${name} must not define ${tag}`);
    return z.strictObject({ ...shape, [tag]: z.literal(name) });
  });
  type Case<K extends keyof C> = z.ZodObject<
    { [P in Tag]: z.ZodLiteral<K & string> } & CaseShape<C[K]>,
    z.core.$strict
  >;
  type Cases = { [K in keyof C]: Case<K> }[keyof C];
  const union = z.discriminatedUnion(tag, options as unknown as [Cases, ...Cases[]]);
  const def = o.default;
  const withTag = (v: unknown) => {
    if (def === undefined) return v;
    if (v === undefined) return { [tag]: def };
    if (typeof v === "object" && v !== null && !Array.isArray(v) && !(tag in v)) {
      return { [tag]: def, ...v };
    }
    return v;
  };
  return z.preprocess(withTag, union).meta({ doc: o.doc, defaultTag: def });
}

type CaseShape<S> = S extends z.ZodPrefault<z.ZodObject<infer F>> ? F
  : S extends z.ZodObject<infer F> ? F
  : never;

function caseShape(c: AnySchema): Record<string, AnySchema> {
  const base = unwrap(c);
  if (!(base instanceof z.ZodObject)) throw new Error("variant cases must be obj schemas");
  return base.shape;
}

// ---------------------------------------------------------------------------
// Looking inside a schema

/** The schema under defaults, optional and the null-as-missing preprocess. */
function unwrap(s: AnySchema): AnySchema {
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) {
      s = s.def.innerType as AnySchema;
    } else if (s instanceof z.ZodPipe && !(s.def.out instanceof z.ZodDiscriminatedUnion)) {
      s = s.def.out as AnySchema;
    } else return s;
  }
}

/** A variant's parts: its tag, its cases by name (shape without the tag), its default tag. */
function variantParts(s: AnySchema) {
  if (!(s instanceof z.ZodPipe) || !(s.def.out instanceof z.ZodDiscriminatedUnion)) return null;
  const union = s.def.out;
  const tag = union.def.discriminator;
  const cases: Record<string, Record<string, AnySchema>> = {};
  for (const option of union.options as z.ZodObject[]) {
    const { [tag]: literal, ...rest } = option.shape;
    cases[String((literal as z.ZodLiteral).value)] = rest as Record<string, AnySchema>;
  }
  return { tag, cases, defaultTag: meta(s).defaultTag };
}

function docOf(s: AnySchema): string | undefined {
  for (;;) {
    const d = meta(s).doc;
    if (d !== undefined) return d;
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) {
      s = s.def.innerType as AnySchema;
    } else if (s instanceof z.ZodPipe) s = s.def.out as AnySchema;
    else return undefined;
  }
}

function defaultOf(s: AnySchema): { value: unknown } | null {
  for (;;) {
    if (s instanceof z.ZodDefault) return { value: s.def.defaultValue };
    if (s instanceof z.ZodOptional || s instanceof z.ZodPrefault) s = s.def.innerType as AnySchema;
    else if (s instanceof z.ZodPipe && !(s.def.out instanceof z.ZodDiscriminatedUnion)) {
      s = s.def.out as AnySchema;
    } else return null;
  }
}

const isOptional = (s: AnySchema) => s.safeParse(undefined).success && defaultOf(s) === null;

/** Inclusive bounds of a number, or of an array's length (undefined: none). */
function bounds(s: AnySchema): { min?: number; max?: number } {
  if (s instanceof z.ZodNumber) {
    const lim = (x: number | null) =>
      x === null || Math.abs(x) >= Number.MAX_SAFE_INTEGER ? undefined : x;
    return { min: lim(s.minValue), max: lim(s.maxValue) };
  }
  const out: { min?: number; max?: number } = {};
  for (const c of (s.def as { checks?: z.core.$ZodCheck[] }).checks ?? []) {
    const d = c._zod.def as { check: string; minimum?: number; maximum?: number };
    if (d.check === "min_length") out.min = d.minimum;
    if (d.check === "max_length") out.max = d.maximum;
  }
  return out;
}

/** The schema at `path` inside `root`, following variants by the tag in `value`. */
function schemaAt(root: AnySchema, value: unknown, path: PropertyKey[]) {
  let s = root;
  let v = value;
  let variantOf: { tagPath: string; kind: string } | null = null;
  for (let i = 0; i <= path.length; i++) {
    const parts = variantParts(s);
    const here = path.slice(0, i).join(".");
    let fields: Record<string, AnySchema> | null = null;
    if (parts) {
      const o = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>;
      const kind = String(o[parts.tag] ?? parts.defaultTag ?? "");
      fields = parts.cases[kind] ?? null;
      variantOf = fields ? { tagPath: join(here, parts.tag), kind } : null;
      if (fields && i < path.length && path[i] === parts.tag) {
        return { schema: z.enum(Object.keys(parts.cases) as [string]), variantOf: null, fields };
      }
    } else {
      const base = unwrap(s);
      if (base instanceof z.ZodObject) fields = base.shape;
      variantOf = null;
    }
    if (i === path.length) return { schema: s, variantOf, fields };
    const key = path[i];
    if (typeof key === "number") {
      const base = unwrap(s);
      if (!(base instanceof z.ZodArray)) return null;
      s = base.element as AnySchema;
    } else {
      const f = fields?.[String(key)];
      if (!f) return null;
      s = f;
    }
    v = (v as Record<PropertyKey, unknown> | undefined)?.[key];
  }
  return null;
}

// ---------------------------------------------------------------------------
// Validation

/**
 * Checks `value` against `schema`, filling defaults, and returns the typed config.
 * Throws a ConfigError `<source>: <key.path> <fault>` on the first fault found.
 */
export function validate<S extends AnySchema>(schema: S, value: unknown, source: string): Infer<S> {
  return parseAt(schema, value, "", source) as Infer<S>;
}

function parseAt(s: AnySchema, v: unknown, base: string, src: string): unknown {
  const r = s.safeParse(v, { reportInput: true });
  if (r.success) return r.data;
  throw explain(s, v, r.error.issues, base, src);
}

/** The one line for a failed parse: unknown keys first (typos cause the other faults). */
function explain(
  root: AnySchema,
  value: unknown,
  issues: z.core.$ZodIssue[],
  base: string,
  src: string,
): ConfigError {
  const unknown = issues.filter((i) => i.code === "unrecognized_keys")
    .sort((a, b) => a.path.length - b.path.length) as z.core.$ZodIssue[];
  const issue = unknown.length ? unknown[0] : issues[0];
  const rel = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : String(p)));
  const path = rel.reduce((a, p) => (p.startsWith("[") ? a + p : join(a, p)), base);
  const at = schemaAt(root, value, issue.path);
  const input = "input" in issue ? issue.input : undefined;
  switch (issue.code) {
    case "unrecognized_keys": {
      const key = issue.keys[0];
      const known = Object.keys(at?.fields ?? {});
      if (at?.variantOf) known.push(at.variantOf.tagPath.split(".").pop()!);
      const qualifier = at?.variantOf ? ` for ${at.variantOf.tagPath} "${at.variantOf.kind}"` : "";
      return unknownKey(src, path, key, known, qualifier);
    }
    case "invalid_union": {
      // A discriminated union whose tag matches no case.
      const got = (input as Record<string, unknown> | undefined)?.[
        (issue as { discriminator?: string }).discriminator ?? ""
      ];
      const options = (issue as { options?: unknown[] }).options?.map(String) ?? [];
      return oneOfFault(src, path, options, got);
    }
    case "invalid_value":
      return oneOfFault(src, path, issue.values.map(String), input);
    case "too_small":
    case "too_big": {
      const edge = Number(issue.code === "too_small" ? issue.minimum : issue.maximum);
      if (issue.origin === "array") {
        const n = Array.isArray(input) ? input.length : NaN;
        const word = issue.code === "too_small" ? "at least" : "at most";
        return fault(src, `${name(path)} must have ${word} ${edge} items, got ${n}`);
      }
      return fault(
        src,
        `${name(path)} must be ${issue.code === "too_small" ? ">=" : "<="} ${edge}, got ${
          show(input)
        }`,
      );
    }
    case "invalid_type": {
      if (input === undefined) return fault(src, `${name(path)} is required`);
      const s = at ? unwrap(at.schema) : null;
      const isInt = s instanceof z.ZodNumber && s.isInt;
      const want = isInt ? "an integer" : EXPECTED[issue.expected] ?? `a ${issue.expected}`;
      return fault(src, `${name(path)} must be ${want}, got ${show(input)}`);
    }
    default:
      // A schema's own message ("must start with http://") reads after the key.
      return fault(
        src,
        issue.message.startsWith("must")
          ? `${name(path)} ${issue.message}, got ${show(input)}`
          : `${name(path)}: ${issue.message}`,
      );
  }
}

const EXPECTED: Record<string, string> = {
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  string: "a string",
  array: "a list",
  object: "an object",
};

function oneOfFault(src: string, path: string, values: string[], v: unknown): ConfigError {
  const hint = typeof v === "string" ? suggest(v, values) : undefined;
  return fault(
    src,
    `${name(path)} must be one of ${values.map((x) => JSON.stringify(x)).join(", ")}, got ${
      show(v)
    }` + (hint ? ` (did you mean "${hint}"?)` : ""),
  );
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
  const key = segs[i];
  const here = join(path, key);
  const parts = variantParts(s);
  const base = unwrap(s);
  if (!parts && !(base instanceof z.ZodObject)) {
    const what = base instanceof z.ZodArray
      ? `a list; set it whole (${path}=[...])`
      : `a ${typeName(s)}`;
    throw fault(src, `unknown key ${segs.join(".")} (${path} is ${what})`);
  }
  if (cur === undefined || cur === null) cur = {};
  if (typeof cur !== "object" || Array.isArray(cur)) {
    throw fault(src, `cannot set ${segs.join(".")}: ${name(path)} is ${show(cur)}, not an object`);
  }
  const o = { ...(cur as Record<string, unknown>) };
  const put = (f: AnySchema) => {
    const x = setAt(f, o[key], segs, i + 1, text, src);
    if (x === undefined) delete o[key];
    else o[key] = x;
    return o;
  };
  if (!parts) {
    const f = (base as z.ZodObject).shape[key] as AnySchema | undefined;
    if (!f) throw unknownKey(src, path, key, Object.keys((base as z.ZodObject).shape));
    return put(f);
  }
  const { tag, cases, defaultTag } = parts;
  if (key === tag) {
    if (i + 1 !== segs.length) {
      throw fault(src, `unknown key ${segs.join(".")} (${here} is a string)`);
    }
    const names = Object.keys(cases);
    if (!names.includes(text.trim())) throw oneOfFault(src, here, names, text.trim());
    const kind = text.trim();
    const before = o[tag] === undefined ? defaultTag : o[tag];
    if (before !== kind) {
      for (const k of Object.keys(o)) if (k !== tag && !(k in cases[kind])) delete o[k];
    }
    o[tag] = kind;
    return o;
  }
  const curKind = String(o[tag] ?? defaultTag ?? "");
  const holder = cases[curKind]?.[key] ? cases[curKind] : Object.values(cases).find((c) => c[key]);
  if (!holder) {
    const all = new Set([tag]);
    for (const c of Object.values(cases)) for (const k of Object.keys(c)) all.add(k);
    throw unknownKey(src, path, key, [...all]);
  }
  return put(holder[key]);
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const BOOL: Record<string, boolean> = {
  true: true,
  false: false,
  "1": true,
  "0": false,
  yes: true,
  no: false,
  on: true,
  off: false,
};

function coerce(s: AnySchema, text: string, path: string, src: string): unknown {
  const t = text.trim();
  if (t === "null" && isOptional(s)) return undefined;
  const base = variantParts(s) ? s : unwrap(s);
  if (base instanceof z.ZodNumber) {
    return parseAt(base, NUMBER.test(t) ? Number(t) : text, path, src);
  }
  if (base instanceof z.ZodBoolean) return parseAt(base, BOOL[t.toLowerCase()] ?? text, path, src);
  if (base instanceof z.ZodString) return text;
  if (base instanceof z.ZodEnum) return parseAt(base, t, path, src);
  if (base instanceof z.ZodArray) {
    if (t.startsWith("[")) {
      try {
        const parsed = JSON.parse(t);
        if (Array.isArray(parsed)) return parseAt(base, parsed, path, src);
      } catch { /* not JSON: comma-separated below */ }
    }
    const body = t.startsWith("[") && t.endsWith("]") ? t.slice(1, -1).trim() : t;
    const parts = body === "" ? [] : body.split(",");
    const items = parts.map((p, j) =>
      coerce(base.element as AnySchema, p.trim(), `${path}[${j}]`, src)
    );
    return parseAt(base, items, path, src);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(t);
  } catch {
    throw fault(src, `${name(path)} must be an object (as JSON), got ${show(text)}`);
  }
  return parseAt(base, parsed, path, src);
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

function walk(s: AnySchema, path: string, note: string, rows: string[][]): void {
  const parts = variantParts(s);
  if (parts) {
    const tagPath = join(path, parts.tag);
    const names = Object.keys(parts.cases);
    const def = parts.defaultTag ?? (isOptional(s) ? "-" : "required");
    rows.push([tagPath, names.join("|"), def, docOf(s) ?? ""]);
    for (const k of names) {
      for (const [f, fs] of Object.entries(parts.cases[k])) {
        walk(fs, join(path, f), `[${tagPath}=${k}] `, rows);
      }
    }
    return;
  }
  const base = unwrap(s);
  if (base instanceof z.ZodObject) {
    for (const [k, f] of Object.entries(base.shape)) {
      walk(f as AnySchema, join(path, k), note, rows);
    }
    return;
  }
  const d = defaultOf(s);
  const def = d
    ? (typeof d.value === "string" && d.value !== "" ? d.value : JSON.stringify(d.value))
    : isOptional(s)
    ? "-"
    : "required";
  rows.push([path, typeName(s), def, `${note}${docOf(s) ?? ""}`.trim()]);
}

function typeName(s: AnySchema): string {
  const base = unwrap(s);
  if (base instanceof z.ZodNumber) {
    const t = base.isInt ? "int" : "number";
    const { min, max } = bounds(base);
    if (min !== undefined && max !== undefined) return `${t} in [${min}, ${max}]`;
    if (min !== undefined) return `${t} >= ${min}`;
    if (max !== undefined) return `${t} <= ${max}`;
    return t;
  }
  if (base instanceof z.ZodBoolean) return "bool";
  if (base instanceof z.ZodString) return "string";
  if (base instanceof z.ZodEnum) return base.options.join("|");
  if (base instanceof z.ZodArray) return `${typeName(base.element as AnySchema)}[]`;
  return "object";
}
