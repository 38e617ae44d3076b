/**
 * Hugging Face `config.json` and `generation_config.json`: zod schemas of the keys this engine
 * reads, one-line errors that name the file and the key, and writing back with the same keys
 * (unknown keys are preserved).
 */
import { join } from "node:path";
import { z } from "zod";
import { EngineError } from "../errors.ts";
import { isPlainObject, ModelFileError, readJsonFileIfExists, readJsonObject } from "./files.ts";

export type ModelType = "llama" | "qwen2";
export type ModelHead = "lm" | "score" | "value";

export interface ModelConfig {
  modelType: ModelType;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** config.head_dim ?? hiddenSize / numHeads */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Bias on q, k, v projections (qwen2: true unless the config says otherwise). */
  attentionBias: boolean;
  hiddenAct: "silu";
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** Optional heads: "lm" (default), "score" (scalar reward head on last token), "value" (per-token scalar). */
  head: ModelHead;
  /** Keys we do not interpret, kept so that writing back preserves them. */
  extra: Record<string, unknown>;
}

/** HF class-name prefix per model_type. */
const ARCH_PREFIX: Record<ModelType, string> = { llama: "Llama", qwen2: "Qwen2" };
/** HF architecture suffix per head. */
const HEAD_SUFFIX: Record<ModelHead, string> = {
  lm: "ForCausalLM",
  score: "ForSequenceClassification",
  value: "ForTokenClassification",
};

/** HF defaults (LlamaConfig / Qwen2Config) for keys a config.json may leave out. */
const DEFAULTS: Record<ModelType, { rmsNormEps: number; ropeTheta: number; maxPos: number }> = {
  llama: { rmsNormEps: 1e-6, ropeTheta: 10000, maxPos: 2048 },
  qwen2: { rmsNormEps: 1e-6, ropeTheta: 10000, maxPos: 32768 },
};

/** Keys parseConfig interprets and configToJson regenerates; everything else goes to `extra`. */
const INTERPRETED = new Set([
  "architectures",
  "model_type",
  "vocab_size",
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "head_dim",
  "rms_norm_eps",
  "rope_theta",
  "max_position_embeddings",
  "tie_word_embeddings",
  "attention_bias",
  "hidden_act",
  "bos_token_id",
  "eos_token_id",
  "pad_token_id",
]);
/** Label keys, interpreted only for the score/value heads (kept in `extra` for "lm"). */
const LABEL_KEYS = ["num_labels", "id2label", "label2id"];

function describe(v: unknown): string {
  if (v === undefined) return "undefined";
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

const count = z.number().int().min(1);
const tokenId = z.number().int().min(0);
const positive = z.number().positive();

/** The keys of config.json this engine reads, as transformers names them; others pass through. */
const hfConfig = z.looseObject({
  model_type: z.enum(["llama", "qwen2"]),
  vocab_size: count,
  hidden_size: count,
  intermediate_size: count,
  num_hidden_layers: count,
  num_attention_heads: count,
  num_key_value_heads: count.nullish(),
  head_dim: count.nullish(),
  rms_norm_eps: positive.nullish(),
  rope_theta: positive.nullish(),
  max_position_embeddings: count.nullish(),
  tie_word_embeddings: z.boolean().nullish(),
  attention_bias: z.boolean().nullish(),
  hidden_act: z.literal("silu").nullish(),
  rope_scaling: z.null().optional(),
  mlp_bias: z.literal(false).nullish(),
  use_sliding_window: z.literal(false).nullish(),
  bos_token_id: tokenId.nullish(),
  eos_token_id: z.union([tokenId, z.array(tokenId)]).nullish(),
  pad_token_id: tokenId.nullish(),
  architectures: z.array(z.string()).min(1).nullish(),
  num_labels: count.nullish(),
});

/** generation_config.json's keys this engine reads. */
const hfGenerationConfig = z.looseObject({
  temperature: z.number().min(0).nullish(),
  top_k: tokenId.nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  max_new_tokens: count.nullish(),
  do_sample: z.boolean().nullish(),
  bos_token_id: tokenId.nullish(),
  eos_token_id: z.union([tokenId, z.array(tokenId)]).nullish(),
  pad_token_id: tokenId.nullish(),
});

/** Values a key may hold that this engine does not implement, and what it does implement. */
const UNSUPPORTED: Record<string, string> = {
  model_type: '(expected "llama" or "qwen2")',
  hidden_act: '(only "silu")',
  rope_scaling: "(only null)",
  mlp_bias: "",
  use_sliding_window: "",
};

const WANT: Record<string, string> = {
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  string: "a string",
  array: "a list",
};

/** Parses `json` with a zod schema; the first fault becomes one line naming the file and key. */
function parseFile<S extends z.ZodType>(schema: S, json: unknown, file: string): z.output<S> {
  if (!isPlainObject(json)) throw new ModelFileError(`${file}: expected a JSON object`);
  const r = schema.safeParse(json, { reportInput: true });
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = String(issue.path[0]);
  const value = (json as Record<string, unknown>)[key];
  const fail = (fault: string) => new ModelFileError(`${file}: ${fault}`);
  if (value === undefined) throw fail(`missing key "${key}"`);
  if (key in UNSUPPORTED) {
    throw fail(`${key} ${describe(value)} is not supported ${UNSUPPORTED[key]}`.trimEnd());
  }
  const got = `got ${describe(value)}`;
  switch (issue.code) {
    case "invalid_type": {
      const want = isInteger(schema, key) ? "int" : issue.expected;
      throw fail(`key "${key}" must be ${WANT[want] ?? want}, ${got}`);
    }
    case "too_small":
    case "too_big": {
      const op = issue.code === "too_small"
        ? (issue.inclusive ? ">=" : ">")
        : (issue.inclusive ? "<=" : "<");
      const edge = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const what = issue.origin === "array" ? "a list of length" : "";
      throw fail(`key "${key}" must be ${what} ${op} ${edge}, ${got}`.replace("  ", " "));
    }
    case "invalid_union":
      throw fail(`key "${key}" must be a token id or a list of token ids, ${got}`);
    default:
      throw fail(`key "${key}": ${issue.message}, ${got}`);
  }
}

/** Whether the schema's key holds an integer (zod reports a string there as "expected number"). */
function isInteger(schema: z.ZodType, key: string): boolean {
  let f = (schema as z.ZodObject).shape?.[key] as z.ZodType | undefined;
  while (f instanceof z.ZodOptional || f instanceof z.ZodNullable) f = f.unwrap() as z.ZodType;
  return f instanceof z.ZodNumber && f.isInt === true;
}

/** Which head the `architectures` list asks for (no list: "lm"). */
function parseHead(archs: string[] | null | undefined, modelType: ModelType, file: string) {
  if (!archs) return "lm";
  const fail = (fault: string) => new ModelFileError(`${file}: ${fault}`);
  if (archs.length > 1) {
    throw fail(`key "architectures" lists ${archs.length} classes, expected one`);
  }
  const arch = archs[0];
  for (const head of ["lm", "score", "value"] as const) {
    if (arch.endsWith(HEAD_SUFFIX[head])) return head;
  }
  const prefix = ARCH_PREFIX[modelType];
  throw fail(
    `architecture "${arch}" is not supported (expected ${prefix}ForCausalLM, ` +
      `${prefix}ForSequenceClassification or ${prefix}ForTokenClassification)`,
  );
}

const ids = (v: number | number[] | null | undefined) =>
  v == null ? [] : Array.isArray(v) ? v : [v];

/** Validates a parsed config.json and converts it to a ModelConfig. */
export function parseConfig(json: unknown, file: string): ModelConfig {
  const c = parseFile(hfConfig, json, file);
  const fail = (fault: string) => new ModelFileError(`${file}: ${fault}`);
  const modelType: ModelType = c.model_type;
  const d = DEFAULTS[modelType];
  const numHeads = c.num_attention_heads;
  const numKvHeads = c.num_key_value_heads ?? numHeads;
  if (numHeads % numKvHeads !== 0) {
    throw fail(
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  if (c.head_dim == null && c.hidden_size % numHeads !== 0) {
    throw fail(`hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${numHeads}`);
  }
  const headDim = c.head_dim ?? c.hidden_size / numHeads;
  if (headDim % 2 !== 0) throw fail(`head_dim ${headDim} must be even for rotary embeddings`);

  const head = parseHead(c.architectures, modelType, file);
  if (head !== "lm") {
    // HF derives the label count from num_labels, else from id2label, else 2.
    const id2label = (json as Record<string, unknown>).id2label;
    const n = c.num_labels ?? (isPlainObject(id2label) ? Object.keys(id2label).length : 2);
    if (n !== 1) throw fail(`a ${head} head needs num_labels 1, got ${n}`);
  }

  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (INTERPRETED.has(key)) continue;
    if (head !== "lm" && LABEL_KEYS.includes(key)) continue;
    extra[key] = value;
  }

  return {
    modelType,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: c.rms_norm_eps ?? d.rmsNormEps,
    ropeTheta: c.rope_theta ?? d.ropeTheta,
    maxPositionEmbeddings: c.max_position_embeddings ?? d.maxPos,
    tieWordEmbeddings: c.tie_word_embeddings ?? false,
    attentionBias: c.attention_bias ?? modelType === "qwen2",
    hiddenAct: "silu",
    bosTokenId: c.bos_token_id ?? null,
    eosTokenIds: ids(c.eos_token_id),
    padTokenId: c.pad_token_id ?? null,
    head,
    extra,
  };
}

/** The HF architecture class name for a config, e.g. "LlamaForCausalLM". */
export function architectureName(cfg: ModelConfig): string {
  return ARCH_PREFIX[cfg.modelType] + HEAD_SUFFIX[cfg.head];
}

/** A config.json object with HF keys (sorted, like transformers writes them). */
export function configToJson(cfg: ModelConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...cfg.extra };
  Object.assign(out, {
    architectures: [architectureName(cfg)],
    model_type: cfg.modelType,
    vocab_size: cfg.vocabSize,
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.headDim,
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    max_position_embeddings: cfg.maxPositionEmbeddings,
    tie_word_embeddings: cfg.tieWordEmbeddings,
    attention_bias: cfg.attentionBias,
    hidden_act: cfg.hiddenAct,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: cfg.eosTokenIds.length === 1 ? cfg.eosTokenIds[0] : [...cfg.eosTokenIds],
    pad_token_id: cfg.padTokenId,
  });
  if (cfg.eosTokenIds.length === 0) out.eos_token_id = null;
  if (cfg.head !== "lm") {
    out.num_labels = 1;
    out.id2label = { "0": "LABEL_0" };
    out.label2id = { LABEL_0: 0 };
  }
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(out).sort()) sorted[key] = out[key];
  return sorted;
}

/** Reads and validates `dir/config.json`. */
export async function readConfig(dir: string): Promise<ModelConfig> {
  const file = join(dir, "config.json");
  return parseConfig(await readJsonObject(file), file);
}

export interface GenerationConfig {
  temperature?: number;
  topK?: number;
  topP?: number;
  maxNewTokens?: number;
  doSample?: boolean;
  bosTokenId?: number;
  eosTokenIds?: number[];
  padTokenId?: number;
  /** Keys we do not interpret. */
  extra?: Record<string, unknown>;
}

/** Validates a parsed generation_config.json. */
export function parseGenerationConfig(json: unknown, file: string): GenerationConfig {
  const g = parseFile(hfGenerationConfig, json, file);
  const out: GenerationConfig = {};
  if (g.temperature != null) out.temperature = g.temperature;
  if (g.top_k != null) out.topK = g.top_k;
  if (g.top_p != null) out.topP = g.top_p;
  if (g.max_new_tokens != null) out.maxNewTokens = g.max_new_tokens;
  if (g.do_sample != null) out.doSample = g.do_sample;
  if (g.bos_token_id != null) out.bosTokenId = g.bos_token_id;
  if (g.eos_token_id != null) out.eosTokenIds = ids(g.eos_token_id);
  if (g.pad_token_id != null) out.padTokenId = g.pad_token_id;
  const known = new Set(Object.keys(hfGenerationConfig.shape));
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (!known.has(key)) extra[key] = value;
  }
  if (Object.keys(extra).length > 0) out.extra = extra;
  return out;
}

/** Reads `dir/generation_config.json`; a missing file gives `{}`. */
export async function readGenerationConfig(dir: string): Promise<GenerationConfig> {
  const file = join(dir, "generation_config.json");
  const json = await readJsonFileIfExists(file);
  if (json === undefined) return {};
  return parseGenerationConfig(json, file);
}

/** A generation_config.json object with HF keys. */
export function generationConfigToJson(g: GenerationConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...g.extra };
  if (g.bosTokenId !== undefined) out.bos_token_id = g.bosTokenId;
  if (g.eosTokenIds !== undefined) {
    out.eos_token_id = g.eosTokenIds.length === 1 ? g.eosTokenIds[0] : [...g.eosTokenIds];
  }
  if (g.padTokenId !== undefined) out.pad_token_id = g.padTokenId;
  if (g.doSample !== undefined) out.do_sample = g.doSample;
  if (g.temperature !== undefined) out.temperature = g.temperature;
  if (g.topK !== undefined) out.top_k = g.topK;
  if (g.topP !== undefined) out.top_p = g.topP;
  if (g.maxNewTokens !== undefined) out.max_new_tokens = g.maxNewTokens;
  return out;
}

export interface SmallConfigOptions {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Default: numHeads (no grouped-query attention). */
  numKvHeads?: number;
  /** Default: floor(8/3 * hiddenSize) rounded down to a multiple of 8 (at least 8). */
  intermediateSize?: number;
  /** Default 512. */
  maxPositionEmbeddings?: number;
  /** Default true. */
  tieWordEmbeddings?: boolean;
  /** Default "lm". */
  head?: ModelHead;
  /** Defaults match charTokenizerFiles: pad 0, bos 1, eos 2. */
  bosTokenId?: number | null;
  eosTokenIds?: number[];
  padTokenId?: number | null;
  /** Default 10000. */
  ropeTheta?: number;
  /** Default 1e-5. */
  rmsNormEps?: number;
}

/** A from-scratch Llama config. */
export function smallConfig(opts: SmallConfigOptions): ModelConfig {
  const fail: (fault: string) => never = (fault) => {
    throw new EngineError(`smallConfig: ${fault}`);
  };
  const posInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) fail(`${name} must be a positive integer, got ${v}`);
  };
  posInt("vocabSize", opts.vocabSize);
  posInt("hiddenSize", opts.hiddenSize);
  posInt("numLayers", opts.numLayers);
  posInt("numHeads", opts.numHeads);
  const numKvHeads = opts.numKvHeads ?? opts.numHeads;
  posInt("numKvHeads", numKvHeads);
  if (opts.hiddenSize % opts.numHeads !== 0) {
    fail(`hiddenSize ${opts.hiddenSize} is not a multiple of numHeads ${opts.numHeads}`);
  }
  if (opts.numHeads % numKvHeads !== 0) {
    fail(`numHeads ${opts.numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
  }
  const headDim = opts.hiddenSize / opts.numHeads;
  if (headDim % 2 !== 0) fail(`head dim ${headDim} (hiddenSize / numHeads) must be even`);
  const intermediateSize = opts.intermediateSize ??
    Math.max(8, Math.floor(Math.floor((8 * opts.hiddenSize) / 3) / 8) * 8);
  posInt("intermediateSize", intermediateSize);
  const maxPositionEmbeddings = opts.maxPositionEmbeddings ?? 512;
  posInt("maxPositionEmbeddings", maxPositionEmbeddings);
  return {
    modelType: "llama",
    vocabSize: opts.vocabSize,
    hiddenSize: opts.hiddenSize,
    intermediateSize,
    numLayers: opts.numLayers,
    numHeads: opts.numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: opts.rmsNormEps ?? 1e-5,
    ropeTheta: opts.ropeTheta ?? 10000,
    maxPositionEmbeddings,
    tieWordEmbeddings: opts.tieWordEmbeddings ?? true,
    attentionBias: false,
    hiddenAct: "silu",
    bosTokenId: opts.bosTokenId === undefined ? 1 : opts.bosTokenId,
    eosTokenIds: opts.eosTokenIds ?? [2],
    padTokenId: opts.padTokenId === undefined ? 0 : opts.padTokenId,
    head: opts.head ?? "lm",
    extra: { rope_scaling: null, mlp_bias: false, torch_dtype: "float32" },
  };
}
