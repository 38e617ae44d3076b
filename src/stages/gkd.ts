/**
 * A baseline beside PPO, gkd: on-policy distillation (GKD, Agarwal et al. 2024; TRL's
 * GKDTrainer) from the SFT student. Each step draws teacher-positive responses to PPO's prompts;
 * with probability `lmbda` the student answers those prompts itself instead (on-policy). The
 * teacher's weights (teacherWeights: a local teacher, or teacher.checkpoint beside an endpoint)
 * score every token of the batch, and the student follows the generalised JSD between the two
 * (`beta`). Skipped when gkd.steps is 0.
 */
import { trimPooled } from "../gpu/mod.ts";
import { EngineError } from "../errors.ts";
import { noGrad } from "../autograd/tape.ts";
import { generate } from "../generate/generate.ts";
import { loadPretrained } from "../model/checkpoint.ts";
import { sameTokenizer } from "../model/tokenizer.ts";
import * as E from "../tensor/api.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { type Example, lmBatch } from "../train/batch.ts";
import { gkdLoss } from "../train/gkd_loss.ts";
import { Trainer } from "../train/trainer.ts";
import { latestCheckpoint, modelDir } from "./checkpoints.ts";
import {
  hash32,
  rlQuestionIds,
  rng,
  type StageContext,
  type StageSummary,
  teacherWeights,
} from "./context.ts";
import { isPositive, readLabels, teacherRows } from "./label.ts";
import { labelledFreshPrompts } from "./rl_prompts.ts";
import type { ResponseRow } from "../run/rows.ts";
import { toExample, trainLoop } from "./sft.ts";

/**
 * The off-policy share of GKD's batches: the teacher's positive responses to PPO's prompts, so that
 * GKD and PPO see the same prompts. With ppo.freshPrompts those are the teacher's answers to the
 * fresh prompts (teacher-rl/, shared with PPO's pseudo arm) that agree with their kept majority;
 * else its responses to the training split's RL share.
 */
export async function gkdResponses(
  ctx: StageContext,
): Promise<{ rows: ResponseRow[]; tokens: number }> {
  const { freshPrompts: n } = ctx.cfg.ppo;
  if (n > 0) {
    const { rows, labels, tokens } = await labelledFreshPrompts(ctx, n, "gkd: GKD");
    const byQuestion = new Map(labels.map((l) => [l.id, l]));
    const positive = rows.filter((r) => isPositive(byQuestion.get(r.id), r));
    if (positive.length === 0) {
      throw new EngineError(
        `gkd: no teacher response to the ${n} fresh prompts (ppo.freshPrompts) agrees with a kept majority; lower label.minAgreement`,
      );
    }
    return { rows: positive, tokens };
  }
  const labels = await readLabels(ctx);
  const pool = rlQuestionIds(ctx);
  const positive = (await teacherRows(ctx))
    .filter((r) => pool.has(r.id) && isPositive(labels.get(r.id), r));
  if (positive.length === 0) {
    throw new EngineError("gkd: no teacher-positive responses to PPO's prompts");
  }
  return { rows: positive, tokens: 0 };
}

export async function gkdStage(ctx: StageContext): Promise<StageSummary> {
  const start = performance.now();
  const cfg = ctx.cfg.gkd;
  if (cfg.steps === 0) return { steps: 0, tokensGenerated: 0, tokensTrained: 0, wallSeconds: 0 };
  const teacherDir = teacherWeights(ctx.cfg, "gkd.steps");
  const sft = await modelDir(ctx, "sft");
  const latest = await latestCheckpoint(ctx, "gkd");
  const { model: student, tokenizer } = await loadPretrained(
    latest ? ctx.run.path(latest.dir) : sft,
  );
  const { model: teacher, tokenizer: teacherTokenizer } = await loadPretrained(teacherDir);
  if (!sameTokenizer(teacherTokenizer, tokenizer)) {
    throw new EngineError(
      `gkd: the teacher ${teacherDir} has a different tokenizer from the student ` +
        `(vocab ${teacherTokenizer.vocabSize} against ${tokenizer.vocabSize}); it scores the student's token ids`,
    );
  }
  const { rows, tokens: labelTokens } = await gkdResponses(ctx);
  const data = rows.map((r) => ({
    prompt: r.prompt,
    example: toExample(tokenizer, r.prompt, r.text),
  }));

  const trainer = new Trainer(student, {
    lr: cfg.lr,
    totalSteps: cfg.steps,
    schedule: "constant",
    maxGradNorm: 1,
  });
  if (latest) await trainer.resume(ctx.run.path(latest.dir));
  const pad = tokenizer.padId ?? 0;
  let tokensGenerated = 0;
  let tokensTrained = 0;
  const onPolicy = new Set<number>();
  await trainLoop(ctx, {
    stage: "gkd",
    rel: "gkd",
    trainer,
    from: latest?.step ?? 0,
    steps: cfg.steps,
    every: cfg.checkpointEvery,
    step: async (s) => {
      const r = rng(ctx.cfg.seed, 5000 + s);
      const drawn = Array.from(
        { length: cfg.batchSize },
        () => data[Math.floor(r() * data.length)],
      );
      let examples: Example[] = drawn.map((d) => d.example);
      // Generated lengths change every step, and with them the pooled buffers' size classes.
      trimPooled();
      if (r() < cfg.lmbda) {
        onPolicy.add(s);
        const gens = await generate(student, tokenizer, examples.map((e) => e.prompt), {
          maxNewTokens: cfg.maxNewTokens,
          temperature: cfg.temperature,
          seed: hash32(`gkd:${ctx.cfg.seed}:${s}`),
          eosTokenIds: tokenizer.eosIds,
          stopStrings: ctx.task.stop,
        });
        examples = examples.map((e, b) => ({ prompt: e.prompt, completion: gens[b].ids }))
          .filter((e) => e.completion.length > 0);
        tokensGenerated += gens.reduce((a, g) => a + g.ids.length, 0);
      }
      const batch = lmBatch(examples, cfg.maxLen, pad);
      tokensTrained += batch.B * batch.T;
      return trainer.trainStep([() => {
        const ids = E.tensor(batch.ids, [batch.B, batch.T]);
        const mask = E.tensor(Float32Array.from(batch.labels, (l) => (l === -100 ? 0 : 1)), [
          batch.B * batch.T,
        ]);
        const flat = (logits: Tensor) => E.reshape(logits, [batch.B * batch.T, -1]);
        const t = noGrad(() => flat(teacher.logits(teacher.forward(ids))));
        const own = flat(student.logits(student.forward(ids)));
        return gkdLoss(own, t, mask, cfg.beta, cfg.temperature);
      }]);
    },
    save: (dir) => trainer.save(dir, tokenizer),
    extra: (s) => ({ on_policy: onPolicy.has(s) ? 1 : 0 }),
  });
  trainer.destroy();
  student.destroy();
  teacher.destroy();
  return {
    steps: cfg.steps,
    tokensGenerated: tokensGenerated + labelTokens,
    tokensTrained,
    wallSeconds: (performance.now() - start) / 1000,
  };
}
