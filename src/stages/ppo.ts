/**
 * Stage 6, ppo: the student is optimised against a reward (by default the
 * learned reward model) with the clipped policy loss, a KL penalty to the
 * SFT reference (fixed or adaptive), whitened advantages, and penalties for
 * responses with no final answer or no EOS. Advantages come from a separate
 * value model and GAE (ppo.advantage "gae", TRL's PPOTrainer), or from
 * several responses per prompt, each against the mean of the others
 * ("group", TRL's RLOOTrainer); groups whose responses all score the same
 * carry no signal and are not trained on. Iterations are seeded by their
 * index, so a resumed run repeats the uninterrupted one.
 */
import { EngineError } from "../errors.ts";
import { generate, type Generation } from "../generate/generate.ts";
import { trimPooled } from "../gpu/mod.ts";
import { loadPretrained } from "../model/checkpoint.ts";
import type { CausalLM } from "../model/llama.ts";
import { sameAnswer } from "../tasks/answers.ts";
import { AdaptiveKl } from "../train/ppo_math.ts";
import { ppoUpdate, type PpoUpdateStats, type ScoredRollout } from "../train/ppo_update.ts";
import { drawPrompts, penalisedScores, rolloutBatch } from "../train/rollout.ts";
import { Trainer } from "../train/trainer.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import type { Config } from "../run/config.ts";
import { hash32, rlQuestionIds, rng, type StageContext, type StageSummary } from "./context.ts";
import type { LabelRow } from "../run/rows.ts";
import { readLabels, voteScores } from "./label.ts";
import {
  edgePrompts,
  freshPrompts,
  labelledFreshPrompts,
  passRates,
  promptsInOrder,
} from "./rl_prompts.ts";
import { readStudentRows } from "./student_generate.ts";
import type { Question } from "../tasks/types.ts";
import { latestCheckpoint, modelDir, saveCheckpoint } from "./checkpoints.ts";
import { loadRewardModel, rewardPaid, scoreAll } from "./reward_train.ts";
import { policyEval } from "./ppo_eval.ts";

interface PpoState {
  iteration: number;
  beta: number;
  tokensGenerated: number;
  tokensTrained: number;
  /** Mean per-response KL to the SFT reference at the last iteration. */
  lastKl?: number;
}

interface Rollout extends ScoredRollout {
  seqs: number[][];
  texts: string[];
  lengths: number[];
}

export type RewardSource = "model" | "model-teacher" | "pseudo" | "gold" | "vote";

/** Where a reward source's PPO run lives: the method's in ppo/, the baselines beside it. */
export function ppoDir(reward: RewardSource): string {
  return reward === "model" ? "ppo" : `ppo-${reward}`;
}

/** One PPO run per configured reward source (the method, and any baselines). */
export async function ppoStage(ctx: StageContext): Promise<StageSummary> {
  const start = performance.now();
  const { advantage, samplesPerPrompt } = ctx.cfg.ppo;
  if (advantage === "group" && samplesPerPrompt < 2) {
    throw new EngineError(
      `ppo: advantage "group" compares responses to one prompt; ppo.samplesPerPrompt must be >= 2, got ${samplesPerPrompt}`,
    );
  }
  if (ctx.cfg.ppo.rewards.includes("vote") && samplesPerPrompt < 2) {
    throw new EngineError(
      `ppo: reward "vote" is the majority of a prompt's samples; ppo.samplesPerPrompt must be >= 2, got ${samplesPerPrompt}`,
    );
  }
  const out: StageSummary = { tokensGenerated: 0, tokensTrained: 0 };
  for (const reward of ctx.cfg.ppo.rewards as RewardSource[]) {
    const s = await ppoRun(ctx, reward, ppoDir(reward));
    out.tokensGenerated! += s.tokensGenerated ?? 0;
    out.tokensTrained! += s.tokensTrained ?? 0;
    out[reward] = s;
  }
  out.wallSeconds = (performance.now() - start) / 1000;
  return out;
}

/** The prompts PPO draws from: those at the edge of the SFT student's reach, when asked. */
async function promptPool(ctx: StageContext, prompts: Question[]): Promise<Question[]> {
  const { minPassRate, maxPassRate } = ctx.cfg.ppo;
  if (minPassRate <= 0 && maxPassRate >= 1) return prompts;
  const rates = passRates(await readStudentRows(ctx));
  const pool = edgePrompts(prompts, rates, minPassRate, maxPassRate);
  ctx.log(
    `ppo: ${pool.length} of ${prompts.length} prompts have a student pass rate in [${minPassRate}, ${maxPassRate}]`,
  );
  if (pool.length === 0) {
    throw new EngineError(
      `ppo: no prompt has a student pass rate in [ppo.minPassRate ${minPassRate}, ppo.maxPassRate ${maxPassRate}]; widen them or raise studentGenerate.samples`,
    );
  }
  return pool;
}

/** PPO's prompts, and the pseudo-labels its "pseudo" reward reads for them. */
interface PromptPool {
  pool: Question[];
  labels: Map<string, LabelRow>;
  /** Tokens the teacher generated to label fresh prompts (0 when it labelled none). */
  labelTokens: number;
}

/**
 * PPO's prompt pool: fresh generated questions when ppo.freshPrompts asks (for the pseudo reward,
 * or any with ppo.keptPromptsOnly, the teacher answers them first, and only those with a kept
 * majority are drawn); else the training split's RL share (likewise only with a kept pseudo-label),
 * at the student's edge if asked.
 */
async function rlPrompts(ctx: StageContext, cfg: PpoRunConfig): Promise<PromptPool> {
  const keptOnly = cfg.reward === "pseudo" || cfg.keptPromptsOnly;
  if (cfg.freshPrompts > 0) {
    if (cfg.minPassRate > 0 || cfg.maxPassRate < 1) {
      throw new EngineError(
        `ppo: ppo.minPassRate/maxPassRate filter by the student's samples of training questions; fresh prompts have none, so set them to 0 and 1 with ppo.freshPrompts`,
      );
    }
    if (!keptOnly) {
      return { pool: freshPrompts(ctx, cfg.freshPrompts), labels: new Map(), labelTokens: 0 };
    }
    const { fresh, labels, tokens } = await labelledFreshPrompts(
      ctx,
      cfg.freshPrompts,
      `ppo: ${cfg.reward === "pseudo" ? 'reward "pseudo"' : "ppo.keptPromptsOnly"}`,
    );
    const kept = new Set(labels.filter((l) => l.kept).map((l) => l.id));
    if (kept.size === 0) {
      throw new EngineError(
        `ppo: the teacher's majority reaches label.minAgreement (${ctx.cfg.label.minAgreement}) on none of the ${fresh.length} fresh prompts; lower it or raise ppo.freshPrompts`,
      );
    }
    return {
      pool: fresh.filter((q) => kept.has(q.id)),
      labels: new Map(labels.map((l) => [l.id, l])),
      labelTokens: tokens,
    };
  }
  const labels = await readLabels(ctx);
  const rl = rlQuestionIds(ctx);
  const prompts = rl.size ? ctx.train.filter((q) => rl.has(q.id)) : ctx.train;
  const pool = await promptPool(
    ctx,
    keptOnly ? prompts.filter((q) => labels.get(q.id)?.kept) : prompts,
  );
  return { pool, labels, labelTokens: 0 };
}

/** The models, trainers and state of one PPO run, fresh or resumed. */
interface PpoRunModels {
  policy: CausalLM;
  ref: CausalLM;
  value: CausalLM | null;
  rm: Awaited<ReturnType<typeof loadRewardModel>> | null;
  tokenizer: Tokenizer;
  policyTrainer: Trainer;
  valueTrainer: Trainer | null;
  state: PpoState;
}

type PpoRunConfig = Config["ppo"] & { reward: RewardSource };

async function loadRun(
  ctx: StageContext,
  cfg: PpoRunConfig,
  rel: string,
): Promise<PpoRunModels> {
  const sftDir = await modelDir(ctx, "sft");
  const latest = await latestCheckpoint(ctx, rel);
  const resumeDir = latest ? ctx.run.path(latest.dir) : null;
  const { model: policy, tokenizer } = await loadPretrained(
    resumeDir ? `${resumeDir}/policy` : sftDir,
  );
  const value = cfg.advantage === "group"
    ? null
    : (await loadPretrained(resumeDir ? `${resumeDir}/value` : sftDir, { head: "score" })).model;
  const { model: ref } = await loadPretrained(sftDir);
  const rm = cfg.reward === "model"
    ? await loadRewardModel(ctx, "rm")
    : cfg.reward === "model-teacher"
    ? await loadRewardModel(ctx, "rm-teacher")
    : null;
  const trainer = (model: CausalLM, lr: number) =>
    new Trainer(model, { lr, totalSteps: 1, schedule: "constant", maxGradNorm: cfg.maxGradNorm });
  const policyTrainer = trainer(policy, cfg.lr);
  const valueTrainer = value && trainer(value, cfg.valueLr);
  const state: PpoState = resumeDir
    ? ((await ctx.run.readJson(`${latest!.dir}/state.json`)) as PpoState)
    : { iteration: 0, beta: cfg.klCoef, tokensGenerated: 0, tokensTrained: 0 };
  if (resumeDir) {
    await policyTrainer.resume(`${resumeDir}/policy`);
    await valueTrainer?.resume(`${resumeDir}/value`);
  }
  return { policy, ref, value, rm, tokenizer, policyTrainer, valueTrainer, state };
}

/** Samples this iteration's responses: prompts drawn by the iteration's own stream. */
async function sampleRollout(
  ctx: StageContext,
  m: PpoRunModels,
  cfg: PpoRunConfig,
  pool: Question[],
  it: number,
): Promise<{ qs: Question[]; prompts: number[][]; gens: Generation[] }> {
  const qs = cfg.freshPrompts > 0
    ? promptsInOrder(pool, it, cfg.promptsPerIteration, cfg.samplesPerPrompt)
    : drawPrompts(
      pool,
      cfg.promptsPerIteration,
      cfg.samplesPerPrompt,
      rng(ctx.cfg.seed, 9000 + it),
    );
  const prompts = qs.map((q) => m.tokenizer.encode(q.prompt));
  const gens = await generate(m.policy, m.tokenizer, prompts, {
    maxNewTokens: cfg.maxNewTokens,
    temperature: cfg.temperature,
    seed: hash32(`ppo:${ctx.cfg.seed}:${it}`),
    eosTokenIds: m.tokenizer.eosIds,
    stopStrings: ctx.task.stop,
  });
  return { qs, prompts, gens };
}

/** Each response's reward: the reward model's, or its answer's match with a label; then penalties. */
async function rolloutRewards(
  m: PpoRunModels,
  cfg: PpoRunConfig,
  labels: Map<string, LabelRow>,
  { qs, prompts, gens }: { qs: Question[]; prompts: number[][]; gens: Generation[] },
  seqs: number[][],
  answers: (string | null)[],
): Promise<Float32Array> {
  let scores: Float32Array;
  if (m.rm) {
    scores = (await scoreAll(m.rm.scorer, seqs, prompts.map((p) => p.length), 128))
      .map((s) => rewardPaid(s, cfg.rewardModelOutput));
  } else if (cfg.reward === "vote") {
    scores = voteScores(answers, qs.map((q) => q.id));
  } else {
    scores = Float32Array.from(answers, (answer, b) => {
      const target = cfg.reward === "gold"
        ? qs[b].gold
        : labels.get(qs[b].id)?.pseudo_label ?? null;
      return sameAnswer(answer, target) ? 1 : 0;
    });
  }
  return penalisedScores(
    scores,
    gens.map((g, b) => ({
      hasAnswer: answers[b] !== null,
      endedWithEos: g.finishReason === "eos",
    })),
    { noAnswer: cfg.noAnswerPenalty, noEos: cfg.noEosPenalty },
  );
}

/**
 * The share of responses whose answer is the gold one, or null where the questions carry no gold
 * answer. Monitoring only, never a reward: it shows whether a learned reward's rise is real (on
 * fresh prompts a reward model trained on memorised answers scored 0.85 where this was ~0.18).
 */
export function goldAccuracy(
  answers: readonly (string | null)[],
  qs: readonly Pick<Question, "gold">[],
): number | null {
  if (qs.length === 0 || qs.some((q) => !q.gold)) return null;
  return answers.filter((a, b) => sameAnswer(a, qs[b].gold)).length / answers.length;
}

/** What one iteration logs to metrics.jsonl. */
function iterationMetrics(ro: Rollout, u: PpoUpdateStats, beta: number, gold: number | null) {
  return {
    reward: ro.scores.reduce((a, b) => a + b, 0) / ro.B,
    ...(gold === null ? {} : { gold_accuracy: gold }),
    kl: u.kl,
    entropy: u.entropy,
    clipfrac: u.clipfrac,
    policy_loss: u.policyLoss,
    value_loss: u.valueLoss,
    trained_fraction: u.trainedRows / ro.B,
    response_length: ro.lengths.reduce((a, b) => a + b, 0) / ro.B,
    beta,
  };
}

/** Saves the policy (and value model) and the run's state as checkpoint `step`. */
function checkpoint(ctx: StageContext, rel: string, m: PpoRunModels, state: PpoState) {
  return saveCheckpoint(ctx, rel, state.iteration, async (dir) => {
    await m.policyTrainer.save(`${dir}/policy`, m.tokenizer);
    await m.valueTrainer?.save(`${dir}/value`, m.tokenizer);
    await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify(state));
  });
}

async function ppoRun(ctx: StageContext, reward: RewardSource, rel: string): Promise<StageSummary> {
  // Each arm's wall time counts its interrupted attempts (arm_time.json), as its compute row needs.
  await ctx.run.startArmClock(rel);
  const cfg: PpoRunConfig = { ...ctx.cfg.ppo, reward };
  const resumed = (await latestCheckpoint(ctx, rel)) !== null;
  const m = await loadRun(ctx, cfg, rel);
  const kl = new AdaptiveKl(m.state.beta, cfg.klTarget, cfg.klHorizon);
  const { pool, labels, labelTokens } = await rlPrompts(ctx, cfg);
  const stage = reward === "model" ? "ppo" : `ppo (${reward} reward)`;
  const bar = ctx.progress(stage, cfg.iterations, "iterations");
  bar.tick(m.state.iteration);
  const state: PpoState = { ...m.state, lastKl: m.state.lastKl ?? 0 };

  for (let it = m.state.iteration; it < cfg.iterations; it++) {
    const sampled = await sampleRollout(ctx, m, cfg, pool, it);
    const seqs = sampled.prompts.map((p, b) => [...p, ...sampled.gens[b].ids]);
    const answers = sampled.gens.map((g) => ctx.task.extract(g.text));
    const ro: Rollout = {
      ...rolloutBatch(seqs, sampled.prompts.map((p) => p.length), m.tokenizer.padId ?? 0),
      seqs,
      scores: await rolloutRewards(m, cfg, labels, sampled, seqs, answers),
      texts: sampled.gens.map((g) => g.text),
      lengths: sampled.gens.map((g) => g.ids.length),
    };
    state.tokensGenerated += sampled.gens.reduce((s, g) => s + g.ids.length, 0);
    const u = await ppoUpdate(
      ro,
      m,
      { ...cfg, beta: kl.beta, updatePolicy: it >= cfg.valueWarmupSteps },
      rng(ctx.cfg.seed, 20000 + it),
      { stage, iteration: it },
    );
    state.tokensTrained += u.tokensTrained;
    state.lastKl = u.kl;
    const metrics = iterationMetrics(ro, u, kl.beta, goldAccuracy(answers, sampled.qs));
    ctx.metrics.log(rel, it, metrics);
    if (cfg.klTarget > 0) kl.update(u.kl, ro.B);
    bar.tick(1, { reward: +metrics.reward.toFixed(3), kl: +metrics.kl.toFixed(3) });
    state.iteration = it + 1;
    state.beta = kl.beta;
    // Rollout lengths differ every iteration, and with them the buffers' size classes: without
    // this, 30 iterations of 256 rollouts pooled 17 GB.
    trimPooled();
    if (cfg.evalEvery > 0 && ((it + 1) % cfg.evalEvery === 0 || it + 1 === cfg.iterations)) {
      ctx.metrics.log(rel, it, await policyEval(ctx, m.policy, m.tokenizer));
      trimPooled();
    }
    if ((it + 1) % cfg.checkpointEvery === 0 || it + 1 === cfg.iterations) {
      await checkpoint(ctx, rel, m, state);
    }
  }
  if (cfg.iterations === 0 && !resumed) await checkpoint(ctx, rel, m, state);
  await ctx.metrics.flush();
  bar.done();
  for (const model of [m.policy, m.value, m.ref, m.rm?.model]) model?.destroy();
  m.policyTrainer.destroy();
  m.valueTrainer?.destroy();
  return {
    prompts: pool.length,
    tokensGenerated: state.tokensGenerated + labelTokens,
    tokensTrained: state.tokensTrained,
    finalKl: state.lastKl ?? 0,
    wallSeconds: await ctx.run.stopArmClock(),
  };
}
