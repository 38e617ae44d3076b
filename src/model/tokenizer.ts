/**
 * Tokenizers from Hugging Face `tokenizer.json` (+ `tokenizer_config.json`), run by
 * @huggingface/tokenizers, and chat templates rendered by @huggingface/jinja. Also a character-level
 * tokenizer for models trained from scratch, written in the same file format.
 */
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import { join } from "node:path";
import { EngineError } from "../errors.ts";
import { errorText } from "../util/text.ts";
import {
  exists,
  isPlainObject,
  ModelFileError,
  readBytes,
  readJsonFileIfExists,
  readJsonObject,
  writeJsonFile,
} from "./files.ts";

export interface ChatMessage {
  role: string;
  content: string;
}

/** The two JSON files that define a tokenizer. */
export interface TokenizerFiles {
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/** Special-token keys of tokenizer_config.json, passed to chat templates as variables. */
const SPECIAL_KEYS = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
];

/** A special token's text: tokenizer_config stores a string, an AddedToken object, or null. */
function specialText(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (isPlainObject(v) && typeof v.content === "string") return v.content;
  return null;
}

export class Tokenizer {
  /** Number of ids (highest id + 1), added tokens included. */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: number[];
  readonly padId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** tokenizer_config's chat template (or chat_template.jinja), or null. */
  readonly chatTemplate: string | null;
  /** The JSON the tokenizer was built from (with the chat template in tokenizerConfig). */
  readonly files: TokenizerFiles;

  readonly #inner: HfTokenizer;
  readonly #template: Template | null;
  /** Set when tokenizer_config says add_bos_token/add_eos_token (LlamaTokenizer style). */
  readonly #addBos: boolean | null;
  readonly #addEos: boolean | null;
  /** Where the files came from, for messages. */
  readonly #where: string;
  readonly #configFile: string;

  /** Use loadTokenizer or tokenizerFromFiles. */
  constructor(files: TokenizerFiles, where: string, chatTemplateFile?: string) {
    this.#where = where;
    const tokFile = join(where, "tokenizer.json");
    this.#configFile = join(where, "tokenizer_config.json");
    const cfg = files.tokenizerConfig;
    const tj = files.tokenizer;
    if (!isPlainObject(tj)) throw new ModelFileError(`${tokFile}: expected a JSON object`);
    if (!isPlainObject(cfg)) {
      throw new ModelFileError(`${this.#configFile}: expected a JSON object`);
    }
    if (!isPlainObject(tj.model)) throw new ModelFileError(`${tokFile}: missing "model" object`);
    if (!Array.isArray(tj.added_tokens ?? [])) {
      throw new ModelFileError(`${tokFile}: "added_tokens" must be a list`);
    }
    // The library wants every pipeline key present (null when unused) and added_tokens a list.
    const full: Record<string, unknown> = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...tj,
      added_tokens: tj.added_tokens ?? [],
    };
    try {
      this.#inner = new HfTokenizer(full, cfg);
    } catch (err) {
      throw new ModelFileError(`${tokFile}: not a usable tokenizer (${errorText(err)})`);
    }

    let maxId = -1;
    for (const id of this.#inner.get_vocab(true).values()) maxId = Math.max(maxId, id);
    if (maxId < 0) throw new ModelFileError(`${tokFile}: empty vocabulary`);
    this.vocabSize = maxId + 1;

    const idOf = (key: string): number | null => {
      const text = specialText(cfg[key]);
      if (text === null) return null;
      const id = this.#inner.token_to_id(text);
      if (id === undefined) {
        throw new ModelFileError(
          `${this.#configFile}: ${key} ${JSON.stringify(text)} is not in the vocabulary`,
        );
      }
      return id;
    };
    this.bosToken = specialText(cfg.bos_token);
    this.eosToken = specialText(cfg.eos_token);
    this.bosId = idOf("bos_token");
    const eos = idOf("eos_token");
    this.eosIds = eos === null ? [] : [eos];
    this.padId = idOf("pad_token");

    const flag = (key: string): boolean | null => {
      const v = cfg[key];
      if (v === undefined || v === null) return null;
      if (typeof v !== "boolean") {
        throw new ModelFileError(`${this.#configFile}: ${key} must be true or false`);
      }
      return v;
    };
    this.#addBos = flag("add_bos_token");
    this.#addEos = flag("add_eos_token");
    if (this.#addBos && this.bosId === null) {
      throw new ModelFileError(`${this.#configFile}: add_bos_token is true but bos_token is unset`);
    }
    if (this.#addEos && this.eosIds.length === 0) {
      throw new ModelFileError(`${this.#configFile}: add_eos_token is true but eos_token is unset`);
    }

    const templateFile = chatTemplateFile ?? this.#configFile;
    this.chatTemplate = pickChatTemplate(cfg.chat_template, this.#configFile);
    this.#template = null;
    if (this.chatTemplate !== null) {
      try {
        this.#template = new Template(this.chatTemplate);
      } catch (err) {
        throw new ModelFileError(
          `${templateFile}: chat_template does not parse (${errorText(err)})`,
        );
      }
    }
    this.files = { tokenizer: tj, tokenizerConfig: cfg };
  }

  /**
   * Token ids of `text`. With addSpecialTokens (default true) the special tokens are added as
   * tokenizer_config.json's add_bos_token / add_eos_token say (as transformers' LlamaTokenizerFast
   * does), or, when it says neither, as tokenizer.json's post_processor says.
   * Text that spells a special token (e.g. "<s>") encodes to that token, as in transformers.
   */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const addSpecial = opts.addSpecialTokens ?? true;
    const own = this.#addBos !== null || this.#addEos !== null;
    let enc;
    try {
      enc = this.#inner.encode(text, { add_special_tokens: own ? false : addSpecial });
    } catch (err) {
      throw new EngineError(`${this.#where}: tokenizer failed to encode text (${errorText(err)})`);
    }
    const ids = enc.ids;
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isInteger(ids[i])) {
        throw new EngineError(
          `${this.#where}: cannot encode ${JSON.stringify(enc.tokens[i])}: not in the vocabulary ` +
            `and the tokenizer has no unk token`,
        );
      }
    }
    if (own && addSpecial) {
      if (this.#addBos) ids.unshift(this.bosId!);
      if (this.#addEos) ids.push(this.eosIds[0]);
    }
    return ids;
  }

  /**
   * Text of `ids`. skipSpecialTokens (default false) drops special tokens such as BOS/EOS.
   * Ids outside [0, vocabSize) (a model vocabulary can be padded past the tokenizer's) are skipped.
   */
  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    const valid: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id)) throw new EngineError(`decode: token id ${id} is not an integer`);
      if (id >= 0 && id < this.vocabSize && this.#inner.id_to_token(id) !== undefined) {
        valid.push(id);
      }
    }
    // The library throws on an empty list.
    if (valid.length === 0) return "";
    try {
      return this.#inner.decode(valid, { skip_special_tokens: opts.skipSpecialTokens ?? false });
    } catch (err) {
      throw new EngineError(`${this.#where}: tokenizer failed to decode ids (${errorText(err)})`);
    }
  }

  /** The text of one token id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.#inner.id_to_token(id);
  }

  /** The id of one token's text, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.#inner.token_to_id(token);
  }

  /**
   * Renders tokenizer_config.json's chat_template with @huggingface/jinja (variables: messages,
   * add_generation_prompt, and the special tokens bos_token, eos_token, ...). With no template, a
   * plain fallback: "role: content\n" per message, then "assistant: " when addGenerationPrompt.
   */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    const addGen = opts.addGenerationPrompt ?? false;
    if (this.#template === null) {
      return messages.map((m) => `${m.role}: ${m.content}\n`).join("") +
        (addGen ? "assistant: " : "");
    }
    const vars: Record<string, unknown> = {
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: addGen,
    };
    for (const key of SPECIAL_KEYS) {
      const text = specialText(this.files.tokenizerConfig[key]);
      if (text !== null) vars[key] = text;
    }
    try {
      return this.#template.render(vars);
    } catch (err) {
      throw new EngineError(`${this.#configFile}: chat_template failed (${errorText(err)})`);
    }
  }

  /**
   * Token ids of a chat: the template's text is encoded without adding special tokens (templates
   * write BOS themselves), the plain fallback with them.
   */
  encodeChat(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): number[] {
    const text = this.applyChatTemplate(messages, opts);
    return this.encode(text, { addSpecialTokens: this.#template === null });
  }
}

/** tokenizer_config's chat_template: a string, or a list of {name, template} (use "default"). */
function pickChatTemplate(v: unknown, file: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    const named = v.filter((x) => isPlainObject(x) && typeof x.template === "string") as {
      name?: unknown;
      template: string;
    }[];
    const pick = named.find((x) => x.name === "default") ?? (named.length === 1 ? named[0] : null);
    if (pick) return pick.template;
  }
  throw new ModelFileError(
    `${file}: chat_template must be a string or a list with a "default" template`,
  );
}

/** Builds a Tokenizer from already-parsed JSON; `where` names the folder in messages. */
export function tokenizerFromFiles(files: TokenizerFiles, where = "tokenizer"): Tokenizer {
  return new Tokenizer(files, where);
}

/**
 * Loads `dir/tokenizer.json` with `dir/tokenizer_config.json` (optional) and, when the config has
 * no chat_template, `dir/chat_template.jinja` (optional, as newer transformers save it).
 */
/** Whether two tokenizers give the same ids (same vocabulary size, same encoding of a probe). */
export function sameTokenizer(a: Tokenizer, b: Tokenizer): boolean {
  const probe = "Question: 12 + 30 = ?\nAnswer: 42 #### 42";
  return a.vocabSize === b.vocabSize && a.encode(probe).join(",") === b.encode(probe).join(",");
}

export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const tokenizer = await readJsonObject(join(dir, "tokenizer.json"));
  const cfgFile = join(dir, "tokenizer_config.json");
  const cfgJson = await readJsonFileIfExists(cfgFile);
  if (cfgJson !== undefined && !isPlainObject(cfgJson)) {
    throw new ModelFileError(`${cfgFile}: expected a JSON object at the top level`);
  }
  const tokenizerConfig: Record<string, unknown> = { ...(cfgJson ?? {}) };
  let templateFile: string | undefined;
  const jinja = join(dir, "chat_template.jinja");
  if (
    (tokenizerConfig.chat_template === undefined || tokenizerConfig.chat_template === null) &&
    await exists(jinja)
  ) {
    tokenizerConfig.chat_template = new TextDecoder().decode(await readBytes(jinja));
    templateFile = jinja;
  }
  return new Tokenizer({ tokenizer, tokenizerConfig }, dir, templateFile);
}

/** Special tokens of the character-level tokenizer, ids 0..3. */
export const CHAR_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"] as const;

/** A tokenizer.json `added_tokens` entry for a special token. */
export function specialToken(id: number, content: string) {
  return {
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  };
}

/**
 * A character-level tokenizer.json + tokenizer_config.json for models created from scratch:
 * ids 0..3 = <pad>, <s>, </s>, <unk>, then one token per distinct character of `chars` (by code
 * point, in order of first appearance). A BPE model with no merges, a Split pre-tokenizer that
 * isolates every character, and a Fuse decoder; encode adds <s> (add_bos_token true). Characters
 * not in `chars` encode to <unk>. Loadable by loadTokenizer and by HF `tokenizers`.
 */
export function charTokenizerFiles(
  chars: string,
  opts: { chatTemplate?: string } = {},
): TokenizerFiles {
  const unique = [...new Set(Array.from(chars))];
  if (unique.length === 0) throw new EngineError("charTokenizerFiles: no characters given");
  const vocab: Record<string, number> = {};
  CHAR_SPECIALS.forEach((t, id) => vocab[t] = id);
  unique.forEach((c, i) => vocab[c] = CHAR_SPECIALS.length + i);
  const added = CHAR_SPECIALS.map((content, id) => specialToken(id, content));
  const tokenizer: Record<string, unknown> = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: "Split",
      pattern: { Regex: "[\\s\\S]" },
      behavior: "Isolated",
      invert: false,
    },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: { type: "Fuse" },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const addedDecoder: Record<string, unknown> = {};
  for (const { id, ...rest } of added) addedDecoder[String(id)] = rest;
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: addedDecoder,
    bos_token: "<s>",
    eos_token: "</s>",
    pad_token: "<pad>",
    unk_token: "<unk>",
    clean_up_tokenization_spaces: false,
    tokenizer_class: "PreTrainedTokenizerFast",
  };
  if (opts.chatTemplate !== undefined) tokenizerConfig.chat_template = opts.chatTemplate;
  return { tokenizer, tokenizerConfig };
}

/** Writes `dir/tokenizer.json` and `dir/tokenizer_config.json` (atomically; creates `dir`). */
export async function writeTokenizerFiles(dir: string, files: TokenizerFiles): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeJsonFile(join(dir, "tokenizer.json"), files.tokenizer);
  await writeJsonFile(join(dir, "tokenizer_config.json"), files.tokenizerConfig);
}
