/**
 * A real-size student measured: a model with Qwen2.5-0.5B's config.json
 * shapes and random weights. Called by `deno task bench:model -- --preset
 * qwen2.5-0.5b`. Training: AdamW steps on random tokens at batch × seq, timed
 * after one warm-up step; model FLOPs per token as PaLM counts them
 * (6·N + 12·L·d·T, N the parameters that take part in matmuls, the tied
 * embedding once as the LM head). Decode: `generate` at decodeBatch prompts
 * of 16 tokens, decodeTokens new tokens with the KV cache, temperature 1.
 */
import * as E from "../mod.ts";
import { parseConfig } from "../src/model/config.ts";
import { CausalLM } from "../src/model/llama.ts";
import { generate } from "../src/generate/generate.ts";
import { Trainer } from "../src/train/trainer.ts";
import { lmLoss } from "../src/train/lm_loss.ts";

/** config.json of Qwen/Qwen2.5-0.5B, the keys this engine reads. */
const PRESETS: Record<string, Record<string, unknown>> = {
  "qwen2.5-0.5b": {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    vocab_size: 151936,
    max_position_embeddings: 32768,
    rope_theta: 1000000.0,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    hidden_act: "silu",
    use_sliding_window: false,
  },
};

/** Dense fp32 peak (TFLOP/s) from the vendors' datasheets, by adapter name. */
const FP32_PEAK: [RegExp, number][] = [[/H200|H100.*(SXM|HBM3)/i, 67], [/H100/i, 51], [
  /A100/i,
  19.5,
]];

export interface PresetOptions {
  batch: number;
  seq: number;
  layers?: number;
  vocab?: number;
  steps: number;
  decodeBatch: number;
  decodeTokens: number;
  peakTflops?: number;
  json: boolean;
}

function randomIds(n: number, vocab: number, seed: number): Int32Array {
  let s = seed;
  return Int32Array.from(
    { length: n },
    () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % vocab,
  );
}

export async function runPreset(name: string, o: PresetOptions): Promise<void> {
  const json = PRESETS[name];
  if (!json) {
    throw new Error(
      `--preset: unknown preset "${name}" (known: ${Object.keys(PRESETS).join(", ")})`,
    );
  }
  const gpu = await E.initGpu();
  const adapter = gpu.info.description;
  const config = parseConfig(
    {
      ...json,
      ...(o.layers ? { num_hidden_layers: o.layers } : {}),
      ...(o.vocab ? { vocab_size: o.vocab } : {}),
    },
    `preset ${name}`,
  );
  const t0 = performance.now();
  const model = CausalLM.init(config, 1);
  const params = model.numParameters();
  const initS = (performance.now() - t0) / 1000;
  const trainer = new Trainer(model, { lr: 1e-5, totalSteps: 1000, weightDecay: 0.1 });

  const { batch: B, seq: T } = o;
  const data = randomIds(B * (T + 1), config.vocabSize, 7);
  const ids = new Int32Array(B * T), labels = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    ids.set(data.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    labels.set(data.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  const batch = { ids, labels, B, T, tokens: B * T };
  const step = () => trainer.trainStep([() => lmLoss(model, batch)]);
  const w0 = performance.now();
  const firstLoss = await step().data();
  const warmS = (performance.now() - w0) / 1000;
  const s0 = performance.now();
  const losses = Array.from({ length: o.steps }, step);
  const last = await E.readAll(losses);
  const stepS = (performance.now() - s0) / 1000 / o.steps;
  losses.forEach((l) => l.destroy());
  const trainTps = (B * T) / stepS;
  const d = config.numHeads * config.headDim;
  const flopsPerToken = 6 * params + 12 * config.numLayers * d * T;
  const peak = o.peakTflops ?? FP32_PEAK.find(([re]) => re.test(adapter))?.[1];
  const trainBytes = gpu.pool.allocatedBytes;

  const prompts = Array.from(
    { length: o.decodeBatch },
    (_, i) => Array.from(randomIds(16, config.vocabSize, i + 11)),
  );
  const noop = { decode: () => "" };
  const gen = { temperature: 1, eosTokenIds: [], seed: 1 };
  await generate(model, noop, prompts, { ...gen, maxNewTokens: 2 });
  const g0 = performance.now();
  await generate(model, noop, prompts, { ...gen, maxNewTokens: o.decodeTokens });
  const decodeS = (performance.now() - g0) / 1000;
  const row = {
    preset: name,
    adapter,
    backend: gpu.info.backend,
    params,
    layers: config.numLayers,
    batch: B,
    seq: T,
    init_s: +initS.toFixed(1),
    first_step_s: +warmS.toFixed(2),
    step_s: +stepS.toFixed(3),
    loss_first: +firstLoss[0].toFixed(4),
    loss_last: +(last[last.length - 1] as Float32Array)[0].toFixed(4),
    train_tokens_per_s: Math.round(trainTps),
    model_tflops: +(trainTps * flopsPerToken / 1e12).toFixed(3),
    fp32_peak_tflops: peak ?? null,
    mfu: peak ? +(trainTps * flopsPerToken / 1e12 / peak).toFixed(4) : null,
    decode_batch: o.decodeBatch,
    decode_new_tokens: o.decodeTokens,
    decode_tokens_per_s: Math.round(o.decodeBatch * o.decodeTokens / decodeS),
    pool_bytes_after_train: trainBytes,
    pool_bytes_after_decode: gpu.pool.allocatedBytes,
  };
  if (o.json) console.log(JSON.stringify(row));
  else console.log(Object.entries(row).map(([k, v]) => `${k}: ${v}`).join("\n"));
  trainer.destroy();
  model.destroy();
}
