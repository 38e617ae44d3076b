/**
 * Checkpoint and tokenizer I/O: HF config.json, safetensors (F32/F16/BF16, sharded), tokenizer.json
 * and chat templates. No GPU needed: this file imports only src/model/{config,safetensors,
 * tokenizer,files}.ts.
 */
import assert from "node:assert/strict";
import { EngineError } from "../src/errors.ts";
import {
  configToJson,
  type ModelConfig,
  parseConfig,
  readConfig,
  readGenerationConfig,
  smallConfig,
} from "../src/model/config.ts";
import { atomicWrite, ModelFileError } from "../src/model/files.ts";
import {
  bf16ToF32,
  f16ToF32,
  type HostTensor,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from "../src/model/safetensors.ts";
import { charTokenizerFiles, loadTokenizer, writeTokenizerFiles } from "../src/model/tokenizer.ts";

const STORIES = new URL("./fixtures/stories260K", import.meta.url).pathname;

interface RefCase {
  prompt: string;
  input_ids: number[];
  greedy_ids: number[];
  greedy_text: string;
  full_text: string;
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "model_io_test_" });
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Checks a ModelFileError: one line, naming `file`, containing every part. */
function checkFileError(err: unknown, file: string, parts: string[]): true {
  assert.ok(err instanceof ModelFileError, `expected ModelFileError, got ${err}`);
  assert.ok(err instanceof EngineError);
  const msg = err.message;
  assert.ok(!msg.includes("\n"), `message spans lines: ${JSON.stringify(msg)}`);
  assert.ok(msg.startsWith(`${file}: `), `message does not start with "${file}: ": ${msg}`);
  for (const p of parts) assert.ok(msg.includes(p), `message lacks ${JSON.stringify(p)}: ${msg}`);
  return true;
}

async function assertFileError(p: Promise<unknown>, file: string, ...parts: string[]) {
  await assert.rejects(p, (err) => checkFileError(err, file, parts));
}

function assertFileErrorSync(fn: () => unknown, file: string, ...parts: string[]) {
  assert.throws(fn, (err) => checkFileError(err, file, parts));
}

function bits32(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** A safetensors file from raw parts, for hand-built and broken files. */
function rawSafetensors(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function u16le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => dv.setUint16(2 * i, v, true));
  return out;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: number[];
}

function readHeader(
  bytes: Uint8Array,
): { len: number; text: string; json: Record<string, HeaderEntry> } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + len));
  return { len, text, json: JSON.parse(text) };
}

// ---------------------------------------------------------------------------------------------
// stories260K

Deno.test("stories260K config.json and generation_config.json", async () => {
  const cfg = await readConfig(STORIES);
  assert.equal(cfg.modelType, "llama");
  assert.equal(cfg.hiddenSize, 64);
  assert.equal(cfg.intermediateSize, 172);
  assert.equal(cfg.numLayers, 5);
  assert.equal(cfg.numHeads, 8);
  assert.equal(cfg.numKvHeads, 4);
  assert.equal(cfg.headDim, 8);
  assert.equal(cfg.vocabSize, 512);
  assert.equal(cfg.tieWordEmbeddings, true);
  assert.equal(cfg.rmsNormEps, 1e-5);
  assert.equal(cfg.ropeTheta, 10000);
  assert.equal(cfg.maxPositionEmbeddings, 512);
  assert.equal(cfg.attentionBias, false);
  assert.equal(cfg.hiddenAct, "silu");
  assert.equal(cfg.bosTokenId, 1);
  assert.deepEqual(cfg.eosTokenIds, [2]);
  assert.equal(cfg.padTokenId, null);
  assert.equal(cfg.head, "lm");
  assert.equal(cfg.extra.torch_dtype, "float32");
  assert.equal(cfg.extra.initializer_range, 0.02);

  const gen = await readGenerationConfig(STORIES);
  assert.deepEqual(gen, { bosTokenId: 1, eosTokenIds: [2] });
  await withTemp(async (dir) => {
    assert.deepEqual(await readGenerationConfig(dir), {});
    await Deno.writeTextFile(
      `${dir}/generation_config.json`,
      JSON.stringify({
        do_sample: true,
        temperature: 0.7,
        top_k: 20,
        top_p: 0.8,
        max_new_tokens: 64,
        eos_token_id: [151645, 151643],
        pad_token_id: 151643,
        repetition_penalty: 1.05,
      }),
    );
    assert.deepEqual(await readGenerationConfig(dir), {
      doSample: true,
      temperature: 0.7,
      topK: 20,
      topP: 0.8,
      maxNewTokens: 64,
      eosTokenIds: [151645, 151643],
      padTokenId: 151643,
      extra: { repetition_penalty: 1.05 },
    });
  });
});

Deno.test("stories260K model.safetensors: 47 tensors, HF names and shapes, 260,032 params", async () => {
  const tensors = await readSafetensors(STORIES);
  const expected = new Map<string, number[]>([
    ["model.embed_tokens.weight", [512, 64]],
    ["model.norm.weight", [64]],
  ]);
  for (let l = 0; l < 5; l++) {
    const p = `model.layers.${l}.`;
    expected.set(p + "input_layernorm.weight", [64]);
    expected.set(p + "post_attention_layernorm.weight", [64]);
    expected.set(p + "self_attn.q_proj.weight", [64, 64]);
    expected.set(p + "self_attn.k_proj.weight", [32, 64]);
    expected.set(p + "self_attn.v_proj.weight", [32, 64]);
    expected.set(p + "self_attn.o_proj.weight", [64, 64]);
    expected.set(p + "mlp.gate_proj.weight", [172, 64]);
    expected.set(p + "mlp.up_proj.weight", [172, 64]);
    expected.set(p + "mlp.down_proj.weight", [64, 172]);
  }
  assert.equal(tensors.size, 47);
  let params = 0;
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    assert.ok(t, `missing ${name}`);
    assert.deepEqual(t.shape, shape, name);
    assert.equal(t.data.length, shape.reduce((a, b) => a * b, 1), name);
    assert.ok(t.data.every(Number.isFinite), `${name} has non-finite values`);
    params += t.data.length;
  }
  assert.equal(params, 260_032);
  assert.ok(!tensors.has("lm_head.weight"), "tied model has no lm_head");
  // RMSNorm weights are not all zero or one (real pretrained weights were read).
  const norm = tensors.get("model.norm.weight")!.data;
  assert.ok(norm.some((v) => Math.abs(v - 1) > 1e-3));
});

Deno.test("stories260K: writeSafetensors reproduces the Python-written file byte for byte", async () => {
  const original = await Deno.readFile(`${STORIES}/model.safetensors`);
  const tensors = Object.fromEntries(await readSafetensors(STORIES));
  const bytes = serializeSafetensors(tensors);
  assert.equal(bytes.length, original.length);
  assert.ok(bytes.every((b, i) => b === original[i]), "bytes differ from the original file");
});

Deno.test("stories260K tokenizer reproduces reference.json ids and greedy text", async () => {
  const tok = await loadTokenizer(STORIES);
  assert.equal(tok.vocabSize, 512);
  assert.equal(tok.bosId, 1);
  assert.deepEqual(tok.eosIds, [2]);
  assert.equal(tok.padId, null);
  const ref = JSON.parse(await Deno.readTextFile(`${STORIES}/reference.json`));
  assert.equal(ref.n_new_tokens, 40);
  const cases = ref.cases as RefCase[];
  assert.equal(cases.length, 3);
  for (const c of cases) {
    assert.deepEqual(tok.encode(c.prompt), c.input_ids, c.prompt);
    assert.equal(c.greedy_ids.length, 40);
    assert.equal(tok.decode(c.greedy_ids, { skipSpecialTokens: true }), c.greedy_text);
    assert.equal(
      tok.decode([...c.input_ids, ...c.greedy_ids], { skipSpecialTokens: true }),
      c.full_text,
    );
    // BOS comes from tokenizer_config's add_bos_token; without special tokens it is absent.
    assert.deepEqual(tok.encode(c.prompt, { addSpecialTokens: false }), c.input_ids.slice(1));
  }
  assert.deepEqual(tok.encode(""), [1]);
  assert.deepEqual(tok.encode("", { addSpecialTokens: false }), []);
  assert.equal(tok.decode([]), "");
  assert.equal(tok.decode([1, 2], { skipSpecialTokens: true }), "");
  assert.equal(tok.decode([1, 2]), "<s></s>");
  // Byte fallback: characters outside the 512-piece vocabulary round-trip through <0xNN> pieces.
  for (const s of ["café 🍕", "日本語", "naïve — déjà vu\n\ttabs"]) {
    assert.equal(tok.decode(tok.encode(s), { skipSpecialTokens: true }), s);
  }
  // Ids past the vocabulary (a padded model vocab) are skipped.
  assert.equal(tok.decode([403, 9999, 407], { skipSpecialTokens: true }), "Once upon");
  assert.equal(tok.applyChatTemplate([{ role: "user", content: "hi" }]), "user: hi\n");
});

// ---------------------------------------------------------------------------------------------
// config.json

function qwenJson(): Record<string, unknown> {
  return {
    architectures: ["Qwen2ForCausalLM"],
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151645,
    hidden_act: "silu",
    hidden_size: 896,
    initializer_range: 0.02,
    intermediate_size: 4864,
    max_position_embeddings: 32768,
    max_window_layers: 21,
    model_type: "qwen2",
    num_attention_heads: 14,
    num_hidden_layers: 24,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1000000.0,
    sliding_window: 32768,
    tie_word_embeddings: true,
    torch_dtype: "bfloat16",
    transformers_version: "4.43.1",
    use_cache: true,
    use_sliding_window: false,
    vocab_size: 151936,
  };
}

Deno.test("config: qwen2 defaults, round trip through configToJson, heads", async () => {
  const q = parseConfig(qwenJson(), "q/config.json");
  assert.equal(q.modelType, "qwen2");
  assert.equal(q.headDim, 64);
  assert.equal(q.attentionBias, true);
  assert.equal(q.ropeTheta, 1e6);
  assert.deepEqual(q.eosTokenIds, [151645]);
  assert.equal(q.extra.sliding_window, 32768);
  assert.equal(q.extra.transformers_version, "4.43.1");

  const stories = await readConfig(STORIES);
  const small = smallConfig({ vocabSize: 100, hiddenSize: 48, numLayers: 2, numHeads: 4 });
  for (const cfg of [stories, q, small]) {
    for (const head of ["lm", "score", "value"] as const) {
      const c: ModelConfig = { ...cfg, head };
      const json = configToJson(c);
      assert.deepEqual(parseConfig(JSON.parse(JSON.stringify(json)), "x"), c);
    }
  }
  const sj = configToJson({ ...stories, head: "score" });
  assert.deepEqual(sj.architectures, ["LlamaForSequenceClassification"]);
  assert.equal(sj.num_labels, 1);
  assert.deepEqual(configToJson(q).architectures, ["Qwen2ForCausalLM"]);
  assert.deepEqual(configToJson({ ...q, head: "value" }).architectures, [
    "Qwen2ForTokenClassification",
  ]);
  // Every original key survives the round trip with its value.
  const sjLm = configToJson(stories);
  const orig = JSON.parse(await Deno.readTextFile(`${STORIES}/config.json`));
  for (const [k, v] of Object.entries(orig)) assert.deepEqual(sjLm[k], v, k);

  // A HF-style classification config (id2label, no num_labels) gives the score head.
  const rm = parseConfig(
    {
      ...orig,
      architectures: ["LlamaForSequenceClassification"],
      id2label: { "0": "LABEL_0" },
      label2id: { LABEL_0: 0 },
    },
    "rm/config.json",
  );
  assert.equal(rm.head, "score");
  assertFileErrorSync(
    () => parseConfig({ ...orig, architectures: ["LlamaForSequenceClassification"] }, "c.json"),
    "c.json",
    "num_labels 1",
    "2",
  );

  assert.equal(small.modelType, "llama");
  assert.equal(small.intermediateSize, 128); // floor(8/3 * 48) = 128
  assert.equal(
    smallConfig({ vocabSize: 10, hiddenSize: 64, numLayers: 1, numHeads: 4 }).intermediateSize,
    168, // floor(170.67) = 170 -> 168
  );
  assert.equal(small.headDim, 12);
  assert.equal(small.numKvHeads, 4);
  assert.equal(small.tieWordEmbeddings, true);
  assert.throws(
    () => smallConfig({ vocabSize: 10, hiddenSize: 50, numLayers: 1, numHeads: 4 }),
    EngineError,
  );
});

Deno.test("config: bad config.json files give one-line ModelFileErrors", async () => {
  await withTemp(async (dir) => {
    const file = `${dir}/config.json`;
    await assertFileError(readConfig(dir), file, "not found");

    await Deno.writeTextFile(file, '{ "hidden_size": 64,\n oops }');
    await assertFileError(readConfig(dir), file, "not valid JSON");

    const good = JSON.parse(await Deno.readTextFile(`${STORIES}/config.json`));
    const write = (obj: unknown) => Deno.writeTextFile(file, JSON.stringify(obj));

    const { hidden_size: _, ...noHidden } = good;
    await write(noHidden);
    await assertFileError(readConfig(dir), file, `missing key "hidden_size"`);

    await write({ ...good, num_hidden_layers: "5" });
    await assertFileError(readConfig(dir), file, `"num_hidden_layers"`, "integer", `"5"`);

    await write({ ...good, model_type: "mistral" });
    await assertFileError(readConfig(dir), file, `model_type "mistral"`, "not supported");

    await write({ ...good, hidden_act: "gelu" });
    await assertFileError(readConfig(dir), file, `hidden_act "gelu"`);

    await write({ ...good, rope_scaling: { rope_type: "llama3", factor: 8 } });
    await assertFileError(readConfig(dir), file, "rope_scaling", "is not supported");

    await write({ ...good, tie_word_embeddings: "yes" });
    await assertFileError(readConfig(dir), file, `"tie_word_embeddings"`);

    await write({ ...good, num_key_value_heads: 3 });
    await assertFileError(readConfig(dir), file, "num_key_value_heads 3");

    await write([1, 2]);
    await assertFileError(readConfig(dir), file, "JSON object");

    await Deno.writeTextFile(`${dir}/generation_config.json`, `{"top_p": 2}`);
    await assertFileError(readGenerationConfig(dir), `${dir}/generation_config.json`, "top_p");
  });
});

// ---------------------------------------------------------------------------------------------
// safetensors

Deno.test("f16ToF32 and bf16ToF32 give exact values", () => {
  assert.ok(Object.is(f16ToF32(0x0000), 0));
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xc000), -2);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24); // largest subnormal
  assert.equal(f16ToF32(0x0400), 2 ** -14); // smallest normal
  assert.equal(f16ToF32(0x3555), 0.333251953125);
  assert.equal(f16ToF32(0x7c00), Infinity);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.ok(Number.isNaN(f16ToF32(0x7c01)));

  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(0xc020), -2.5);
  assert.equal(bf16ToF32(0x4049), 3.140625);
  assert.equal(bf16ToF32(0x7e96), 150 * 2 ** 119); // (1 + 22/128) * 2^126 ≈ 9.97e37
  assert.equal(bf16ToF32(0x7f7f), Math.fround(3.3895313892515355e38)); // largest finite bf16
  assert.equal(bf16ToF32(0x7f80), Infinity);
  assert.equal(bf16ToF32(0xff80), -Infinity);
  assert.ok(Number.isNaN(bf16ToF32(0x7fc0)));
  assert.ok(Object.is(bf16ToF32(0x8000), -0));
  assert.equal(bf16ToF32(0x0001), 2 ** -133); // smallest subnormal
});

Deno.test("safetensors: hand-built F16 and BF16 files convert exactly", () => {
  const f16Bits = [0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e00];
  const f16Vals = [0, -0, 1, -2, 65504, 2 ** -24, Infinity, NaN];
  const bf16Bits = [0x3f80, 0xc020, 0x4049, 0x7e96, 0x7f80, 0xff80];
  const bf16Vals = [1, -2.5, 3.140625, bf16ToF32(0x7e96), Infinity, -Infinity];
  // An odd header length (and a one-byte gap) puts the data at unaligned offsets too.
  for (const pad of ["", " ", "  ", "   "]) {
    const data = new Uint8Array([...u16le(f16Bits), 0xaa, 0xbb, ...u16le(bf16Bits)]);
    const header = {
      __metadata__: { format: "pt" },
      h: { dtype: "F16", shape: [2, 4], data_offsets: [0, 16] },
      b: { dtype: "BF16", shape: [6], data_offsets: [18, 30] },
    };
    const bytes = rawSafetensors(header, data, JSON.stringify(header) + pad);
    const t = parseSafetensors(bytes, "hand.safetensors");
    assert.deepEqual([...t.keys()], ["h", "b"]);
    assert.deepEqual(t.get("h")!.shape, [2, 4]);
    assert.deepEqual(t.get("b")!.shape, [6]);
    const h = t.get("h")!.data;
    f16Vals.forEach((v, i) => assert.ok(Object.is(h[i], v), `f16[${i}] = ${h[i]}, want ${v}`));
    assert.deepEqual([...t.get("b")!.data], bf16Vals);
    assert.equal(bf16Vals[3], 150 * 2 ** 119);
  }
  // Unaligned F32 (header length 7 mod 8) reads the same values.
  const f = new Float32Array([1.5, -0, 3e-40, -7]);
  const hdr = { x: { dtype: "F32", shape: [4], data_offsets: [0, 16] } };
  const text = JSON.stringify(hdr);
  const padded = text + " ".repeat((8 - ((text.length + 1) % 8)) % 8 + 1);
  const t = parseSafetensors(rawSafetensors(hdr, new Uint8Array(f.buffer), padded), "u");
  assert.deepEqual(bits32(t.get("x")!.data), bits32(f));
});

function randomTensors(): Record<string, HostTensor> {
  let s = 12345;
  const rand = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const make = (shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = rand() * 10 ** Math.floor(rand() * 20);
    return { shape, data };
  };
  const special = new Float32Array([
    0,
    -0,
    Infinity,
    -Infinity,
    NaN,
    1e-45,
    -3.4028234663852886e38,
  ]);
  // A NaN with a payload: bits must survive the round trip.
  bits32(special)[4] = 0x7fc12345;
  return {
    "model.layers.1.mlp.up_proj.weight": make([7, 5]),
    "model.embed_tokens.weight": make([11, 3]),
    "lm_head.weight": make([11, 3]),
    "2": make([3]), // integer-like name: must still come out in sorted order
    "model.norm.weight": make([3]),
    "scalar": make([]),
    "empty": make([0, 4]),
    "special": { shape: [7], data: special },
  };
}

Deno.test("safetensors: write -> read round trip is bit-exact; header is padded JSON", async () => {
  const tensors = randomTensors();
  await withTemp(async (dir) => {
    const path = `${dir}/model.safetensors`;
    await writeSafetensors(path, tensors, { step: "42" });
    const bytes = await Deno.readFile(path);
    assert.deepEqual(bytes, serializeSafetensors(tensors, { step: "42" }));
    // No temporary files are left behind.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["model.safetensors"]);

    const { len, text, json } = readHeader(bytes);
    assert.equal(len % 8, 0);
    assert.equal((8 + len) % 8, 0);
    assert.match(text, /^\{.*\} *$/);
    assert.equal(text.trimEnd().length + (len - text.trimEnd().length), len);
    assert.ok(len - text.trimEnd().length < 8);
    const keys = Object.keys(JSON.parse(text)); // JS reorders integer-like keys; use raw order
    assert.equal(keys.length, 9);
    const rawOrder = [...text.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    assert.deepEqual(rawOrder, Object.keys(tensors).sort());
    assert.ok(text.startsWith(`{"__metadata__":{"format":"pt","step":"42"}`));
    let offset = 0;
    for (const name of rawOrder) {
      const e = json[name];
      assert.equal(e.dtype, "F32");
      assert.deepEqual(e.shape, tensors[name].shape);
      assert.deepEqual(e.data_offsets, [offset, offset + 4 * tensors[name].data.length]);
      offset = e.data_offsets[1];
    }
    assert.equal(bytes.length, 8 + len + offset);

    const back = await readSafetensors(dir);
    assert.equal(back.size, Object.keys(tensors).length);
    for (const [name, t] of Object.entries(tensors)) {
      const b = back.get(name)!;
      assert.deepEqual(b.shape, t.shape, name);
      assert.deepEqual(bits32(b.data), bits32(t.data), name);
    }
    // parseSafetensors copies by default: changing the bytes does not change the tensors.
    const parsed = parseSafetensors(bytes, path);
    const before = parsed.get("special")!.data.slice();
    bytes.fill(0, 8 + len);
    assert.deepEqual(bits32(parsed.get("special")!.data), bits32(before));
  });
  assert.throws(
    () => serializeSafetensors({ x: { shape: [2, 3], data: new Float32Array(5) } }),
    (err: Error) => err instanceof EngineError && err.message.includes(`"x"`),
  );
});

Deno.test("safetensors: a sharded checkpoint reads back identically to the single file", async () => {
  const tensors = randomTensors();
  const names = Object.keys(tensors).sort();
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/single`);
    await Deno.mkdir(`${dir}/sharded`);
    await writeSafetensors(`${dir}/single/model.safetensors`, tensors);
    const first = Object.fromEntries(names.slice(0, 4).map((n) => [n, tensors[n]]));
    const second = Object.fromEntries(names.slice(4).map((n) => [n, tensors[n]]));
    const shard1 = "model-00001-of-00002.safetensors";
    const shard2 = "model-00002-of-00002.safetensors";
    await writeSafetensors(`${dir}/sharded/${shard1}`, first);
    await writeSafetensors(`${dir}/sharded/${shard2}`, second);
    const weightMap: Record<string, string> = {};
    for (const n of Object.keys(first)) weightMap[n] = shard1;
    for (const n of Object.keys(second)) weightMap[n] = shard2;
    await Deno.writeTextFile(
      `${dir}/sharded/model.safetensors.index.json`,
      JSON.stringify({ metadata: { total_size: 1234 }, weight_map: weightMap }),
    );
    const a = await readSafetensors(`${dir}/single`);
    const b = await readSafetensors(`${dir}/sharded`);
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [name, t] of a) {
      assert.deepEqual(b.get(name)!.shape, t.shape);
      assert.deepEqual(bits32(b.get(name)!.data), bits32(t.data));
    }

    // An index that names a tensor its shard lacks.
    await Deno.writeTextFile(
      `${dir}/sharded/model.safetensors.index.json`,
      JSON.stringify({ weight_map: { ...weightMap, "ghost.weight": shard1 } }),
    );
    await assertFileError(
      readSafetensors(`${dir}/sharded`),
      `${dir}/sharded/${shard1}`,
      `"ghost.weight"`,
      "missing",
    );
    // An index that names a missing shard.
    await Deno.writeTextFile(
      `${dir}/sharded/model.safetensors.index.json`,
      JSON.stringify({ weight_map: { x: "model-00009.safetensors" } }),
    );
    await assertFileError(
      readSafetensors(`${dir}/sharded`),
      `${dir}/sharded/model-00009.safetensors`,
      "not found",
    );
  });
});

Deno.test("safetensors: bad files give one-line ModelFileErrors naming file and fault", async () => {
  const f = "x/model.safetensors";
  const data = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
  const ok = { w: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] } };
  assert.equal(parseSafetensors(rawSafetensors(ok, data), f).size, 1);

  assertFileErrorSync(
    () => parseSafetensors(new Uint8Array(5), f),
    f,
    "truncated header",
    "5 bytes",
  );
  const big = rawSafetensors(ok, data);
  new DataView(big.buffer).setBigUint64(0, 999999n, true);
  assertFileErrorSync(
    () => parseSafetensors(big, f),
    f,
    `header length 999999 exceeds file size ${big.length}`,
  );
  new DataView(big.buffer).setBigUint64(0, 2n ** 63n, true);
  assertFileErrorSync(() => parseSafetensors(big, f), f, "exceeds file size");
  assertFileErrorSync(
    () => parseSafetensors(rawSafetensors(null, data, `{"w": {"dtype": "F32",`), f),
    f,
    "header is not valid JSON",
  );
  assertFileErrorSync(
    () => parseSafetensors(rawSafetensors([1, 2], data), f),
    f,
    "not a JSON object",
  );
  assertFileErrorSync(
    () =>
      parseSafetensors(
        rawSafetensors({ w: { dtype: "F32", shape: [2, 2], data_offsets: [8, 24] } }, data),
        f,
      ),
    f,
    `tensor "w"`,
    "[8, 24]",
    "past the end",
  );
  assertFileErrorSync(
    () =>
      parseSafetensors(
        rawSafetensors({ w: { dtype: "F32", shape: [3, 2], data_offsets: [0, 16] } }, data),
        f,
      ),
    f,
    `tensor "w"`,
    "16 bytes",
    "24",
  );
  assertFileErrorSync(
    () =>
      parseSafetensors(
        rawSafetensors({ ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, data),
        f,
      ),
    f,
    `tensor "ids"`,
    "I64",
    "not supported",
  );
  assertFileErrorSync(
    () =>
      parseSafetensors(
        rawSafetensors({ w: { dtype: "F32", shape: [-4], data_offsets: [0, 16] } }, data),
        f,
      ),
    f,
    `tensor "w"`,
    "shape",
  );
  // Truncated data section (file cut short after the header).
  const whole = rawSafetensors(ok, data);
  assertFileErrorSync(
    () => parseSafetensors(whole.subarray(0, whole.length - 4), f),
    f,
    "past the end",
  );

  await withTemp(async (dir) => {
    await assertFileError(readSafetensors(dir), dir, "no model weights", "model.safetensors");
    await assertFileError(readSafetensors(`${dir}/nope`), `${dir}/nope`, "folder not found");
    await Deno.writeFile(`${dir}/model.safetensors`, new Uint8Array([1, 2, 3]));
    await assertFileError(readSafetensors(dir), `${dir}/model.safetensors`, "truncated header");
  });
});

Deno.test("atomicWrite replaces a file and leaves no temporary on failure", async () => {
  await withTemp(async (dir) => {
    const path = `${dir}/a.json`;
    await atomicWrite(path, "one");
    await atomicWrite(path, "two");
    assert.equal(await Deno.readTextFile(path), "two");
    await assert.rejects(
      atomicWrite(path, async (file) => {
        await file.write(new Uint8Array([1]));
        throw new EngineError("boom");
      }),
      /boom/,
    );
    assert.equal(await Deno.readTextFile(path), "two");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.json"]);
    await assertFileError(atomicWrite(`${dir}/missing/a.json`, "x"), `${dir}/missing/a.json`);
  });
});

// ---------------------------------------------------------------------------------------------
// tokenizers

const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join("");

Deno.test("char tokenizer: round trips, ids, and loads through loadTokenizer", async () => {
  const files = charTokenizerFiles(PRINTABLE + "\n");
  await withTemp(async (dir) => {
    await writeTokenizerFiles(`${dir}/tok`, files);
    const tok = await loadTokenizer(`${dir}/tok`);
    assert.equal(tok.vocabSize, 4 + 96);
    assert.equal(tok.bosId, 1);
    assert.deepEqual(tok.eosIds, [2]);
    assert.equal(tok.padId, 0);
    assert.equal(tok.idToToken(3), "<unk>");
    assert.equal(tok.tokenToId(" "), 4);
    assert.equal(tok.tokenToId("A"), 4 + 33);

    const gsm = "Q: 12+5=? A: 12+5=17 #### 17\n";
    const ids = tok.encode(gsm);
    assert.equal(ids[0], 1);
    assert.equal(ids.length, 1 + gsm.length);
    assert.deepEqual(ids.slice(1), Array.from(gsm).map((c) => tok.tokenToId(c)));
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), gsm);
    assert.equal(tok.decode(ids), "<s>" + gsm);
    assert.equal(tok.decode(tok.encode(gsm, { addSpecialTokens: false })), gsm);

    for (
      const s of [PRINTABLE, "  leading", "trailing  ", "a\n\nb \n", " ", "", "x . , ! ?", "don't"]
    ) {
      const e = tok.encode(s, { addSpecialTokens: false });
      assert.equal(e.length, s.length, JSON.stringify(s));
      assert.equal(tok.decode(e), s, JSON.stringify(s));
    }
    for (const c of PRINTABLE) {
      assert.deepEqual(tok.encode(c, { addSpecialTokens: false }).length, 1);
    }
    // Characters outside the set become <unk> (id 3).
    assert.deepEqual(tok.encode("aéb", { addSpecialTokens: false }), [
      tok.tokenToId("a"),
      3,
      tok.tokenToId("b"),
    ]);
    assert.equal(tok.decode([1, 2, 0, 3], { skipSpecialTokens: true }), "");
  });

  // Non-ASCII characters (surrogate pairs included) are single tokens too.
  const uni = charTokenizerFiles("aé🍕 \n");
  await withTemp(async (dir) => {
    await writeTokenizerFiles(dir, uni);
    const tok = await loadTokenizer(dir);
    assert.equal(tok.vocabSize, 9);
    assert.deepEqual(tok.encode("🍕a é\n"), [1, 6, 4, 7, 5, 8]);
    assert.equal(tok.decode(tok.encode("🍕a é\n")), "<s>🍕a é\n");
  });
});

const CHATML =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
  "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

Deno.test("chat templates: Jinja ChatML template, BOS variable, fallback", async () => {
  const messages = [
    { role: "user", content: "What is 2+2?" },
    { role: "assistant", content: "4" },
    { role: "user", content: "And 3+3?" },
  ];
  await withTemp(async (dir) => {
    const files = charTokenizerFiles(PRINTABLE + "\n", { chatTemplate: CHATML });
    await writeTokenizerFiles(dir, files);
    const tok = await loadTokenizer(dir);
    const expected = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
      "<|im_start|>assistant\n4<|im_end|>\n" +
      "<|im_start|>user\nAnd 3+3?<|im_end|>\n";
    assert.equal(tok.applyChatTemplate(messages), expected);
    assert.equal(
      tok.applyChatTemplate(messages, { addGenerationPrompt: true }),
      expected + "<|im_start|>assistant\n",
    );
    assert.equal(
      tok.applyChatTemplate([{ role: "system", content: "Be brief." }, messages[0]]),
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n",
    );
    // encodeChat: template text, no extra BOS (templates write their own).
    const ids = tok.encodeChat(messages);
    assert.equal(ids.length, expected.length);
    assert.equal(tok.decode(ids), expected);

    // A template using bos_token/eos_token and raise_exception.
    const llamaLike = "{{ bos_token }}{% for m in messages %}" +
      "{% if m['role'] == 'tool' %}{{ raise_exception('no tools') }}{% endif %}" +
      "[{{ m['role'] }}] {{ m['content'] }}{{ eos_token }}{% endfor %}";
    const cfg = { ...files.tokenizerConfig, chat_template: llamaLike };
    await writeTokenizerFiles(dir, { tokenizer: files.tokenizer, tokenizerConfig: cfg });
    const tok2 = await loadTokenizer(dir);
    assert.equal(
      tok2.applyChatTemplate(messages.slice(0, 2)),
      "<s>[user] What is 2+2?</s>[assistant] 4</s>",
    );
    assert.deepEqual(tok2.encodeChat(messages.slice(0, 1)).slice(0, 2), [1, tok2.tokenToId("[")]);
    assert.throws(
      () => tok2.applyChatTemplate([{ role: "tool", content: "x" }]),
      (err: Error) => err instanceof EngineError && err.message.includes("no tools"),
    );

    // chat_template.jinja next to a config without a template (newer transformers layout).
    const { chat_template: _, ...noTemplate } = files.tokenizerConfig;
    await writeTokenizerFiles(dir, { tokenizer: files.tokenizer, tokenizerConfig: noTemplate });
    await Deno.writeTextFile(`${dir}/chat_template.jinja`, CHATML);
    const tok3 = await loadTokenizer(dir);
    assert.equal(tok3.applyChatTemplate(messages), expected);
    assert.equal(tok3.files.tokenizerConfig.chat_template, CHATML);

    // No template anywhere: plain fallback.
    await Deno.remove(`${dir}/chat_template.jinja`);
    const plain = await loadTokenizer(dir);
    assert.equal(plain.chatTemplate, null);
    assert.equal(
      plain.applyChatTemplate(messages, { addGenerationPrompt: true }),
      "user: What is 2+2?\nassistant: 4\nuser: And 3+3?\nassistant: ",
    );
    assert.equal(plain.applyChatTemplate(messages.slice(0, 1)), "user: What is 2+2?\n");
    assert.equal(plain.encodeChat(messages.slice(0, 1))[0], 1);
  });
});

Deno.test("tokenizer: bad files give one-line ModelFileErrors", async () => {
  await withTemp(async (dir) => {
    const tokFile = `${dir}/tokenizer.json`;
    await assertFileError(loadTokenizer(dir), tokFile, "not found");
    await Deno.writeTextFile(tokFile, `{"version": "1.0", "model": {`);
    await assertFileError(loadTokenizer(dir), tokFile, "not valid JSON");
    await Deno.writeTextFile(tokFile, `{"version": "1.0"}`);
    await assertFileError(loadTokenizer(dir), tokFile, `"model"`);
    await Deno.writeTextFile(tokFile, JSON.stringify({ model: { type: "BPE" }, added_tokens: [] }));
    await assertFileError(loadTokenizer(dir), tokFile, "not a usable tokenizer");

    const files = charTokenizerFiles("abc");
    await writeTokenizerFiles(dir, files);
    const cfgFile = `${dir}/tokenizer_config.json`;
    await Deno.writeTextFile(cfgFile, "not json");
    await assertFileError(loadTokenizer(dir), cfgFile, "not valid JSON");
    await Deno.writeTextFile(
      cfgFile,
      JSON.stringify({ ...files.tokenizerConfig, bos_token: "<bos>" }),
    );
    await assertFileError(
      loadTokenizer(dir),
      cfgFile,
      `bos_token "<bos>"`,
      "not in the vocabulary",
    );
    await Deno.writeTextFile(
      cfgFile,
      JSON.stringify({ ...files.tokenizerConfig, chat_template: "{% for m in messages %}" }),
    );
    await assertFileError(loadTokenizer(dir), cfgFile, "chat_template");
  });
});
