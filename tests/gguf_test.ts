/**
 * GGUF export (src/model/gguf.ts, src/model/gguf_export.ts, `deno task export`): the header read
 * back by @huggingface/gguf, and the file run by llama.cpp itself (node-llama-cpp's prebuilt
 * binary), whose greedy continuation must equal ours token for token, and whose tokenization of
 * text must equal ours: on stories260K (SentencePiece-style), models/arith-student (characters),
 * a student distilled by a short pipeline run, and a random student with a Qwen2-style byte-level
 * BPE; each in F32 and F16. Without node-llama-cpp (no npm registry, no binary for the platform)
 * the llama.cpp tests are skipped with one line saying why.
 */
import assert from "node:assert/strict";
import { GGMLQuantizationType, gguf as readGguf } from "@huggingface/gguf";
import { generate } from "../src/generate/generate.ts";
import { loadPretrained } from "../src/model/checkpoint.ts";
import { configToJson, smallConfig } from "../src/model/config.ts";
import { parameterShapes } from "../src/model/llama.ts";
import { ModelFileError } from "../src/model/files.ts";
import {
  f16ToF32,
  type HostTensor,
  readSafetensors,
  writeSafetensors,
} from "../src/model/safetensors.ts";
import { f32ToF16, type GgufFile, serializeGguf, writeGguf } from "../src/model/gguf.ts";
import { exportGguf, permuteQK, TOKEN_TYPE } from "../src/model/gguf_export.ts";
import { loadTokenizer, specialToken, writeTokenizerFiles } from "../src/model/tokenizer.ts";
import { configSchema } from "../src/run/config.ts";
import { loadConfig } from "../src/util/schema.ts";
import { runPipeline } from "../src/pipeline/pipeline.ts";
import "./support/gpu.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const STORIES = `${ROOT}tests/fixtures/stories260K`;
const ARITH = `${ROOT}models/arith-student`;
const TINY = `${ROOT}tests/fixtures/configs/tiny.json`;

const tmp = await Deno.makeTempDir({ prefix: "gguf_test_" });
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

// ---------------------------------------------------------------------------------------------
// Half precision and the q/k permutation

Deno.test("f32ToF16 rounds to nearest, ties to even, as Math.f16round", () => {
  // Every half value maps back to itself.
  for (let h = 0; h < 0x10000; h++) {
    const x = f16ToF32(h);
    if (Number.isNaN(x)) assert.ok(Number.isNaN(f16ToF32(f32ToF16(x))));
    else assert.equal(f32ToF16(x), h, `bits ${h.toString(16)}`);
  }
  // Midpoints, their neighbours, overflow, subnormals and random values agree with Math.f16round.
  const f16round = (Math as unknown as { f16round: (x: number) => number }).f16round;
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const check = (x: number) => {
    f32[0] = x;
    const want = f16round(f32[0]);
    const got = f16ToF32(f32ToF16(f32[0]));
    assert.ok(Object.is(got, want), `${f32[0]}: got ${got}, want ${want}`);
  };
  for (let h = 0; h < 0x7c00; h++) {
    const mid = (f16ToF32(h) + f16ToF32(h + 1)) / 2;
    for (const x of [mid, -mid]) {
      check(x);
      f32[0] = x;
      const bits = u32[0];
      for (const b of [bits - 1, bits + 1]) {
        u32[0] = b;
        check(f32[0]);
      }
    }
  }
  for (const x of [0, -0, 65504, 65519.99, 65520, 1e6, -1e6, Infinity, -Infinity, 2 ** -25, 1e-8]) {
    check(x);
  }
  let s = 1;
  for (let i = 0; i < 100_000; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    u32[0] = s ^ (s << 13);
    if (!Number.isNaN(f32[0])) check(f32[0]);
  }
});

/** x (one head, `dim` values) rotated at position `pos` by HF's rotate-half RoPE. */
function ropeHalf(x: number[], pos: number, theta = 10000): number[] {
  const h = x.length / 2;
  const out = new Array(x.length);
  for (let i = 0; i < h; i++) {
    const a = pos * theta ** (-2 * i / x.length);
    out[i] = x[i] * Math.cos(a) - x[i + h] * Math.sin(a);
    out[i + h] = x[i + h] * Math.cos(a) + x[i] * Math.sin(a);
  }
  return out;
}

/** The same rotation in GGUF's interleaved layout (llama.cpp's rope mode 0). */
function ropeInterleaved(x: number[], pos: number, theta = 10000): number[] {
  const out = new Array(x.length);
  for (let i = 0; i < x.length / 2; i++) {
    const a = pos * theta ** (-2 * i / x.length);
    out[2 * i] = x[2 * i] * Math.cos(a) - x[2 * i + 1] * Math.sin(a);
    out[2 * i + 1] = x[2 * i + 1] * Math.cos(a) + x[2 * i] * Math.sin(a);
  }
  return out;
}

Deno.test("permuteQK: interleaved RoPE of the permuted rows = rotate-half RoPE of the originals", () => {
  const heads = 3, dim = 8, cols = 5;
  const w: HostTensor = {
    shape: [heads * dim, cols],
    data: Float32Array.from({ length: heads * dim * cols }, (_, i) => Math.sin(i * 1.7)),
  };
  const p = permuteQK(w, heads);
  const x = Array.from({ length: cols }, (_, i) => Math.cos(i + 0.3));
  const matvec = (t: HostTensor) =>
    Array.from(
      { length: t.shape[0] },
      (_, r) => x.reduce((s, v, c) => s + v * t.data[r * cols + c], 0),
    );
  const [q, qp] = [matvec(w), matvec(p)];
  for (let h = 0; h < heads; h++) {
    const a = ropeHalf(q.slice(h * dim, (h + 1) * dim), 7);
    const b = ropeInterleaved(qp.slice(h * dim, (h + 1) * dim), 7);
    // The interleaved result is the rotate-half result, permuted the same way.
    for (let i = 0; i < dim / 2; i++) {
      assert.ok(Math.abs(a[i] - b[2 * i]) < 1e-5 && Math.abs(a[i + dim / 2] - b[2 * i + 1]) < 1e-5);
    }
  }
  // And it is convert_hf_to_gguf's reshape(heads, 2, dim/2, cols).swapaxes(1, 2).
  assert.deepEqual(
    [...permuteQK({ shape: [4, 1], data: Float32Array.of(0, 1, 2, 3) }, 1).data],
    [0, 2, 1, 3],
  );
});

// ---------------------------------------------------------------------------------------------
// The file format, read back by @huggingface/gguf

type Parsed = Awaited<ReturnType<typeof parse>>;
async function parse(path: string) {
  const out = await readGguf(path, { allowLocalFile: true });
  // The library types metadata as a union per architecture; the tests index it by key.
  return { ...out, metadata: out.metadata as unknown as Record<string, unknown> };
}

Deno.test("serializeGguf = writeGguf; @huggingface/gguf reads metadata, shapes, types, offsets", async () => {
  const a = Float32Array.from({ length: 3 * 5 }, (_, i) => i / 7 - 1);
  const file: GgufFile = {
    metadata: [
      ["general.architecture", { type: "string", value: "llama" }],
      ["x.u32", { type: "u32", value: 4000000000 }],
      ["x.i32", { type: "i32", value: -5 }],
      ["x.f32", { type: "f32", value: 0.25 }],
      ["x.bool", { type: "bool", value: true }],
      ["x.strings", { type: "string[]", value: ["a", "", "\u2581b", "<0x0A>"] }],
      ["x.floats", { type: "f32[]", value: [1.5, -2] }],
      ["x.ints", { type: "i32[]", value: [1, -2, 3] }],
    ],
    tensors: [
      { name: "a", shape: [3, 5], type: "F32", data: a },
      { name: "b", shape: [3], type: "F32", data: Float32Array.of(1, 2, 3) },
      { name: "c", shape: [3, 5], type: "F16", data: a },
    ],
  };
  const bytes = serializeGguf(file);
  const path = `${tmp}/small.gguf`;
  await writeGguf(path, file);
  assert.deepEqual(await Deno.readFile(path), bytes);
  assert.equal(bytes.length % 32, 0);

  const { metadata, tensorInfos, tensorDataOffset } = await parse(path);
  assert.equal(metadata.version, 3);
  assert.equal(metadata.tensor_count, 3n);
  assert.equal(metadata.kv_count, 8n);
  assert.equal(metadata["x.u32"], 4000000000);
  assert.equal(metadata["x.i32"], -5);
  assert.equal(metadata["x.f32"], 0.25);
  assert.equal(metadata["x.bool"], true);
  assert.deepEqual(metadata["x.strings"], ["a", "", "\u2581b", "<0x0A>"]);
  assert.deepEqual(metadata["x.floats"], [1.5, -2]);
  assert.deepEqual(metadata["x.ints"], [1, -2, 3]);
  assert.deepEqual(
    tensorInfos.map((t) => [t.name, t.shape, t.dtype, t.offset]),
    [
      ["a", [5n, 3n], GGMLQuantizationType.F32, 0n],
      ["b", [3n], GGMLQuantizationType.F32, 64n],
      ["c", [5n, 3n], GGMLQuantizationType.F16, 96n],
    ],
  );
  assert.equal(Number(tensorDataOffset) % 32, 0);
  const data = bytes.slice(Number(tensorDataOffset));
  assert.deepEqual(new Float32Array(data.buffer, 0, 15), a);
  assert.deepEqual(new Float32Array(data.buffer, 64, 3), Float32Array.of(1, 2, 3));
  const halves = new Uint16Array(data.buffer, 96, 15);
  a.forEach((v, i) => assert.equal(halves[i], f32ToF16(v)));

  assert.throws(
    () => serializeGguf({ metadata: [], tensors: [{ ...file.tensors[0], shape: [4, 5] }] }),
    /GGUF: tensor "a": shape \[4, 5\] has 20 elements, data has 15/,
  );
});

/** Metadata every exported llama file has, and the tensor list, checked against the folder. */
async function checkExport(dir: string, parsed: Parsed, dtype: "f32" | "f16") {
  const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  const tok = await loadTokenizer(dir);
  const m = parsed.metadata;
  assert.equal(m["general.architecture"], "llama");
  assert.equal(m["llama.context_length"], cfg.max_position_embeddings);
  assert.equal(m["llama.embedding_length"], cfg.hidden_size);
  assert.equal(m["llama.block_count"], cfg.num_hidden_layers);
  assert.equal(m["llama.feed_forward_length"], cfg.intermediate_size);
  assert.equal(m["llama.attention.head_count"], cfg.num_attention_heads);
  assert.equal(m["llama.attention.head_count_kv"], cfg.num_key_value_heads);
  assert.equal(m["llama.rope.freq_base"], cfg.rope_theta);
  assert.equal(m["llama.attention.layer_norm_rms_epsilon"], Math.fround(cfg.rms_norm_eps));
  assert.equal(m["llama.rope.dimension_count"], cfg.head_dim);
  assert.equal(m["llama.vocab_size"], cfg.vocab_size);
  assert.equal(m["general.file_type"], dtype === "f32" ? 0 : 1);
  assert.equal(m["tokenizer.ggml.model"], "llama");
  const tokens = m["tokenizer.ggml.tokens"] as string[];
  assert.equal(tokens.length, cfg.vocab_size);
  assert.equal((m["tokenizer.ggml.scores"] as number[]).length, cfg.vocab_size);
  assert.equal(m["tokenizer.ggml.bos_token_id"], tok.bosId);
  assert.equal(m["tokenizer.ggml.eos_token_id"], tok.eosIds[0]);
  assert.equal(m["tokenizer.ggml.add_bos_token"], true);
  const types = m["tokenizer.ggml.token_type"] as number[];
  assert.equal(types[tok.bosId!], TOKEN_TYPE.control);
  assert.equal(types[tok.tokenToId("<unk>")!], TOKEN_TYPE.unknown);

  const weights = await readSafetensors(dir);
  const infos = new Map(parsed.tensorInfos.map((t) => [t.name, t]));
  assert.equal(infos.size, weights.size);
  assert.ok(!infos.has("output.weight"), "tied embeddings: no output.weight");
  const emb = infos.get("token_embd.weight")!;
  assert.deepEqual(emb.shape, [BigInt(cfg.hidden_size), BigInt(cfg.vocab_size)]);
  assert.equal(emb.dtype, dtype === "f32" ? GGMLQuantizationType.F32 : GGMLQuantizationType.F16);
  assert.equal(infos.get("blk.0.attn_norm.weight")!.dtype, GGMLQuantizationType.F32);
  const k = infos.get("blk.0.attn_k.weight")!;
  assert.deepEqual(k.shape, [
    BigInt(cfg.hidden_size),
    BigInt(cfg.num_key_value_heads * cfg.head_dim),
  ]);
  let end = 0n;
  for (const t of parsed.tensorInfos) {
    assert.equal(t.offset % 32n, 0n);
    assert.ok(t.offset >= end, `${t.name} overlaps the tensor before it`);
    end = t.offset + t.shape.reduce((a, b) => a * b, 1n) * (t.dtype === 0 ? 4n : 2n);
  }
  return { tokens, types };
}

Deno.test("export stories260K: llama metadata, SentencePiece vocabulary, tensors", async () => {
  for (const dtype of ["f32", "f16"] as const) {
    const out = `${tmp}/stories-${dtype}.gguf`;
    const res = await exportGguf(STORIES, out, { dtype });
    assert.equal(res.tensors, 47);
    assert.deepEqual(res.warnings, []);
    const parsed = await parse(out);
    const { tokens, types } = await checkExport(STORIES, parsed, dtype);
    assert.equal(parsed.metadata["general.name"], "stories260K");
    assert.equal(parsed.metadata["tokenizer.ggml.add_space_prefix"], true);
    assert.equal(tokens[3], "<0x00>");
    assert.equal(types[3], TOKEN_TYPE.byte);
    assert.equal(types[300], TOKEN_TYPE.normal);
    assert.ok(!("tokenizer.chat_template" in parsed.metadata));
    // The first merge ("▁ t") makes the best-scoring token.
    const scores = parsed.metadata["tokenizer.ggml.scores"] as number[];
    assert.equal(scores[tokens.indexOf("\u2581t")], 0);
    assert.equal(scores[tokens.indexOf("he")], -1);
  }
  // F16 halves the 2-D weights.
  const [a, b] = await Promise.all(
    ["f32", "f16"].map((d) => Deno.stat(`${tmp}/stories-${d}.gguf`)),
  );
  assert.ok(b.size < a.size * 0.55);
});

Deno.test("export of a character-level student: spaces as ▁, no space prefix, chat template", async () => {
  const dir = `${tmp}/arith-chat`;
  await Deno.mkdir(dir);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json"]) {
    await Deno.copyFile(`${ARITH}/${f}`, `${dir}/${f}`);
  }
  const tc = JSON.parse(await Deno.readTextFile(`${ARITH}/tokenizer_config.json`));
  tc.chat_template = "{% for m in messages %}{{ m.content }}\n{% endfor %}";
  await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify(tc));
  const out = `${tmp}/arith-chat.gguf`;
  await exportGguf(dir, out); // f16 by default
  const parsed = await parse(out);
  const { tokens, types } = await checkExport(dir, parsed, "f16");
  assert.equal(parsed.metadata["tokenizer.ggml.add_space_prefix"], false);
  assert.equal(parsed.metadata["tokenizer.chat_template"], tc.chat_template);
  assert.equal(parsed.metadata["tokenizer.ggml.padding_token_id"], 0);
  assert.equal(tokens[5], "\u2581");
  assert.equal(tokens[4], "\n");
  assert.deepEqual([...types.slice(0, 5)], [3, 3, 3, 2, 1]);
});

Deno.test("export refuses what llama.cpp's llama architecture cannot run, in one line", async () => {
  const bad = async (edit: (cfg: Record<string, unknown>) => void, re: RegExp) => {
    const dir = await Deno.makeTempDir({ dir: tmp });
    for (const f of ["model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
      await Deno.copyFile(`${ARITH}/${f}`, `${dir}/${f}`);
    }
    const cfg = JSON.parse(await Deno.readTextFile(`${ARITH}/config.json`));
    edit(cfg);
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
    await assert.rejects(exportGguf(dir, `${dir}/out.gguf`), (e: Error) => {
      assert.ok(e instanceof ModelFileError, String(e));
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  };
  await bad((c) => {
    c.model_type = "qwen2";
    c.architectures = ["Qwen2ForCausalLM"];
  }, /config\.json: model_type "qwen2" cannot be exported to GGUF \(only "llama"\)/);
  await bad(
    (c) => {
      c.architectures = ["LlamaForSequenceClassification"];
      c.num_labels = 1;
    },
    /LlamaForSequenceClassification cannot be exported/,
  );
  await bad((c) => c.intermediate_size = 64, /"model.layers.0.mlp.gate_proj.weight" has shape/);
  await bad((c) => c.vocab_size = 50, /the tokenizer has 77 ids, the model only 50/);
  await assert.rejects(exportGguf(`${tmp}/nope`, `${tmp}/x.gguf`), /nope: folder not found/);
});

Deno.test("deno task export: one error line for bad input", async () => {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}src/cli/export.ts`, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: out.code,
      out: new TextDecoder().decode(out.stdout),
      err: new TextDecoder().decode(out.stderr),
    };
  };
  const ok = await run("--model", ARITH, "--gguf", `${tmp}/cli.gguf`);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /wrote .*cli\.gguf: 29 tensors, f16/);
  for (
    const [args, re] of [
      [["--model", `${tmp}/nope`, "--gguf", `${tmp}/x.gguf`], /^error: .*nope: folder not found$/],
      [
        ["--model", ARITH, "--gguf", `${tmp}/x.gguf`, "--dtype", "q4"],
        /^error: --dtype must be f32 or f16, got "q4"$/,
      ],
      [["--model", ARITH], /^error: --model and --gguf are required$/],
    ] as [string[], RegExp][]
  ) {
    const r = await run(...args);
    assert.equal(r.code, 1);
    const lines = r.err.trim().split("\n").filter((l) => !l.includes("XDG_RUNTIME_DIR"));
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0], re);
  }
});

// ---------------------------------------------------------------------------------------------
// llama.cpp itself (node-llama-cpp's prebuilt binary)

/** The part of node-llama-cpp's API used here. */
interface LlamaModel {
  tokenize(text: string, specialTokens?: boolean): number[];
  isEogToken(token: number): boolean;
  createContext(opts: Record<string, unknown>): Promise<{
    getSequence(): {
      evaluate(tokens: number[], opts: Record<string, unknown>): AsyncGenerator<number>;
    };
    dispose(): Promise<void>;
  }>;
  dispose(): Promise<void>;
}
interface Llama {
  loadModel(opts: { modelPath: string; gpuLayers: number }): Promise<LlamaModel>;
}

/** node-llama-cpp, version pinned (its binary is llama.cpp's build of that release). */
const NODE_LLAMA_CPP = "npm:node-llama-cpp@3.21.1";

async function openLlama(): Promise<Llama | string> {
  try {
    // A variable specifier: a missing package (no npm registry) skips these tests, it does not
    // fail loading this file.
    const mod = await import(NODE_LLAMA_CPP);
    return await mod.getLlama({
      gpu: false,
      build: "never",
      logLevel: "error",
      progressLogs: false,
    }) as Llama;
  } catch (err) {
    return err instanceof Error ? err.message.split("\n")[0] : String(err);
  }
}

const llama = await openLlama();
if (typeof llama === "string") {
  console.log(`gguf_test: llama.cpp checks skipped: node-llama-cpp cannot load (${llama})`);
}

/** llama.cpp's greedy continuation of `prompt` (ids): at most `n` tokens, the end of generation not included. */
async function llamaGreedy(model: LlamaModel, prompt: number[], n: number): Promise<number[]> {
  const ctx = await model.createContext({ contextSize: 256, threads: 1 });
  try {
    const out: number[] = [];
    for await (const t of ctx.getSequence().evaluate(prompt, { temperature: 0 })) {
      out.push(t);
      if (out.length >= n) break;
    }
    return out;
  } finally {
    await ctx.dispose();
  }
}

const N = 24;

/**
 * Exports `dir`, then checks llama.cpp's greedy continuation of every prompt against ours, token
 * for token, up to N tokens or the end of generation (which llama.cpp does not return; it ends at
 * the EOS token and at other end-of-generation tokens it knows by name, such as <|endoftext|>),
 * and llama.cpp's tokenization of the texts against ours.
 */
async function compareWithLlama(
  dir: string,
  dtype: "f32" | "f16",
  prompts: string[],
  texts: string[],
) {
  const name = dir.split("/").at(-1);
  const file = `${tmp}/${name}-${dtype}-llama.gguf`;
  await exportGguf(dir, file, { dtype });
  const { model, tokenizer } = await loadPretrained(dir);
  const theirs = await (llama as Llama).loadModel({ modelPath: file, gpuLayers: 0 });
  try {
    const ids = prompts.map((p) => tokenizer.encode(p));
    const ours = await generate(model, tokenizer, ids, { maxNewTokens: N, temperature: 0 });
    for (let i = 0; i < prompts.length; i++) {
      const end = ours[i].ids.findIndex((t) => theirs.isEogToken(t));
      const want = end < 0 ? ours[i].ids : ours[i].ids.slice(0, end);
      const got = await llamaGreedy(theirs, ids[i], N);
      console.log(`  ${name} ${dtype} ${JSON.stringify(prompts[i])}: ${got.join(",")}`);
      assert.deepEqual(got, want, `${dtype} ${JSON.stringify(prompts[i])}: llama.cpp vs ours`);
    }
    for (const t of texts) {
      // Special tokens spelt in the text become those tokens, as our encode does.
      assert.deepEqual(
        [...theirs.tokenize(t, true)],
        tokenizer.encode(t, { addSpecialTokens: false }),
        `tokenize ${JSON.stringify(t)}`,
      );
    }
  } finally {
    await theirs.dispose();
    model.destroy();
  }
}

const STORY_PROMPTS = [
  "Once upon a time",
  "Lily and Ben went to the park. They saw a big",
  "The little dog was sad because",
];
const STORY_TEXTS = [
  ...STORY_PROMPTS,
  "  two  spaces, and a\nnewline; caf\u00e9 \u{1F600}!",
  "One day, a girl named Sue found a shiny red ball in the garden.",
];
/** The arithmetic task's prompt format (answers end with EOS), and one prompt out of it. */
const ARITH_PROMPTS = [
  "Question: Lily has 26 books. She wins 28 more. How many books does Lily have now?\nAnswer:",
  "Question: Leo has 41 apples. He gives away 17. How many apples does Leo have now?\nAnswer:",
  "Question: A box holds 6 rows of 7 cups. How many cups are in the box?\nAnswer:",
  "Q: 3 * 4 - 5 = ?\nA: ",
];

Deno.test({
  name: "llama.cpp runs the exported stories260K (F32 and F16) greedily as we do",
  ignore: typeof llama === "string",
  fn: async () => {
    for (const dtype of ["f32", "f16"] as const) {
      await compareWithLlama(STORIES, dtype, STORY_PROMPTS, STORY_TEXTS);
    }
  },
});

Deno.test({
  name: "llama.cpp runs the exported arith-student greedily as we do",
  ignore: typeof llama === "string",
  fn: async () => {
    await compareWithLlama(ARITH, "f32", ARITH_PROMPTS, ARITH_PROMPTS);
    await compareWithLlama(ARITH, "f16", ARITH_PROMPTS, []);
  },
});

Deno.test({
  name: "llama.cpp runs a student distilled by a short pipeline run greedily as we do",
  ignore: typeof llama === "string",
  fn: async () => {
    const cfg = await loadConfig(configSchema, TINY, [
      `runsDir=${tmp}/runs`,
      "name=tiny",
      "server.enabled=false",
    ]);
    for (const only of ["teacher-generate", "label", "sft"] as const) {
      await runPipeline(cfg, { only, log: () => {} });
    }
    const latest = JSON.parse(await Deno.readTextFile(`${tmp}/runs/tiny/sft/latest.json`));
    const dir = `${tmp}/runs/tiny/${latest.dir}`;
    await compareWithLlama(dir, "f32", ARITH_PROMPTS, ARITH_PROMPTS);
    await compareWithLlama(dir, "f16", ARITH_PROMPTS, []);
  },
});

// ---------------------------------------------------------------------------------------------
// A byte-level BPE (Qwen2-style) tokenizer: exported as "gpt2" with merges

/** GPT-2's byte-to-character map (bytes_to_unicode). */
function byteChars(): string[] {
  const map = new Array<string>(256);
  for (let b = 0; b < 256; b++) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) {
      map[b] = String.fromCodePoint(b);
    }
  }
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCodePoint(256 + n++);
  return map;
}

const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * A small Qwen2-style tokenizer: 256 byte characters, `merges` merges learnt from `corpus` (most
 * frequent pair first), then <|endoftext|>, <|im_start|>, <|im_end|>, and a ChatML template.
 */
function byteLevelTokenizer(corpus: string, merges: number) {
  const chars = byteChars();
  const enc = new TextEncoder();
  const words = corpus.split(/(?= )/).map((w) => [...enc.encode(w)].map((b) => chars[b]));
  const vocab: Record<string, number> = {};
  chars.forEach((c, i) => vocab[c] = i);
  const list: [string, string][] = [];
  for (let m = 0; m < merges; m++) {
    const count = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.length; i++) {
        const k = `${w[i]} ${w[i + 1]}`;
        count.set(k, (count.get(k) ?? 0) + 1);
      }
    }
    let best = "", most = 0;
    for (const [k, c] of [...count].sort()) if (c > most) [best, most] = [k, c];
    if (most < 2) break;
    const [a, b] = best.split(" ");
    list.push([a, b]);
    vocab[a + b] = Object.keys(vocab).length;
    for (const w of words) {
      for (let i = 0; i + 1 < w.length; i++) {
        if (w[i] === a && w[i + 1] === b) w.splice(i, 2, a + b);
      }
    }
  }
  const n = Object.keys(vocab).length;
  const specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
  const byteLevel = {
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: false,
    use_regex: false,
  };
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, i) => specialToken(n + i, content)),
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: QWEN2_SPLIT }, behavior: "Isolated", invert: false },
        byteLevel,
      ],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: list,
    },
  };
  const tokenizerConfig = {
    bos_token: null,
    eos_token: "<|im_end|>",
    pad_token: "<|endoftext|>",
    chat_template:
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" +
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    tokenizer_class: "Qwen2Tokenizer",
  };
  return { files: { tokenizer, tokenizerConfig }, size: n + specials.length };
}

const CORPUS = [
  "One day, a little girl named Lily found a needle in her room. She knew it was difficult",
  "to play with it because it was sharp. Lily wanted to share the needle with her mom, so",
  "she could sew a button on her shirt. The cat sat on the mat; the dog sat on the log.",
  "It's 2024 and there are 365 days in the year, they're saying. I'll count 1234567 sheep!",
].join("\n");

let byteLevelDir: Promise<string> | undefined;

/**
 * A random Qwen2-style student folder (no GPU needed): untied embeddings, grouped-query
 * attention, a vocabulary padded past the tokenizer's, and weights large enough that greedy
 * choices are clear. Made once per run.
 */
function byteLevelStudent(): Promise<string> {
  byteLevelDir ??= (async () => {
    const dir = `${tmp}/bytelevel`;
    const { files, size } = byteLevelTokenizer(CORPUS, 60);
    const eos = size - 1; // <|im_end|>
    const cfg = smallConfig({
      vocabSize: size + 5,
      hiddenSize: 48,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      tieWordEmbeddings: false,
      bosTokenId: null,
      eosTokenIds: [eos],
      padTokenId: size - 3,
    });
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const weights: Record<string, HostTensor> = {};
    for (const [name, shape] of parameterShapes(cfg)) {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) {
        data[i] = name.includes("norm") ? 1 + 0.2 * (rand() - 0.5) : 0.6 * (rand() - 0.5);
      }
      weights[name] = { shape, data };
    }
    await Deno.mkdir(dir);
    await writeSafetensors(`${dir}/model.safetensors`, weights);
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(configToJson(cfg)));
    await writeTokenizerFiles(dir, files);
    return dir;
  })();
  return byteLevelDir;
}

Deno.test("export of a byte-level BPE student: gpt2 vocabulary with merges, qwen2 pre-tokenizer", async () => {
  const dir = await byteLevelStudent();
  const tokenizer = await loadTokenizer(dir);
  const size = tokenizer.vocabSize;
  const eos = tokenizer.eosIds[0];
  const out = `${tmp}/bytelevel.gguf`;
  const res = await exportGguf(dir, out);
  assert.deepEqual(res.warnings, []);
  const parsed = await parse(out);
  const m = parsed.metadata;
  assert.equal(m["tokenizer.ggml.model"], "gpt2");
  assert.equal(m["tokenizer.ggml.pre"], "qwen2");
  const merges = m["tokenizer.ggml.merges"] as string[];
  assert.equal(merges.length, size - 259);
  assert.equal(merges[0].split(" ").length, 2);
  assert.ok(!("tokenizer.ggml.scores" in m));
  assert.ok(!("tokenizer.ggml.bos_token_id" in m));
  assert.equal(m["tokenizer.ggml.eos_token_id"], eos);
  assert.equal(m["tokenizer.ggml.padding_token_id"], size - 3);
  assert.equal(m["tokenizer.ggml.add_bos_token"], false);
  assert.equal(m["tokenizer.chat_template"], tokenizer.chatTemplate);
  const types = m["tokenizer.ggml.token_type"] as number[];
  assert.equal(types[eos], TOKEN_TYPE.control);
  assert.equal(types[100], TOKEN_TYPE.normal);
  assert.equal(types[size], TOKEN_TYPE.unused);
  assert.equal((m["tokenizer.ggml.tokens"] as string[])[size], `[PAD${size}]`);
  const output = parsed.tensorInfos.find((t) => t.name === "output.weight");
  assert.equal(output?.dtype, GGMLQuantizationType.F16);
  assert.deepEqual(output?.shape, [48n, BigInt(size + 5)]);

  // A pre-tokenizer llama.cpp does not know by name: exported, with a warning.
  const odd = `${tmp}/bytelevel-odd`;
  await Deno.mkdir(odd);
  for (const f of ["config.json", "model.safetensors", "tokenizer_config.json"]) {
    await Deno.copyFile(`${dir}/${f}`, `${odd}/${f}`);
  }
  const tj = JSON.parse(await Deno.readTextFile(`${dir}/tokenizer.json`));
  tj.pre_tokenizer.pretokenizers[0].pattern.Regex = "\\s+|\\S+";
  await Deno.writeTextFile(`${odd}/tokenizer.json`, JSON.stringify(tj));
  const r2 = await exportGguf(odd, `${tmp}/odd.gguf`);
  assert.equal(r2.warnings.length, 1);
  assert.match(r2.warnings[0], /pre-tokenizer is not one llama\.cpp knows by name/);
  assert.equal((await parse(`${tmp}/odd.gguf`)).metadata["tokenizer.ggml.pre"], "default");
});

Deno.test({
  name: "llama.cpp tokenizes and continues a byte-level BPE student as we do",
  ignore: typeof llama === "string",
  fn: async () => {
    const dir = await byteLevelStudent();
    const tokenizer = await loadTokenizer(dir);
    const chat = tokenizer.applyChatTemplate([{ role: "user", content: "Where is the cat?" }], {
      addGenerationPrompt: true,
    });
    const prompts = ["One day, the little dog", chat];
    await compareWithLlama(dir, "f16", prompts, []);
    await compareWithLlama(dir, "f32", prompts, [
      ...CORPUS.split("\n"),
      "  two  spaces\n\n\tand tabs, caf\u00e9 \u{1F600} 12345 THEY'RE",
      chat,
    ]);
  },
});
