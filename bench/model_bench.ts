/**
 * `deno task bench:model [-- --json]`: training and sampling tokens/s of the
 * reference model (vocab 64, 4 layers, 4 heads, SwiGLU 8/3·d, untied head)
 * at d_model 128 and 256, with PyTorch's figures for the same model measured
 * in the same run (bench/torch_reference.py) and the ratio.
 *
 * `--preset qwen2.5-0.5b`: a model of Qwen2.5-0.5B's config.json shapes with
 * random weights instead (bench/qwen_preset.ts): AdamW training tokens/s at
 * batch 8 × 512 and its model-FLOPs utilisation, decode tokens/s at batch 64
 * with the KV cache, and the GPU bytes the pool allocated. On the CPU adapter
 * pass small `--batch/--seq/--layers/--vocab` to run a step at all.
 */
import { parseArgs } from "node:util";
import * as E from "../mod.ts";
import { smallConfig } from "../src/model/config.ts";
import { CausalLM } from "../src/model/llama.ts";
import { generate } from "../src/generate/generate.ts";
import { Trainer } from "../src/train/trainer.ts";
import { lmLoss } from "../src/train/lm_loss.ts";
import { runTorchScript, torchThreads } from "./torch_run.ts";

const { values } = parseArgs({
  // `deno task bench:model -- --json` passes the "--" through.
  args: Deno.args.filter((a) => a !== "--" && a !== "model"),
  options: {
    json: { type: "boolean", default: false },
    dims: { type: "string", default: "128,256" },
    "train-steps": { type: "string", default: "5" },
    "sample-reps": { type: "string", default: "1" },
    "no-torch": { type: "boolean", default: false },
    preset: { type: "string" },
    batch: { type: "string", default: "8" },
    seq: { type: "string", default: "512" },
    layers: { type: "string" },
    vocab: { type: "string" },
    "decode-batch": { type: "string", default: "64" },
    "decode-tokens": { type: "string", default: "64" },
    "peak-tflops": { type: "string" },
  },
});
if (values.preset !== undefined) {
  const { runPreset } = await import("./qwen_preset.ts");
  await runPreset(values.preset, {
    batch: Number(values.batch),
    seq: Number(values.seq),
    layers: values.layers === undefined ? undefined : Number(values.layers),
    vocab: values.vocab === undefined ? undefined : Number(values.vocab),
    steps: Number(values["train-steps"]),
    decodeBatch: Number(values["decode-batch"]),
    decodeTokens: Number(values["decode-tokens"]),
    peakTflops: values["peak-tflops"] === undefined ? undefined : Number(values["peak-tflops"]),
    json: values.json,
  });
  Deno.exit(0);
}
const trainSteps = Number(values["train-steps"]);
const sampleReps = Number(values["sample-reps"]);
const gpu = await E.initGpu();
const adapter = `${gpu.info.description} (${gpu.info.backend})`;

const SEQ = 128;
const BATCH = 32;
const SAMPLE_BATCH = 64;
const PROMPT = 16;
const NEW = 112;

function rand(n: number, hi: number, seed: number): Int32Array {
  let s = seed;
  return Int32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s % hi;
  });
}

async function ours(d: number) {
  const config = smallConfig({
    vocabSize: 64,
    hiddenSize: d,
    numLayers: 4,
    numHeads: 4,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 256,
  });
  const model = CausalLM.init(config, 1);
  const trainer = new Trainer(model, { lr: 1e-3, totalSteps: 1000 });
  const data = rand(BATCH * (SEQ + 1), 64, 7);
  const ids = new Int32Array(BATCH * SEQ);
  const labels = new Int32Array(BATCH * SEQ);
  for (let b = 0; b < BATCH; b++) {
    ids.set(data.subarray(b * (SEQ + 1), b * (SEQ + 1) + SEQ), b * SEQ);
    labels.set(data.subarray(b * (SEQ + 1) + 1, (b + 1) * (SEQ + 1)), b * SEQ);
  }
  const batch = { ids, labels, B: BATCH, T: SEQ, tokens: BATCH * SEQ };
  const step = () => trainer.trainStep([() => lmLoss(model, batch)]);
  await step().data(); // compiles every pipeline
  const t0 = performance.now();
  const losses = Array.from({ length: trainSteps }, step);
  await E.readAll(losses);
  const trainTps = (trainSteps * BATCH * SEQ) / ((performance.now() - t0) / 1000);
  losses.forEach((l) => l.destroy());

  const prompts = Array.from(
    { length: SAMPLE_BATCH },
    (_, i) => Array.from(rand(PROMPT, 64, i + 1)),
  );
  const noop = { decode: () => "" };
  const opts = { maxNewTokens: NEW, temperature: 1, eosTokenIds: [], seed: 1 };
  await generate(model, noop, prompts, { ...opts, maxNewTokens: 4 });
  const t1 = performance.now();
  for (let r = 0; r < sampleReps; r++) await generate(model, noop, prompts, opts);
  const sampleTps = (sampleReps * SAMPLE_BATCH * NEW) / ((performance.now() - t1) / 1000);
  const params = model.numParameters();
  trainer.destroy();
  model.destroy();
  return { params, trainTps, sampleTps };
}

async function torch(
  d: number,
): Promise<{ train_tokens_per_s: number; sample_tokens_per_s: number; adapter: string } | null> {
  const lines = await runTorchScript("torch_reference.py", [
    "--dims",
    String(d),
    "--threads",
    String(torchThreads()),
  ]);
  return lines && JSON.parse(lines[lines.length - 1]);
}

for (const d of values.dims.split(",").map(Number)) {
  const o = await ours(d);
  const t = values["no-torch"] ? null : await torch(d);
  const row = {
    config: `d${d}`,
    params: o.params,
    train_tokens_per_s: Math.round(o.trainTps),
    sample_tokens_per_s: Math.round(o.sampleTps),
    adapter,
    torch_train_tokens_per_s: t?.train_tokens_per_s ?? null,
    torch_sample_tokens_per_s: t?.sample_tokens_per_s ?? null,
    torch: t?.adapter ?? null,
    train_ratio: t ? +(o.trainTps / t.train_tokens_per_s).toFixed(3) : null,
    sample_ratio: t ? +(o.sampleTps / t.sample_tokens_per_s).toFixed(3) : null,
  };
  if (values.json) console.log(JSON.stringify(row));
  else {
    console.log(
      `d_model ${d} (${o.params.toLocaleString()} params) on ${adapter}: ` +
        `training ${row.train_tokens_per_s} tok/s, sampling ${row.sample_tokens_per_s} tok/s` +
        (t
          ? `; PyTorch ${t.train_tokens_per_s} / ${t.sample_tokens_per_s} tok/s; ratio ${row.train_ratio} / ${row.sample_ratio}`
          : ""),
    );
  }
}
