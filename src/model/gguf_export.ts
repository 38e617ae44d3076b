/**
 * Export of a Hugging Face Llama folder (config.json, model.safetensors, tokenizer.json) to one
 * GGUF file that llama.cpp runs: metadata and tensor names as llama.cpp's convert_hf_to_gguf.py
 * writes them for LlamaForCausalLM, q/k rows permuted to GGUF's interleaved RoPE layout, and the
 * tokenizer.
 *
 * Tokenizers: a BPE tokenizer.json without byte-level pre-tokenization (SentencePiece-style, as
 * stories260K, or this project's character-level one) becomes a "llama" (SentencePiece) vocabulary
 * whose scores rank the merges, so llama.cpp's merge-by-score tokenizer merges in the same order as
 * HF's merge-by-rank; a byte-level BPE (GPT-2, Llama 3, Qwen2 style) becomes a "gpt2" vocabulary
 * with its merges.
 */
import { basename, resolve } from "node:path";
import { architectureName, type ModelConfig, readConfig } from "./config.ts";
import { exists, isPlainObject, ModelFileError } from "./files.ts";
import { type GgufFile, type GgufTensor, type GgufValue, writeGguf } from "./gguf.ts";
import { type HostTensor, readSafetensors } from "./safetensors.ts";
import { loadTokenizer, type Tokenizer } from "./tokenizer.ts";

export type GgufDtype = "f32" | "f16";
export const GGUF_DTYPES: readonly GgufDtype[] = ["f32", "f16"];

/** llama.cpp's token types (llama_token_type / gguf TokenType). */
export const TOKEN_TYPE = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** llama_ftype: every tensor F32, or the 2-D ones F16. */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1 };

/** SentencePiece's word-boundary mark, which llama.cpp's "llama" tokenizer puts for spaces. */
const SPM_SPACE = "\u2581";

export interface GgufVocab {
  /** "llama" (SentencePiece-style, scores) or "gpt2" (byte-level BPE, merges). */
  model: "llama" | "gpt2";
  /** llama.cpp's pre-tokenizer name (tokenizer.ggml.pre). */
  pre: string;
  tokens: string[];
  scores?: Float32Array;
  tokenTypes: Int32Array;
  merges?: string[];
  addSpacePrefix?: boolean;
  /** Notes for the user (e.g. a pre-tokenizer llama.cpp may split differently). */
  warnings: string[];
}

function fail(file: string, fault: string): never {
  throw new ModelFileError(`${file}: ${fault}`);
}

/** Merges as [left, right] pairs: tokenizer.json has "a b" strings or (newer) ["a", "b"]. */
function mergePairs(model: Record<string, unknown>, file: string): [string, string][] {
  const merges = model.merges ?? [];
  if (!Array.isArray(merges)) fail(file, `"model.merges" must be a list`);
  return merges.map((m, i): [string, string] => {
    if (typeof m === "string") {
      const parts = m.split(" ");
      if (parts.length !== 2) fail(file, `merge ${i} ${JSON.stringify(m)} is not "left right"`);
      return [parts[0], parts[1]];
    }
    if (Array.isArray(m) && m.length === 2 && m.every((s) => typeof s === "string")) {
      return [m[0], m[1]];
    }
    return fail(file, `merge ${i} is neither "left right" nor ["left", "right"]`);
  });
}

/** Every component of a normalizer / pre-tokenizer / decoder, Sequences flattened. */
function components(x: unknown): Record<string, unknown>[] {
  if (!isPlainObject(x)) return [];
  const inner = x.normalizers ?? x.pretokenizers ?? x.decoders ?? x.processors;
  if (x.type === "Sequence" && Array.isArray(inner)) return inner.flatMap(components);
  return [x];
}

/** Whether a SentencePiece-style tokenizer.json adds "▁" before the text (llama.cpp's add_space_prefix). */
function addsSpacePrefix(tj: Record<string, unknown>): boolean {
  for (const n of components(tj.normalizer)) {
    if (n.type === "Prepend" && n.prepend === SPM_SPACE) return true;
  }
  for (const p of components(tj.pre_tokenizer)) {
    if (p.type === "Metaspace") {
      if (p.prepend_scheme !== undefined) return p.prepend_scheme !== "never";
      return p.add_prefix_space !== false;
    }
  }
  return false;
}

/** The pre-tokenizer regexes llama.cpp knows by name (its tokenizer.ggml.pre values). */
const KNOWN_PRE: [string, string][] = [
  [
    "llama-bpe",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
  [
    "qwen2",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
];

/**
 * llama.cpp's pre-tokenizer name for a byte-level tokenizer.json, or null when it is not one that
 * llama.cpp implements: GPT-2's (ByteLevel alone, splitting with its own regex), or one Split by a
 * known regex followed by ByteLevel without a regex (Llama 3, Qwen2).
 */
function bytePre(tj: Record<string, unknown>): string | null {
  const parts = components(tj.pre_tokenizer);
  if (parts.length === 1 && parts[0].type === "ByteLevel" && parts[0].use_regex !== false) {
    return "gpt-2";
  }
  if (
    parts.length !== 2 || parts[0].type !== "Split" || parts[0].behavior !== "Isolated" ||
    parts[0].invert === true || parts[1].type !== "ByteLevel" || parts[1].use_regex !== false
  ) return null;
  const pattern = parts[0].pattern;
  const regex = isPlainObject(pattern) ? pattern.Regex : undefined;
  return KNOWN_PRE.find(([, r]) => r === regex)?.[0] ?? null;
}

/**
 * The GGUF vocabulary of a tokenizer for a model of `vocabSize` ids: ids the tokenizer lacks (a
 * model vocabulary padded past the tokenizer's) become "[PAD<id>]" tokens of type unused, as
 * convert_hf_to_gguf.py writes them.
 */
export function ggufVocab(tokenizer: Tokenizer, vocabSize: number, where: string): GgufVocab {
  const tj = tokenizer.files.tokenizer;
  const file = `${where}/tokenizer.json`;
  const model = tj.model as Record<string, unknown>;
  if (model.type !== "BPE") {
    fail(file, `tokenizer model ${JSON.stringify(model.type)} cannot be exported (only BPE)`);
  }
  if (!isPlainObject(model.vocab)) fail(file, `"model.vocab" must be an object`);
  if (tokenizer.vocabSize > vocabSize) {
    fail(file, `the tokenizer has ${tokenizer.vocabSize} ids, the model only ${vocabSize}`);
  }
  const byteLevel = [...components(tj.pre_tokenizer), ...components(tj.decoder)]
    .some((p) => p.type === "ByteLevel");

  const tokens: string[] = new Array(vocabSize);
  const types = new Int32Array(vocabSize).fill(TOKEN_TYPE.unused);
  for (const [text, id] of Object.entries(model.vocab)) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) {
      fail(file, `vocab entry ${JSON.stringify(text)} has id ${JSON.stringify(id)}`);
    }
    tokens[id] = text;
    types[id] = TOKEN_TYPE.normal;
  }
  const added = (tj.added_tokens ?? []) as unknown[];
  for (const a of added) {
    if (!isPlainObject(a) || typeof a.id !== "number" || typeof a.content !== "string") {
      fail(file, `an added token lacks "id" or "content"`);
    }
    tokens[a.id] = a.content;
    types[a.id] = a.special === true ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
  const unk = typeof model.unk_token === "string"
    ? tokenizer.tokenToId(model.unk_token)
    : undefined;
  if (unk !== undefined) types[unk] = TOKEN_TYPE.unknown;
  for (let id = 0; id < vocabSize; id++) {
    if (tokens[id] === undefined) tokens[id] = `[PAD${id}]`;
  }
  const merges = mergePairs(model, file);
  const warnings: string[] = [];

  if (byteLevel) {
    let pre = bytePre(tj);
    if (pre === null) {
      pre = "default";
      warnings.push(
        `${file}: its pre-tokenizer is not one llama.cpp knows by name; llama.cpp will split ` +
          `text with its default byte-level rules, which may tokenize some text differently`,
      );
    }
    return {
      model: "gpt2",
      pre,
      tokens,
      tokenTypes: types,
      // Spaces inside merge parts are written as U+0120, as convert_hf_to_gguf.py does.
      merges: merges.map(([a, b]) => [a, b].map((s) => s.replaceAll(" ", "\u0120")).join(" ")),
      warnings,
    };
  }

  // SentencePiece-style. Scores rank merges: the token made by merge r scores -r, so llama.cpp
  // (which merges the adjacent pair whose result scores highest) follows HF's merge order.
  const scores = new Float32Array(vocabSize);
  const rank = new Map<string, number>();
  merges.forEach(([a, b], r) => {
    if (!rank.has(a + b)) rank.set(a + b, r);
  });
  const byteFallback = model.byte_fallback === true;
  for (let id = 0; id < vocabSize; id++) {
    const text = tokens[id];
    if (types[id] === TOKEN_TYPE.normal) {
      if (byteFallback && /^<0x[0-9A-Fa-f]{2}>$/.test(text)) types[id] = TOKEN_TYPE.byte;
      // Characters: llama.cpp tokenizes text with spaces as "▁".
      else tokens[id] = text.replaceAll(" ", SPM_SPACE);
    }
    const r = rank.get(text);
    if (types[id] !== TOKEN_TYPE.normal) scores[id] = types[id] === TOKEN_TYPE.unused ? -1e9 : 0;
    else if (r !== undefined) scores[id] = r === 0 ? 0 : -r; // (not -0)
    else if ([...text].length === 1) scores[id] = 0; // a character: never a merge result
    else scores[id] = -(merges.length + id); // made by no merge: after every merge
  }
  // llama.cpp's SentencePiece tokenizer merges across the whole text (spaces are "▁"): the same
  // as HF only when nothing splits the text into words first and merges need no word markers.
  const splitters = components(tj.pre_tokenizer).filter((p) => p.type !== "Metaspace");
  const marks = [model.continuing_subword_prefix, model.end_of_word_suffix]
    .some((m) => typeof m === "string" && m !== "");
  if (merges.length > 0 && (splitters.length > 0 || marks)) {
    warnings.push(
      `${file}: its BPE splits text into words before merging, which llama.cpp's ` +
        `SentencePiece-style tokenizer does not; llama.cpp may tokenize some text differently`,
    );
  }
  return {
    model: "llama",
    pre: "default",
    tokens,
    scores,
    tokenTypes: types,
    addSpacePrefix: addsSpacePrefix(tj),
    warnings,
  };
}

/** q/k rows from HF's rotate-half RoPE layout to GGUF's interleaved one (convert_hf_to_gguf's permute). */
export function permuteQK(w: HostTensor, heads: number): HostTensor {
  const [rows, cols] = w.shape;
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Float32Array(w.data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let s = 0; s < 2; s++) {
        const src = (h * headDim + s * half + i) * cols;
        const dst = (h * headDim + 2 * i + s) * cols;
        out.set(w.data.subarray(src, src + cols), dst);
      }
    }
  }
  return { shape: [...w.shape], data: out };
}

export interface GgufExportOptions {
  /**
   * Tensor type of the 2-D weights (default f16, as convert_hf_to_gguf.py writes a float32
   * model; norms stay F32, as it keeps them).
   */
  dtype?: GgufDtype;
  /** general.name (default: the folder's name). */
  name?: string;
}

/**
 * Whether encoding text adds BOS / EOS as our tokenizer does it (tokenizer_config's add_bos_token,
 * else the post-processor), so that llama.cpp adds the same.
 */
function addsSpecial(tokenizer: Tokenizer, bos: number | null, eos: number | null) {
  let probe: number[], plain: number[];
  try {
    probe = tokenizer.encode("a");
    plain = tokenizer.encode("a", { addSpecialTokens: false });
  } catch { // "a" is not in the vocabulary and there is no unk token
    const tc = tokenizer.files.tokenizerConfig;
    return { bos: tc.add_bos_token === true, eos: tc.add_eos_token === true };
  }
  const added = probe.length > plain.length;
  return {
    bos: added && bos !== null && probe[0] === bos,
    eos: added && eos !== null && probe.at(-1) === eos,
  };
}

/** Refuses what llama.cpp's llama architecture cannot run as this model computes it. */
function checkLlama(cfg: ModelConfig, file: string): void {
  if (cfg.modelType !== "llama") {
    fail(file, `model_type "${cfg.modelType}" cannot be exported to GGUF (only "llama")`);
  }
  if (cfg.head !== "lm") {
    fail(file, `${architectureName(cfg)} cannot be exported to GGUF (only LlamaForCausalLM)`);
  }
  if (cfg.attentionBias) fail(file, `attention_bias true cannot be exported to GGUF`);
}

/** The GGUF file (metadata and tensors) of a loaded model folder. */
export function ggufFromModel(
  cfg: ModelConfig,
  weights: Map<string, HostTensor>,
  tokenizer: Tokenizer,
  opts: GgufExportOptions & { where: string },
): { file: GgufFile; warnings: string[] } {
  const where = opts.where;
  checkLlama(cfg, `${where}/config.json`);
  const dtype = opts.dtype ?? "f16";
  const vocab = ggufVocab(tokenizer, cfg.vocabSize, where);

  const md: [string, GgufValue][] = [];
  const u32 = (k: string, v: number) => md.push([k, { type: "u32", value: v }]);
  const f32 = (k: string, v: number) => md.push([k, { type: "f32", value: v }]);
  const str = (k: string, v: string) => md.push([k, { type: "string", value: v }]);
  const bool = (k: string, v: boolean) => md.push([k, { type: "bool", value: v }]);
  str("general.architecture", "llama");
  str("general.type", "model");
  str("general.name", opts.name ?? basename(resolve(where)));
  u32("llama.block_count", cfg.numLayers);
  u32("llama.context_length", cfg.maxPositionEmbeddings);
  u32("llama.embedding_length", cfg.hiddenSize);
  u32("llama.feed_forward_length", cfg.intermediateSize);
  u32("llama.attention.head_count", cfg.numHeads);
  u32("llama.attention.head_count_kv", cfg.numKvHeads);
  f32("llama.rope.freq_base", cfg.ropeTheta);
  f32("llama.attention.layer_norm_rms_epsilon", cfg.rmsNormEps);
  u32("llama.attention.key_length", cfg.headDim);
  u32("llama.attention.value_length", cfg.headDim);
  u32("general.file_type", FILE_TYPE[dtype]);
  u32("llama.vocab_size", cfg.vocabSize);
  u32("llama.rope.dimension_count", cfg.headDim);
  u32("general.quantization_version", 2);

  str("tokenizer.ggml.model", vocab.model);
  str("tokenizer.ggml.pre", vocab.pre);
  md.push(["tokenizer.ggml.tokens", { type: "string[]", value: vocab.tokens }]);
  if (vocab.scores) md.push(["tokenizer.ggml.scores", { type: "f32[]", value: vocab.scores }]);
  md.push(["tokenizer.ggml.token_type", { type: "i32[]", value: vocab.tokenTypes }]);
  if (vocab.merges) md.push(["tokenizer.ggml.merges", { type: "string[]", value: vocab.merges }]);
  const bos = tokenizer.bosId ?? cfg.bosTokenId;
  const eos = tokenizer.eosIds[0] ?? cfg.eosTokenIds[0] ?? null;
  const pad = tokenizer.padId ?? cfg.padTokenId;
  const unk = vocab.tokenTypes.indexOf(TOKEN_TYPE.unknown);
  for (
    const [key, id] of [["bos", bos], ["eos", eos], ["unknown", unk], ["padding", pad]] as const
  ) {
    if (id !== null && id >= 0 && id < cfg.vocabSize) u32(`tokenizer.ggml.${key}_token_id`, id);
  }
  if (vocab.addSpacePrefix !== undefined) {
    bool("tokenizer.ggml.add_space_prefix", vocab.addSpacePrefix);
  }
  const adds = addsSpecial(tokenizer, bos, eos);
  bool("tokenizer.ggml.add_bos_token", adds.bos);
  bool("tokenizer.ggml.add_eos_token", adds.eos);
  if (tokenizer.chatTemplate !== null) str("tokenizer.chat_template", tokenizer.chatTemplate);

  const tensors: GgufTensor[] = [];
  const d = cfg.hiddenSize;
  const q = cfg.numHeads * cfg.headDim;
  const kv = cfg.numKvHeads * cfg.headDim;
  const ff = cfg.intermediateSize;
  const take = (hf: string, shape: number[]): HostTensor => {
    const t = weights.get(hf);
    if (!t) fail(where, `tensor "${hf}" is missing from the weights`);
    if (t.shape.join(",") !== shape.join(",")) {
      fail(
        where,
        `tensor "${hf}" has shape [${t.shape.join(", ")}], config.json implies ` +
          `[${shape.join(", ")}]`,
      );
    }
    return t;
  };
  const add = (name: string, t: HostTensor) => {
    tensors.push({
      name,
      shape: t.shape,
      type: dtype === "f16" && t.shape.length >= 2 ? "F16" : "F32",
      data: t.data,
    });
  };
  add("token_embd.weight", take("model.embed_tokens.weight", [cfg.vocabSize, d]));
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const b = `blk.${l}`;
    add(`${b}.attn_norm.weight`, take(`${p}.input_layernorm.weight`, [d]));
    add(
      `${b}.attn_q.weight`,
      permuteQK(take(`${p}.self_attn.q_proj.weight`, [q, d]), cfg.numHeads),
    );
    add(
      `${b}.attn_k.weight`,
      permuteQK(take(`${p}.self_attn.k_proj.weight`, [kv, d]), cfg.numKvHeads),
    );
    add(`${b}.attn_v.weight`, take(`${p}.self_attn.v_proj.weight`, [kv, d]));
    add(`${b}.attn_output.weight`, take(`${p}.self_attn.o_proj.weight`, [d, q]));
    add(`${b}.ffn_norm.weight`, take(`${p}.post_attention_layernorm.weight`, [d]));
    add(`${b}.ffn_gate.weight`, take(`${p}.mlp.gate_proj.weight`, [ff, d]));
    add(`${b}.ffn_up.weight`, take(`${p}.mlp.up_proj.weight`, [ff, d]));
    add(`${b}.ffn_down.weight`, take(`${p}.mlp.down_proj.weight`, [d, ff]));
  }
  add("output_norm.weight", take("model.norm.weight", [d]));
  if (!cfg.tieWordEmbeddings) add("output.weight", take("lm_head.weight", [cfg.vocabSize, d]));
  return { file: { metadata: md, tensors }, warnings: vocab.warnings };
}

export interface GgufExportResult {
  tensors: number;
  bytes: number;
  warnings: string[];
}

/** Writes the model folder `dir` as the GGUF file `out`. */
export async function exportGguf(
  dir: string,
  out: string,
  opts: GgufExportOptions = {},
): Promise<GgufExportResult> {
  if (!(await exists(dir))) throw new ModelFileError(`${dir}: folder not found`);
  const cfg = await readConfig(dir);
  checkLlama(cfg, `${dir}/config.json`);
  const weights = await readSafetensors(dir);
  const tokenizer = await loadTokenizer(dir);
  const { file, warnings } = ggufFromModel(cfg, weights, tokenizer, { ...opts, where: dir });
  await writeGguf(out, file);
  const { size } = await Deno.stat(out);
  return { tensors: file.tensors.length, bytes: size, warnings };
}
