/** Training a causal LM: prompt masking, gradient accumulation, checkpoints that resume exactly. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import { smallConfig } from "../src/model/config.ts";
import { CausalLM } from "../src/model/llama.ts";
import { loadPretrained } from "../src/model/checkpoint.ts";
import { charTokenizerFiles, tokenizerFromFiles } from "../src/model/tokenizer.ts";
import { type Example, lmBatch } from "../src/train/batch.ts";
import { lmLoss } from "../src/train/lm_loss.ts";
import { NonFiniteLossError, Trainer } from "../src/train/trainer.ts";
import { assertClose } from "./support/assert.ts";
import { logSoftmaxRow } from "./support/reference.ts";
import "./support/gpu.ts";

const tokenizer = tokenizerFromFiles(charTokenizerFiles("0123456789+-=#? QA:\n"));
const config = smallConfig({
  vocabSize: tokenizer.vocabSize,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  maxPositionEmbeddings: 64,
});

function examples(n: number, seed: number): Example[] {
  return Array.from({ length: n }, (_, i) => {
    // Single-digit sums: every completion has the same length.
    const a = (i * 7 + seed) % 5;
    const b = (i * 3 + seed * 5) % 5;
    return {
      prompt: tokenizer.encode(`Q: ${a}+${b}=? A:`, { addSpecialTokens: false }),
      completion: tokenizer.encode(` ${a + b} #### ${a + b}\n`, { addSpecialTokens: false }),
    };
  });
}

Deno.test("lmBatch masks prompt and padding positions with -100, padding length to 8", () => {
  const b = lmBatch(
    [{ prompt: [5, 6, 7], completion: [8, 9] }, { prompt: [5], completion: [4] }],
    16,
    0,
  );
  assert.equal(b.T, 8);
  assert.deepEqual(Array.from(b.ids), [5, 6, 7, 8, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
  const X = -100;
  assert.deepEqual(Array.from(b.labels), [X, X, 8, 9, X, X, X, X, 4, X, X, X, X, X, X, X]);
  assert.equal(b.tokens, 3);
});

Deno.test("the LM loss is the mean cross-entropy over completion tokens only", async () => {
  const model = CausalLM.init(config, 1);
  const batch = lmBatch(examples(3, 1), 32, 0);
  const loss = lmLoss(model, batch);
  const logits = E.noGrad(() =>
    model.logits(model.forward(E.tensor(batch.ids, [batch.B, batch.T])))
  );
  const [l, lg] = await E.readAll([loss, logits]);
  const V = config.vocabSize;
  let sum = 0;
  batch.labels.forEach((y, i) => {
    if (y !== -100) sum -= logSoftmaxRow(Array.from(lg.slice(i * V, (i + 1) * V)))[y];
  });
  assertClose(l, [sum / batch.tokens], { rtol: 1e-5 });
  model.destroy();
});

Deno.test("past the binding limit the LM loss runs over chunks of positions: same loss and gradients", async () => {
  const batch = lmBatch(examples(3, 4), 32, 0);
  const run = async (maxLogitBytes?: number) => {
    const model = CausalLM.init(config, 3);
    const loss = lmLoss(model, batch, { maxLogitBytes });
    E.backward(loss);
    const out = await E.readAll([loss, ...model.parameters().map((p) => p.grad!)]);
    model.destroy();
    return out;
  };
  const whole = await run();
  // 5 positions per chunk: chunks that do not divide the batch's B·T.
  const chunked = await run(5 * config.vocabSize * 4);
  whole.forEach((w, i) =>
    assertClose(chunked[i], w, { what: i ? `gradient ${i}` : "loss", rtol: 1e-4, atol: 1e-6 })
  );
});

Deno.test("gradient accumulation over two micro-batches equals one step on both", async () => {
  const exs = examples(4, 2);
  // Equal token counts per half, so the mean of means is the overall mean.
  const halves = [lmBatch(exs.slice(0, 2), 32, 0), lmBatch(exs.slice(2), 32, 0)];
  assert.equal(halves[0].tokens, halves[1].tokens);
  const run = async (accumulate: boolean) => {
    const model = CausalLM.init(config, 3);
    // eps 1 makes the first Adam step close to SGD, so parameters reflect the gradients.
    const t = new Trainer(model, { lr: 1e-2, totalSteps: 10, eps: 1 });
    const loss = accumulate
      ? t.trainStep(halves.map((h) => () => lmLoss(model, h)))
      : t.trainStep([() => lmLoss(model, lmBatch(exs, 32, 0))]);
    const out = await E.readAll([loss, ...model.parameters()]);
    t.destroy();
    model.destroy();
    return out;
  };
  const [a, b] = [await run(true), await run(false)];
  a.forEach((x, i) => assertClose(x, b[i], { what: `tensor ${i}`, rtol: 1e-4, atol: 1e-6 }));
});

Deno.test("save and resume continue training bit-identically, step and optimizer state included", async () => {
  const batches = Array.from({ length: 6 }, (_, s) => lmBatch(examples(8, s), 32, 0));
  const cfg = { lr: 5e-3, totalSteps: 6, warmupSteps: 2, maxGradNorm: 1 };
  const straight = CausalLM.init(config, 4);
  const t1 = new Trainer(straight, cfg);
  const a: E.Tensor[] = batches.map((b) => t1.trainStep([() => lmLoss(straight, b)]));
  const want = (await E.readAll(a)).map((x) => x[0]);

  const dir = await Deno.makeTempDir();
  const first = CausalLM.init(config, 4);
  const t2 = new Trainer(first, cfg);
  for (const b of batches.slice(0, 3)) t2.trainStep([() => lmLoss(first, b)]);
  await t2.save(dir, tokenizer);
  t2.destroy();
  first.destroy();

  const loaded = await loadPretrained(dir);
  const t3 = new Trainer(loaded.model, cfg);
  await t3.resume(dir);
  assert.equal(t3.step, 3);
  const rest = batches.slice(3).map((b) => t3.trainStep([() => lmLoss(loaded.model, b)]));
  const got = (await E.readAll(rest)).map((x) => x[0]);
  assert.deepEqual(got, want.slice(3));
  assert.ok(want[5] < want[0]);
  [t1, t3].forEach((t) => t.destroy());
  [straight, loaded.model].forEach((m) => m.destroy());
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a NaN loss is reported with its stage and step", () => {
  assert.throws(
    () => Trainer.checkFinite("sft", 40, [1.2, 0.9, NaN]),
    (e: Error) => e instanceof NonFiniteLossError && e.message === "sft: loss is NaN at step 42",
  );
});
