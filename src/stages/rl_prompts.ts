/**
 * PPO's prompts at the edge of what the SFT student solves: the share of its
 * student-generate responses that match the pseudo-label (no gold label is
 * read). A prompt the student never or always solves gives every response to
 * it the same reward, so RLOO learns nothing from it (DAPO's dynamic sampling
 * drops such groups online; here they are dropped once, before PPO).
 */
import { EngineError } from "../errors.ts";
import { generateArithmetic, VALIDATION_SEED } from "../tasks/arithmetic.ts";
import type { Question } from "../tasks/types.ts";
import { arithmeticSettings, byId, type StageContext } from "./context.ts";
import type { LabelRow, ResponseRow } from "../run/rows.ts";
import type { Config } from "../run/config.ts";
import { majorityLabels } from "./label.ts";
import { teacherAnswers } from "./teacher_generate.ts";

/** Per question, the share of the student's responses with reward 1. */
export function passRates(rows: ResponseRow[]): Map<string, number> {
  const rates = new Map<string, number>();
  for (const [id, rs] of byId(rows)) {
    rates.set(id, rs.filter((r) => r.reward === 1).length / rs.length);
  }
  return rates;
}

/**
 * The questions whose pass rate lies in [min, max]. A question the student
 * was not sampled on (its pseudo-label was dropped) counts as rate 0.
 */
export function edgePrompts(
  questions: Question[],
  rates: Map<string, number>,
  min: number,
  max: number,
): Question[] {
  return questions.filter((q) => {
    const rate = rates.get(q.id) ?? 0;
    return rate >= min && rate <= max;
  });
}

/**
 * `n` new questions of the generated task (seed task.arithmetic.rlSeed) for PPO: none has the
 * text of a training or held-out question, so RL cannot pay by memorising answers it has seen,
 * and neither SFT, the teacher nor the reward model has seen them. Their ids say where they came
 * from (`rl-…`), so no label of the training split can be read for one by mistake.
 */
export function freshPrompts(
  ctx: Pick<StageContext, "cfg" | "train" | "test">,
  n: number,
): Question[] {
  if (ctx.cfg.task.kind !== "arithmetic") {
    throw new EngineError(
      `ppo.freshPrompts needs a generated task (task.kind "arithmetic"), got "${ctx.cfg.task.kind}"`,
    );
  }
  const seen = new Set([...ctx.train, ...ctx.test].map((q) => q.prompt));
  const seed = ctx.cfg.task.arithmetic.rlSeed;
  // Enough that n are left even if every training and held-out question comes up again.
  const drawn = generateArithmetic(arithmeticSettings(ctx.cfg, seed, n + seen.size));
  const fresh: Question[] = [];
  for (const q of drawn) {
    if (fresh.length === n) break;
    if (!seen.has(q.prompt)) fresh.push(q);
    seen.add(q.prompt);
  }
  if (fresh.length < n) {
    throw new EngineError(
      `ppo.freshPrompts: the task has only ${fresh.length} questions apart from the training and held-out ones; lower ppo.freshPrompts (${n})`,
    );
  }
  return fresh.map((q) => ({ ...q, id: q.id.replace(/^arith-/, "rl-") }));
}

/**
 * `n` fresh prompts with the teacher's answers to them (teacher-rl/, resumable and shared by PPO's
 * arms and GKD) and their majority labels. `who` names the caller in the error line.
 */
export async function labelledFreshPrompts(
  ctx: StageContext,
  n: number,
  who: string,
): Promise<{ fresh: Question[]; rows: ResponseRow[]; labels: LabelRow[]; tokens: number }> {
  const { mode, minAgreement, voters } = ctx.cfg.label;
  if (mode !== "majority") {
    throw new EngineError(
      `${who} on ppo.freshPrompts labels them by the teacher's majority; label.mode "${mode}" is not supported there`,
    );
  }
  const fresh = freshPrompts(ctx, n);
  const { rows, tokens } = await teacherAnswers(
    ctx,
    fresh,
    "teacher-rl",
    "teacher-generate (fresh RL prompts)",
  );
  return { fresh, rows, labels: majorityLabels(byId(rows), minAgreement, voters), tokens };
}

/**
 * The text of every generated question a run can meet: training, held-out, validation (seed
 * VALIDATION_SEED) and PPO's fresh prompts. A teacher made for the run trains on none of them, as
 * a pretrained LLM has not seen the benchmark.
 */
export function runPrompts(cfg: Config): Set<string> {
  const a = cfg.task.arithmetic;
  const gen = (seed: number, count: number) =>
    generateArithmetic(arithmeticSettings(cfg, seed, count));
  const train = gen(a.trainSeed, a.trainCount);
  const test = gen(a.testSeed, a.testCount);
  const fresh = cfg.ppo.freshPrompts > 0
    ? freshPrompts({ cfg, train, test }, cfg.ppo.freshPrompts)
    : [];
  return new Set(
    [...train, ...test, ...gen(VALIDATION_SEED, a.testCount), ...fresh].map((q) => q.prompt),
  );
}

/** Iteration `it`'s prompts from a fresh pool, in order: none repeats until the pool runs out. */
export function promptsInOrder<Q>(
  pool: Q[],
  it: number,
  perIteration: number,
  samples: number,
): Q[] {
  return Array.from({ length: perIteration }, (_, i) => pool[(it * perIteration + i) % pool.length])
    .flatMap((q) => Array<Q>(samples).fill(q));
}
