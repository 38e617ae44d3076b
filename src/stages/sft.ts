/**
 * Stage 3, sft: the student learns the pseudo-positive teacher responses
 * (prompt tokens masked), with checkpoints that resume exactly.
 */
import { EngineError } from "../errors.ts";
import { readAll, type Tensor } from "../tensor/tensor.ts";
import { type ModelConfig, smallConfig } from "../model/config.ts";
import type { Config } from "../run/config.ts";
import { CausalLM } from "../model/llama.ts";
import { loadPretrained } from "../model/checkpoint.ts";
import {
  charTokenizerFiles,
  loadTokenizer,
  type Tokenizer,
  tokenizerFromFiles,
} from "../model/tokenizer.ts";
import { type Example, lmBatch } from "../train/batch.ts";
import { lmLoss } from "../train/lm_loss.ts";
import { Trainer } from "../train/trainer.ts";
import { ARITHMETIC_CHARS } from "../tasks/arithmetic.ts";
import { rlQuestionIds, rng, type StageContext, type StageSummary } from "./context.ts";
import { isPositive, readLabels, teacherRows } from "./label.ts";
import { latestCheckpoint, saveCheckpoint } from "./checkpoints.ts";

/** The student's tokenizer: its init checkpoint's, else the local teacher's, else characters. */
export async function studentTokenizer(
  ctx: Pick<StageContext, "cfg" | "task">,
): Promise<Tokenizer> {
  const s = ctx.cfg.student;
  // (loadTokenizer, not loadPretrained: the weights are not needed here.)
  if (s.init) return await loadTokenizer(s.init);
  const src = ctx.cfg.teacher.source;
  if (src.kind === "local") return await loadTokenizer(src.model);
  const chars = ctx.task.kind === "arithmetic"
    ? ARITHMETIC_CHARS
    : Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join("") + "\n";
  return tokenizerFromFiles(charTokenizerFiles(chars));
}

/** A new student's shape from the config (no init checkpoint). */
export function studentConfig(cfg: Config, tokenizer: Tokenizer): ModelConfig {
  const s = cfg.student;
  return smallConfig({
    vocabSize: tokenizer.vocabSize,
    hiddenSize: s.hiddenSize,
    numLayers: s.numLayers,
    numHeads: s.numHeads,
    numKvHeads: s.numKvHeads || undefined,
    intermediateSize: s.intermediateSize || undefined,
    maxPositionEmbeddings: Math.max(512, cfg.sft.maxLen + 64),
    bosTokenId: tokenizer.bosId,
    eosTokenIds: tokenizer.eosIds,
    padTokenId: tokenizer.padId,
  });
}

/** A new student from the config, or its init checkpoint. */
export async function newStudent(ctx: StageContext, tokenizer: Tokenizer): Promise<CausalLM> {
  const s = ctx.cfg.student;
  if (s.init) return (await loadPretrained(s.init)).model;
  return CausalLM.init(studentConfig(ctx.cfg, tokenizer), s.initSeed);
}

/** Prompt + response token pairs, the response ending in EOS. */
export function toExample(tokenizer: Tokenizer, prompt: string, text: string): Example {
  return {
    prompt: tokenizer.encode(prompt),
    completion: [...tokenizer.encode(text, { addSpecialTokens: false }), tokenizer.eosIds[0]],
  };
}

/**
 * Runs `steps` optimizer steps of `trainer` from `from`, drawing each batch
 * with rng(seed, step) so that a resumed run draws the same batches;
 * checkpoints every `every` steps and at the end.
 */
export async function trainLoop(
  ctx: StageContext,
  opts: {
    stage: string;
    rel: string;
    trainer: Trainer;
    from: number;
    steps: number;
    every: number;
    /** One optimizer step's loss (async where the step samples first, as GKD's do). */
    step: (s: number) => Tensor | Promise<Tensor>;
    save: (dir: string, step: number) => Promise<void>;
    extra?: (s: number) => Record<string, number>;
  },
): Promise<number> {
  const bar = ctx.progress(opts.stage, opts.steps, "steps");
  bar.tick(opts.from);
  let pending: { step: number; loss: Tensor }[] = [];
  const drain = async () => {
    const values = await readAll(pending.map((p) => p.loss));
    const losses = values.map((v) => v[0]);
    Trainer.checkFinite(opts.stage, pending[0]?.step ?? 0, losses);
    pending.forEach((p, i) => {
      ctx.metrics.log(opts.stage, p.step, { loss: losses[i], ...opts.extra?.(p.step) });
      p.loss.destroy();
    });
    if (losses.length) bar.tick(pending.length, { loss: +losses[losses.length - 1].toFixed(4) });
    pending = [];
  };
  for (let s = opts.from; s < opts.steps; s++) {
    pending.push({ step: s, loss: await opts.step(s) });
    if (pending.length === 10) await drain();
    if ((s + 1) % opts.every === 0 || s + 1 === opts.steps) {
      await drain();
      await saveCheckpoint(ctx, opts.rel, s + 1, (dir) => opts.save(dir, s + 1));
    }
  }
  await drain();
  await ctx.metrics.flush();
  bar.done();
  return opts.steps;
}

/** What one supervised run trains: on which examples, from which model, under which settings. */
export interface SftRun {
  stage: string;
  /** Checkpoint folder in the run. */
  rel: string;
  examples: Example[];
  tokenizer: Tokenizer;
  /** The model to start from when there is no checkpoint to resume. */
  start: () => Promise<CausalLM>;
  cfg: Config["sft"];
  /** Overrides cfg.steps (e.g. a step count worked out from a token budget). */
  steps?: number;
  /** Offsets the batch stream, so that two runs on one seed draw different batches. */
  stream?: number;
}

/** The batch of step `s`: drawn with rng(seed, stream + s), so a resumed run draws the same. */
export function sftBatch(ctx: StageContext, run: SftRun, s: number) {
  const r = rng(ctx.cfg.seed, (run.stream ?? 1000) + s);
  const ex = run.examples;
  return lmBatch(
    Array.from({ length: run.cfg.batchSize }, () => ex[Math.floor(r() * ex.length)]),
    run.cfg.maxLen,
    run.tokenizer.padId ?? 0,
  );
}

/** Trains (or resumes) one supervised run to its last step; returns its stage summary. */
export async function sftTrain(ctx: StageContext, run: SftRun): Promise<StageSummary> {
  await ctx.run.startArmClock(run.rel);
  const cfg = run.cfg;
  const steps = run.steps ?? cfg.steps;
  const latest = await latestCheckpoint(ctx, run.rel);
  const model = latest ? (await loadPretrained(ctx.run.path(latest.dir))).model : await run.start();
  const trainer = new Trainer(model, {
    lr: cfg.lr,
    totalSteps: steps,
    warmupSteps: cfg.warmupSteps,
    schedule: cfg.schedule,
    weightDecay: cfg.weightDecay,
    maxGradNorm: cfg.maxGradNorm,
  });
  if (latest) await trainer.resume(ctx.run.path(latest.dir));
  let tokens = 0;
  // Steps done before a resume count too: their batches are known from the seed.
  for (let s = 0; s < (latest?.step ?? 0); s++) {
    const b = sftBatch(ctx, run, s);
    tokens += b.B * b.T;
  }
  await trainLoop(ctx, {
    stage: run.stage,
    rel: run.rel,
    trainer,
    from: latest?.step ?? 0,
    steps,
    every: cfg.checkpointEvery,
    step: (s) => {
      const batch = sftBatch(ctx, run, s);
      tokens += batch.B * batch.T;
      return trainer.trainStep([() => lmLoss(model, batch)]);
    },
    save: (dir) => trainer.save(dir, run.tokenizer),
    extra: () => ({ lr: trainer.currentLr() }),
  });
  if (steps === 0) {
    await saveCheckpoint(ctx, run.rel, 0, (dir) => trainer.save(dir, run.tokenizer));
  }
  trainer.destroy();
  model.destroy();
  return {
    examples: run.examples.length,
    parameters: model.numParameters(),
    tokensTrained: tokens,
    wallSeconds: await ctx.run.stopArmClock(),
  };
}

/** The pseudo-positive teacher responses to the questions SFT may see (not PPO's). */
export async function sftExamples(ctx: StageContext, tokenizer: Tokenizer): Promise<Example[]> {
  const labels = await readLabels(ctx);
  const rl = rlQuestionIds(ctx);
  return (await teacherRows(ctx))
    .filter((r) => !rl.has(r.id) && isPositive(labels.get(r.id), r))
    .map((r) => toExample(tokenizer, r.prompt, r.text));
}

export async function sftStage(ctx: StageContext): Promise<StageSummary> {
  const tokenizer = await studentTokenizer(ctx);
  const examples = await sftExamples(ctx, tokenizer);
  if (examples.length === 0) {
    throw new EngineError("sft: no pseudo-positive teacher responses to learn from");
  }
  return await sftTrain(ctx, {
    stage: "sft",
    rel: "sft",
    examples,
    tokenizer,
    start: () => newStudent(ctx, tokenizer),
    cfg: ctx.cfg.sft,
  });
}
