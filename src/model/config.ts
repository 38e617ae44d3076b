/**
 * Hugging Face `config.json` and `generation_config.json`: parsing with one-line errors that name
 * the file and the key, and writing back with the same keys (unknown keys are preserved).
 */
import { join } from "node:path";
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

/** Typed access to config keys, with errors naming the file and the key. */
class Keys {
  constructor(readonly obj: Record<string, unknown>, readonly file: string) {}

  fail(fault: string): never {
    throw new ModelFileError(`${this.file}: ${fault}`);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  /** A positive (or, with min 0, non-negative) integer; required unless a default is given. */
  int(key: string, dflt?: number, min = 1): number {
    if (!this.has(key)) {
      if (dflt !== undefined) return dflt;
      this.fail(`missing key "${key}"`);
    }
    const v = this.obj[key];
    if (typeof v !== "number" || !Number.isInteger(v)) {
      this.fail(`key "${key}" must be an integer, got ${describe(v)}`);
    }
    if (v < min) this.fail(`key "${key}" must be >= ${min}, got ${v}`);
    return v;
  }

  /** A finite number > 0. */
  positive(key: string, dflt: number): number {
    if (!this.has(key)) return dflt;
    const v = this.obj[key];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      this.fail(`key "${key}" must be a number, got ${describe(v)}`);
    }
    if (v <= 0) this.fail(`key "${key}" must be > 0, got ${v}`);
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    if (!this.has(key)) return dflt;
    const v = this.obj[key];
    if (typeof v !== "boolean") this.fail(`key "${key}" must be true or false, got ${describe(v)}`);
    return v;
  }

  str(key: string): string | undefined {
    if (!this.has(key)) return undefined;
    const v = this.obj[key];
    if (typeof v !== "string") this.fail(`key "${key}" must be a string, got ${describe(v)}`);
    return v;
  }

  /** A token id or null. */
  tokenId(key: string): number | null {
    if (!this.has(key)) return null;
    return this.int(key, undefined, 0);
  }

  /** A token id, a list of token ids, or null -> list. */
  tokenIds(key: string): number[] {
    if (!this.has(key)) return [];
    const v = this.obj[key];
    const list = Array.isArray(v) ? v : [v];
    for (const x of list) {
      if (typeof x !== "number" || !Number.isInteger(x) || x < 0) {
        this.fail(`key "${key}" must be a token id or a list of token ids, got ${describe(v)}`);
      }
    }
    return list as number[];
  }
}

/** Which head the `architectures` list asks for (no list: "lm"). */
function parseHead(k: Keys, modelType: ModelType): ModelHead {
  if (!k.has("architectures")) return "lm";
  const archs = k.obj.architectures;
  if (!Array.isArray(archs) || archs.length === 0 || archs.some((a) => typeof a !== "string")) {
    k.fail(`key "architectures" must be a non-empty list of strings, got ${describe(archs)}`);
  }
  if (archs.length > 1) k.fail(`key "architectures" lists ${archs.length} classes, expected one`);
  const arch = archs[0] as string;
  for (const head of ["lm", "score", "value"] as const) {
    if (arch.endsWith(HEAD_SUFFIX[head])) return head;
  }
  const prefix = ARCH_PREFIX[modelType];
  return k.fail(
    `architecture "${arch}" is not supported (expected ${prefix}ForCausalLM, ` +
      `${prefix}ForSequenceClassification or ${prefix}ForTokenClassification)`,
  );
}

/** The number of labels HF would derive: num_labels, else the size of id2label, else 2. */
function numLabels(k: Keys): number {
  if (k.has("num_labels")) return k.int("num_labels");
  const id2label = k.obj.id2label;
  if (isPlainObject(id2label)) return Object.keys(id2label).length;
  return 2;
}

/** Validates a parsed config.json and converts it to a ModelConfig. */
export function parseConfig(json: unknown, file: string): ModelConfig {
  if (!isPlainObject(json)) throw new ModelFileError(`${file}: expected a JSON object`);
  const k: Keys = new Keys(json, file);

  const mt = k.str("model_type");
  if (mt === undefined) k.fail(`missing key "model_type"`);
  if (mt !== "llama" && mt !== "qwen2") {
    k.fail(`model_type "${mt}" is not supported (expected "llama" or "qwen2")`);
  }
  const modelType: ModelType = mt;
  const d = DEFAULTS[modelType];

  const vocabSize = k.int("vocab_size");
  const hiddenSize = k.int("hidden_size");
  const intermediateSize = k.int("intermediate_size");
  const numLayers = k.int("num_hidden_layers");
  const numHeads = k.int("num_attention_heads");
  const numKvHeads = k.int("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    k.fail(
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  let headDim: number;
  if (k.has("head_dim")) {
    headDim = k.int("head_dim");
  } else {
    if (hiddenSize % numHeads !== 0) {
      k.fail(`hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads}`);
    }
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) k.fail(`head_dim ${headDim} must be even for rotary embeddings`);

  const act = k.str("hidden_act") ?? "silu";
  if (act !== "silu") k.fail(`hidden_act "${act}" is not supported (only "silu")`);

  if (k.has("rope_scaling")) {
    k.fail(`rope_scaling ${describe(k.obj.rope_scaling)} is not supported (only null)`);
  }
  if (k.bool("mlp_bias", false)) k.fail(`mlp_bias true is not supported`);
  if (k.bool("use_sliding_window", false)) k.fail(`use_sliding_window true is not supported`);

  const head = parseHead(k, modelType);
  if (head !== "lm") {
    const n = numLabels(k);
    if (n !== 1) k.fail(`a ${head} head needs num_labels 1, got ${n}`);
  }

  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    if (INTERPRETED.has(key)) continue;
    if (head !== "lm" && LABEL_KEYS.includes(key)) continue;
    extra[key] = value;
  }

  return {
    modelType,
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: k.positive("rms_norm_eps", d.rmsNormEps),
    ropeTheta: k.positive("rope_theta", d.ropeTheta),
    maxPositionEmbeddings: k.int("max_position_embeddings", d.maxPos),
    tieWordEmbeddings: k.bool("tie_word_embeddings", false),
    attentionBias: k.bool("attention_bias", modelType === "qwen2"),
    hiddenAct: "silu",
    bosTokenId: k.tokenId("bos_token_id"),
    eosTokenIds: k.tokenIds("eos_token_id"),
    padTokenId: k.tokenId("pad_token_id"),
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
  if (!isPlainObject(json)) throw new ModelFileError(`${file}: expected a JSON object`);
  const k: Keys = new Keys(json, file);
  const out: GenerationConfig = {};
  if (k.has("temperature")) {
    const t = json.temperature;
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0) {
      k.fail(`key "temperature" must be a number >= 0, got ${describe(t)}`);
    }
    out.temperature = t;
  }
  if (k.has("top_k")) out.topK = k.int("top_k", undefined, 0);
  if (k.has("top_p")) {
    const p = json.top_p;
    if (typeof p !== "number" || !(p > 0 && p <= 1)) {
      k.fail(`key "top_p" must be a number in (0, 1], got ${describe(p)}`);
    }
    out.topP = p;
  }
  if (k.has("max_new_tokens")) out.maxNewTokens = k.int("max_new_tokens");
  if (k.has("do_sample")) out.doSample = k.bool("do_sample", false);
  if (k.has("bos_token_id")) out.bosTokenId = k.int("bos_token_id", undefined, 0);
  if (k.has("eos_token_id")) out.eosTokenIds = k.tokenIds("eos_token_id");
  if (k.has("pad_token_id")) out.padTokenId = k.int("pad_token_id", undefined, 0);
  const known = new Set([
    "temperature",
    "top_k",
    "top_p",
    "max_new_tokens",
    "do_sample",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
  ]);
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) if (!known.has(key)) extra[key] = value;
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
