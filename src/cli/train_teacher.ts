/**
 * `deno task train-teacher`: trains the embedded default's teacher, a small
 * character-level Llama, on gold solutions of generated arithmetic word
 * problems, and saves it (HF layout) to models/arith-teacher. It stands in
 * for a pretrained LLM: no pipeline stage after it sees gold labels, and its
 * questions exclude the default run's training and held-out questions.
 */
import { parseArgs } from "node:util";
import { EngineError, initGpu, runMain } from "../../mod.ts";
import { smallConfig } from "../model/config.ts";
import { CausalLM } from "../model/llama.ts";
import { charTokenizerFiles, tokenizerFromFiles } from "../model/tokenizer.ts";
import { ARITHMETIC_CHARS, generateArithmetic } from "../tasks/arithmetic.ts";
import { lmBatch } from "../train/batch.ts";
import { lmLoss } from "../train/lm_loss.ts";
import { Trainer } from "../train/trainer.ts";
import { generate } from "../generate/generate.ts";
import { makeTask } from "../tasks/task.ts";
import { configSchema } from "../pipeline/config.ts";
import { validate } from "../pipeline/schema.ts";
import { readAll } from "../tensor/tensor.ts";

await runMain(async () => {
  const { values } = parseArgs({
    args: Deno.args.filter((a) => a !== "--"),
    options: {
      out: { type: "string", default: "models/arith-teacher" },
      steps: { type: "string", default: "800" },
      batch: { type: "string", default: "64" },
      lr: { type: "string", default: "2e-3" },
      hidden: { type: "string", default: "96" },
      layers: { type: "string", default: "4" },
      heads: { type: "string", default: "4" },
      questions: { type: "string", default: "6000" },
      seed: { type: "string", default: "7" },
      "eval-questions": { type: "string", default: "200" },
      "save-at": { type: "string", default: "" },
    },
  });
  const n = (k: keyof typeof values) => {
    const v = Number(values[k]);
    if (!Number.isFinite(v)) throw new EngineError(`--${k} must be a number`);
    return v;
  };
  await initGpu();
  const defaults = validate(configSchema, {}, "defaults").task.arithmetic;
  const gen = (seed: number, count: number) =>
    generateArithmetic({
      seed,
      count,
      minNumber: defaults.minNumber,
      maxNumber: defaults.maxNumber,
      minSteps: defaults.minSteps,
      maxSteps: defaults.maxSteps,
      ops: defaults.ops as ("+" | "-" | "*")[],
      nonNegative: true,
    });
  // Keep the pipeline's own questions out of the teacher's training set.
  const reserved = new Set([
    ...gen(defaults.trainSeed, defaults.trainCount),
    ...gen(defaults.testSeed, defaults.testCount),
  ].map((q) => q.prompt));
  const pool = gen(n("seed"), n("questions")).filter((q) => !reserved.has(q.prompt));
  const held = pool.slice(0, n("eval-questions"));
  const train = pool.slice(n("eval-questions"));

  const tokenizer = tokenizerFromFiles(charTokenizerFiles(ARITHMETIC_CHARS));
  const config = smallConfig({
    vocabSize: tokenizer.vocabSize,
    hiddenSize: n("hidden"),
    numLayers: n("layers"),
    numHeads: n("heads"),
    maxPositionEmbeddings: 512,
    bosTokenId: tokenizer.bosId,
    eosTokenIds: tokenizer.eosIds,
    padTokenId: tokenizer.padId,
  });
  const model = CausalLM.init(config, n("seed"));
  const steps = n("steps");
  const trainer = new Trainer(model, {
    lr: n("lr"),
    totalSteps: steps,
    warmupSteps: 50,
    weightDecay: 0.01,
  });
  const examples = train.map((q) => ({
    prompt: tokenizer.encode(q.prompt),
    completion: [
      ...tokenizer.encode(` ${q.solution}`, { addSpecialTokens: false }),
      tokenizer.eosIds[0],
    ],
  }));
  console.error(
    `teacher: ${
      model.numParameters().toLocaleString("en")
    } parameters, ${examples.length} questions`,
  );
  let s = 0x1234;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const task = makeTask("arithmetic");
  const evaluate = async () => {
    const gens = await generate(model, tokenizer, held.map((q) => tokenizer.encode(q.prompt)), {
      maxNewTokens: 48,
      temperature: 0,
      stopStrings: task.stop,
    });
    return gens.filter((g, i) => task.score(g.text, held[i].gold).strict).length / held.length;
  };
  // Extra snapshots (--save-at 300,500) to pick a teacher of the wanted strength.
  const saveAt = new Set(values["save-at"].split(",").filter(Boolean).map(Number));
  const t0 = performance.now();
  for (let step = 0; step < steps; step += 20) {
    const losses = [];
    for (let k = step; k < Math.min(steps, step + 20); k++) {
      const batch = lmBatch(
        Array.from({ length: n("batch") }, () => examples[Math.floor(rand() * examples.length)]),
        200,
        0,
      );
      losses.push(trainer.trainStep([() => lmLoss(model, batch)]));
    }
    const v = (await readAll(losses)).map((x) => x[0]);
    losses.forEach((l) => l.destroy());
    Trainer.checkFinite("train-teacher", step, v);
    const done = step + v.length;
    console.error(
      `step ${done}/${steps} loss ${v[v.length - 1].toFixed(4)} (${
        ((performance.now() - t0) / 1000).toFixed(0)
      } s)`,
    );
    if (saveAt.has(done) && done < steps) {
      const a = await evaluate();
      console.error(`step ${done}: greedy accuracy ${(100 * a).toFixed(1)}%`);
      await trainer.save(`${values.out}-${done}`, tokenizer, {
        heldout_greedy_accuracy: a,
        steps: done,
      });
      await Deno.remove(`${values.out}-${done}/optimizer.safetensors`).catch(() => {});
    }
  }
  const acc = await evaluate();
  console.error(
    `greedy accuracy on ${held.length} held-out generated questions: ${(100 * acc).toFixed(1)}%`,
  );
  await trainer.save(values.out!, tokenizer, {
    heldout_greedy_accuracy: acc,
    steps,
    questions: examples.length,
  });
  await Deno.remove(`${values.out}/optimizer.safetensors`).catch(() => {});
  console.log(`saved ${values.out}`);
});
