/**
 * What eval and PPO's test-split curve (`ppo.evalEvery`) share: which test questions are scored,
 * how they are sampled, and how a greedy answer per question becomes per-question scores, so that
 * the curve's last point is eval's PPO row.
 */
import type { Question } from "../tasks/types.ts";
import type { StageContext } from "./context.ts";
import type { SamplerOptions } from "./sampler.ts";

/** Per-question correctness, by metric name. */
export type Scores = Record<string, boolean[]>;

/** Questions per sampling unit: eval's resumable unit, and the curve's batches. */
export const EVAL_UNIT = 128;

/** The test questions eval scores (`eval.questions` of them, or all). */
export function evalQuestions(ctx: StageContext): Question[] {
  const n = ctx.cfg.eval.questions;
  return n ? ctx.test.slice(0, n) : ctx.test;
}

export function evalSamplerOptions(ctx: StageContext): SamplerOptions {
  const cfg = ctx.cfg.eval;
  return {
    maxNewTokens: cfg.maxNewTokens,
    topP: cfg.topP,
    batchSize: cfg.batchSize,
    stop: ctx.task.stop,
  };
}

/** The task's scores of one answer per question (`texts[i]` answers `qs[i]`). */
export function scoreTexts(ctx: StageContext, qs: Question[], texts: string[]): Scores {
  const out: Scores = {};
  qs.forEach((q, i) => {
    for (const [k, v] of Object.entries(ctx.task.score(texts[i], q.gold))) {
      (out[k] ??= new Array(qs.length).fill(false))[i] = v;
    }
  });
  return out;
}

/** The share right of each score. */
export const accuracy = (s: Scores): Record<string, number> =>
  Object.fromEntries(
    Object.entries(s).map(([k, v]) => [k, v.filter(Boolean).length / Math.max(v.length, 1)]),
  );
