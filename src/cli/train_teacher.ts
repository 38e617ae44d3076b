/**
 * `deno task train-teacher`: trains the embedded default's teacher, a small
 * character-level Llama, on gold solutions of generated arithmetic word
 * problems, and saves it (HF layout) to models/arith-teacher. It stands in
 * for a pretrained LLM: no pipeline stage after it sees gold labels, and its
 * questions exclude the questions of the run it is made for (--config; the
 * embedded default without it): training, held-out, validation and PPO's.
 * With --answer-only a share of the gold solutions gives the answer alone,
 * and --init continues from a checkpoint: models/arith-teacher/SOURCE.txt
 * has the recipe. It prints greedy accuracy by answer style and maj@8.
 */
import { parseArgs } from "node:util";
import { EngineError, runMain } from "../errors.ts";
import { initGpu } from "../gpu/mod.ts";
import { smallConfig } from "../model/config.ts";
import { CausalLM } from "../model/llama.ts";
import { charTokenizerFiles, tokenizerFromFiles } from "../model/tokenizer.ts";
import { answerStyle, ARITHMETIC_CHARS, generateArithmetic } from "../tasks/arithmetic.ts";
import { majority } from "../stages/label.ts";
import { lmBatch } from "../train/batch.ts";
import { lmLoss } from "../train/lm_loss.ts";
import { Trainer } from "../train/trainer.ts";
import { generate } from "../generate/generate.ts";
import { makeTask } from "../tasks/task.ts";
import { configSchema } from "../run/config.ts";
import { loadConfig } from "../util/schema.ts";
import { arithmeticSettings } from "../stages/context.ts";
import { runPrompts } from "../stages/rl_prompts.ts";
import { readAll } from "../tensor/tensor.ts";
import { loadPretrained } from "../model/checkpoint.ts";

/** Whether training question i is written answer-only: an even spread at the given share. */
function answerOnlyAt(i: number, share: number): boolean {
  return Math.floor((i + 1) * share) > Math.floor(i * share);
}

const USAGE = "usage: deno task train-teacher [--out DIR] [--steps N] [--batch N] [--lr X] " +
  "[--hidden N] [--layers N] [--heads N] [--questions N] [--seed N] [--eval-questions N] " +
  "[--save-at N,N] [--answer-only SHARE] [--init DIR] [--config FILE]";

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
      // Gold solutions written answer-only ("#### 14") rather than worked, as LLMs answer
      // with and without reasoning: the teacher's guesses then scatter while its worked
      // answers agree, so its majority beats its single answer.
      "answer-only": { type: "string", default: "0" },
      init: { type: "string", default: "" },
      config: { type: "string" },
    },
  });
  const n = (k: keyof typeof values) => {
    const v = Number(values[k]);
    if (!Number.isFinite(v)) throw new EngineError(`--${k} must be a number`);
    return v;
  };
  // Extra snapshots (--save-at 300,500) to pick a teacher of the wanted strength.
  const steps = n("steps");
  const saveAt = new Set(values["save-at"].split(",").filter(Boolean).map(Number));
  for (const s of saveAt) {
    if (!Number.isInteger(s) || s <= 0 || s >= steps) {
      throw new EngineError(
        `--save-at: each step must be an integer in 1..${steps - 1} (--steps ${steps}), got "${s}"`,
      );
    }
  }
  // The run the teacher is made for: its generator settings, and the questions to keep out.
  const run = await loadConfig(configSchema, values.config ?? null);
  if (run.task.kind !== "arithmetic") {
    throw new EngineError(
      `--config: train-teacher needs task.kind "arithmetic", got "${run.task.kind}"`,
    );
  }
  await initGpu();
  const gen = (seed: number, count: number) =>
    generateArithmetic(arithmeticSettings(run, seed, count));
  const reserved = runPrompts(run);
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
  const model = values.init
    ? (await loadPretrained(values.init)).model
    : CausalLM.init(config, n("seed"));
  const trainer = new Trainer(model, {
    lr: n("lr"),
    totalSteps: steps,
    warmupSteps: 50,
    weightDecay: 0.01,
  });
  const answerOnly = n("answer-only");
  const examples = train.map((q, i) => ({
    prompt: tokenizer.encode(q.prompt),
    completion: [
      ...tokenizer.encode(
        ` ${answerOnlyAt(i, answerOnly) ? `#### ${q.gold}` : q.solution}`,
        { addSpecialTokens: false },
      ),
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
  // Greedy accuracy by answer style, and the majority over samples at the pipeline's
  // temperatures: the teacher the paper needs has a majority that beats its single answer.
  const evaluate = async () => {
    const prompts = held.map((q) => tokenizer.encode(q.prompt));
    const sample = (temperature: number, seed: number) =>
      generate(model, tokenizer, prompts, {
        maxNewTokens: 48,
        temperature,
        seed,
        stopStrings: task.stop,
      });
    const greedy = await sample(0, 0);
    const right = greedy.map((g, i) => task.score(g.text, held[i].gold).strict);
    const worked = greedy.map((g) => answerStyle(g.text) === "worked");
    const share = (xs: boolean[], of: boolean[] = xs.map(() => true)) =>
      xs.filter((x, i) => x && of[i]).length / Math.max(1, of.filter(Boolean).length);
    const votes: (string | null)[][] = held.map(() => []);
    const samples: { i: number; worked: boolean; right: boolean }[] = [];
    for (const [k, t] of [0.6, 0.6, 0.8, 0.8, 0.8, 1, 1, 1].entries()) {
      (await sample(t, 100 + k)).forEach((g, i) => {
        votes[i].push(task.extract(g.text));
        const right = task.score(g.text, held[i].gold).strict;
        samples.push({ i, worked: answerStyle(g.text) === "worked", right });
      });
    }
    const votesOf = votes.map((v) => majority(v));
    const maj = votesOf.map((m, i) => m.label === held[i].gold);
    // What SFT would train on: the samples that match the majority where agreement is at least
    // the run's label.minAgreement. RL can only select a style that survives into them.
    const positive = samples.map((s, j) =>
      votesOf[s.i].agreement >= run.label.minAgreement &&
      votes[s.i][Math.floor(j / held.length)] === votesOf[s.i].label
    );
    return {
      heldout_greedy_accuracy: share(right),
      heldout_maj8_accuracy: share(maj),
      greedy_worked_share: share(worked),
      greedy_worked_accuracy: share(right, worked),
      greedy_answer_only_accuracy: share(right, worked.map((w) => !w)),
      sampled_answer_only_accuracy: share(
        samples.map((s) => s.right),
        samples.map((s) => !s.worked),
      ),
      positives_worked_share: share(samples.map((s) => s.worked), positive),
    };
  };
  const show = (e: Record<string, number>) =>
    Object.entries(e).map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(", ");
  const t0 = performance.now();
  // Chunks of up to 20 steps (one readback each) that end at every --save-at step. The batches
  // do not depend on the chunking.
  for (let step = 0, end = 0; step < steps; step = end) {
    end = Math.min(steps, step + 20, ...[...saveAt].filter((s) => s > step));
    const losses = [];
    for (let k = step; k < end; k++) {
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
      const e = await evaluate();
      console.error(`step ${done}: ${show(e)}`);
      await trainer.save(`${values.out}-${done}`, tokenizer, { ...e, steps: done });
      await Deno.remove(`${values.out}-${done}/optimizer.safetensors`).catch(() => {});
    }
  }
  const e = await evaluate();
  console.error(`${held.length} held-out generated questions: ${show(e)}`);
  await trainer.save(values.out!, tokenizer, {
    ...e,
    steps,
    questions: examples.length,
  });
  await Deno.remove(`${values.out}/optimizer.safetensors`).catch(() => {});
  console.log(`saved ${values.out}`);
}, USAGE);
