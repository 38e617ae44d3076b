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
import { generate } from "../generate/generate.ts";
import { loadPretrained } from "../model/checkpoint.ts";
import type { CausalLM } from "../model/llama.ts";
import { sameAnswer } from "../tasks/answers.ts";
import { AdaptiveKl } from "../train/ppo_math.ts";
import { ppoUpdate, type ScoredRollout } from "../train/ppo_update.ts";
import { Trainer } from "../train/trainer.ts";
import { padLength } from "../train/batch.ts";
import { hash32, rlQuestionIds, rng, type StageContext, type StageSummary } from "./context.ts";
import { readLabels } from "./label.ts";
import { edgePrompts, passRates } from "./rl_prompts.ts";
import { readStudentRows } from "./student_generate.ts";
import type { Question } from "../tasks/task.ts";
import { latestCheckpoint, modelDir, saveCheckpoint } from "./checkpoints.ts";
import { loadRewardModel, scoreAll } from "./reward_train.ts";

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

export type RewardSource = "model" | "pseudo" | "gold";

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

async function ppoRun(ctx: StageContext, reward: RewardSource, rel: string): Promise<StageSummary> {
  const start = performance.now();
  const cfg = { ...ctx.cfg.ppo, reward };
  const labels = await readLabels(ctx);
  const sftDir = await modelDir(ctx, "sft");
  const latest = await latestCheckpoint(ctx, rel);
  const resumeDir = latest ? ctx.run.path(latest.dir) : null;

  const { model: policy, tokenizer } = await loadPretrained(
    resumeDir ? `${resumeDir}/policy` : sftDir,
  );
  const group = cfg.advantage === "group";
  const value = group
    ? null
    : (await loadPretrained(resumeDir ? `${resumeDir}/value` : sftDir, { head: "score" })).model;
  const { model: ref } = await loadPretrained(sftDir);
  const rm = cfg.reward === "model" ? await loadRewardModel(ctx) : null;
  const policyTrainer = new Trainer(policy, {
    lr: cfg.lr,
    totalSteps: 1,
    schedule: "constant",
    maxGradNorm: cfg.maxGradNorm,
  });
  const valueTrainer = value &&
    new Trainer(value, {
      lr: cfg.valueLr,
      totalSteps: 1,
      schedule: "constant",
      maxGradNorm: cfg.maxGradNorm,
    });
  const state: PpoState = resumeDir
    ? ((await ctx.run.readJson(`${latest!.dir}/state.json`)) as PpoState)
    : { iteration: 0, beta: cfg.klCoef, tokensGenerated: 0, tokensTrained: 0 };
  if (resumeDir) {
    await policyTrainer.resume(`${resumeDir}/policy`);
    await valueTrainer?.resume(`${resumeDir}/value`);
  }
  const saveModels = async (dir: string) => {
    await policyTrainer.save(`${dir}/policy`, tokenizer);
    await valueTrainer?.save(`${dir}/value`, tokenizer);
  };
  const kl = new AdaptiveKl(state.beta, cfg.klTarget, cfg.klHorizon);
  const rl = rlQuestionIds(ctx);
  const prompts = rl.size ? ctx.train.filter((q) => rl.has(q.id)) : ctx.train;
  const pool = await promptPool(
    ctx,
    cfg.reward === "pseudo" ? prompts.filter((q) => labels.get(q.id)?.kept) : prompts,
  );
  const pad = tokenizer.padId ?? 0;
  const eos = tokenizer.eosIds;
  const stage = reward === "model" ? "ppo" : `ppo (${reward} reward)`;
  const bar = ctx.progress(stage, cfg.iterations, "iterations");
  bar.tick(state.iteration);
  let lastKl = state.lastKl ?? 0;
  let tokensGenerated = state.tokensGenerated;
  let tokensTrained = state.tokensTrained;
  const saveState = (dir: string, iteration: number) =>
    Deno.writeTextFile(
      `${dir}/state.json`,
      JSON.stringify(
        { iteration, beta: kl.beta, tokensGenerated, tokensTrained, lastKl } satisfies PpoState,
      ),
    );

  const rollout = async (it: number): Promise<Rollout> => {
    const r = rng(ctx.cfg.seed, 9000 + it);
    const qs = Array.from(
      { length: cfg.promptsPerIteration },
      () => pool[Math.floor(r() * pool.length)],
    ).flatMap((q) => Array(cfg.samplesPerPrompt).fill(q));
    const prompts = qs.map((q) => tokenizer.encode(q.prompt));
    const gens = await generate(policy, tokenizer, prompts, {
      maxNewTokens: cfg.maxNewTokens,
      temperature: cfg.temperature,
      seed: hash32(`ppo:${ctx.cfg.seed}:${it}`),
      eosTokenIds: eos,
      stopStrings: ctx.task.stop,
    });
    const seqs = prompts.map((p, b) => [...p, ...gens[b].ids]);
    const B = seqs.length;
    // +1: position j scores token j+1, so T-1 (the scored width) is the padded length.
    const T = padLength(Math.max(...seqs.map((s) => s.length)) - 1) + 1;
    const ids = new Int32Array(B * T).fill(pad);
    const mask = new Float32Array(B * (T - 1));
    seqs.forEach((s, b) => {
      ids.set(s, b * T);
      for (let j = prompts[b].length - 1; j < s.length - 1; j++) mask[b * (T - 1) + j] = 1;
    });
    let scores: Float32Array;
    if (rm) {
      scores = await scoreAll(rm.scorer, seqs, prompts.map((p) => p.length), 128);
      // On the gold reward's 0-1 scale, a KL coefficient means the same for every reward source.
      if (cfg.rewardModelOutput === "probability") {
        scores = scores.map((s) => 1 / (1 + Math.exp(-s)));
      }
    } else {
      scores = Float32Array.from(gens, (g, b) => {
        const answer = ctx.task.extract(g.text);
        const target = cfg.reward === "gold"
          ? qs[b].gold
          : labels.get(qs[b].id)?.pseudo_label ?? null;
        return sameAnswer(answer, target) ? 1 : 0;
      });
    }
    gens.forEach((g, b) => {
      if (ctx.task.extract(g.text) === null) scores[b] -= cfg.noAnswerPenalty;
      if (g.finishReason !== "eos") scores[b] -= cfg.noEosPenalty;
    });
    tokensGenerated += gens.reduce((s, g) => s + g.ids.length, 0);
    return {
      B,
      T,
      ids,
      mask,
      seqs,
      scores,
      texts: gens.map((g) => g.text),
      lengths: gens.map((g) => g.ids.length),
    };
  };

  for (let it = state.iteration; it < cfg.iterations; it++) {
    const ro = await rollout(it);
    const u = await ppoUpdate(
      ro,
      { policy, ref, policyTrainer, valueTrainer },
      {
        ...cfg,
        beta: kl.beta,
        updatePolicy: it >= cfg.valueWarmupSteps,
      },
      rng(ctx.cfg.seed, 20000 + it),
      { stage, iteration: it },
    );
    tokensTrained += u.tokensTrained;
    lastKl = u.kl;
    const metrics = {
      reward: ro.scores.reduce((a, b) => a + b, 0) / ro.B,
      kl: u.kl,
      entropy: u.entropy,
      clipfrac: u.clipfrac,
      policy_loss: u.policyLoss,
      value_loss: u.valueLoss,
      trained_fraction: u.trainedRows / ro.B,
      response_length: ro.lengths.reduce((a, b) => a + b, 0) / ro.B,
      beta: kl.beta,
    };
    ctx.metrics.log(rel, it, metrics);
    if (cfg.klTarget > 0) kl.update(u.kl, ro.B);
    bar.tick(1, { reward: +metrics.reward.toFixed(3), kl: +metrics.kl.toFixed(3) });
    if ((it + 1) % cfg.checkpointEvery === 0 || it + 1 === cfg.iterations) {
      await saveCheckpoint(ctx, rel, it + 1, async (dir) => {
        await saveModels(dir);
        await saveState(dir, it + 1);
      });
    }
  }
  if (cfg.iterations === 0 && !latest) {
    await saveCheckpoint(ctx, rel, 0, async (dir) => {
      await saveModels(dir);
      await saveState(dir, 0);
    });
  }
  await ctx.metrics.flush();
  bar.done();
  for (const m of [policy, value, ref, rm?.model] as (CausalLM | null | undefined)[]) m?.destroy();
  policyTrainer.destroy();
  valueTrainer?.destroy();
  return {
    tokensGenerated,
    tokensTrained,
    finalKl: lastKl,
    wallSeconds: (performance.now() - start) / 1000,
  };
}
