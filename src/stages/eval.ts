/**
 * Stage 7, eval: accuracy on held-out questions, the only place gold labels
 * are read. Teacher pass@1 (greedy) and maj@K, the SFT student and the PPO
 * student (greedy, and pass@k if asked); plus the pseudo-labels' accuracy on
 * the training questions and the reward model's held-out accuracy against
 * gold correctness.
 */
import { sameAnswer } from "../tasks/answers.ts";
import type { Question } from "../tasks/types.ts";
import { byId, type StageContext, type StageSummary } from "./context.ts";
import type { LabelRow, ResponseRow } from "../run/rows.ts";
import { majority, majorityLabels, readLabels } from "./label.ts";
import { generateResponses } from "./responses.ts";
import type { Sampler } from "./sampler.ts";
import { latestCheckpoint, modelDir } from "./checkpoints.ts";
import { openSource } from "./teacher_generate.ts";
import { ppoDir, type RewardSource } from "./ppo.ts";
import {
  classifierMetrics,
  loadRewardModel,
  rewardPaid,
  scoreAll,
  sequenceOf,
  withinQuestionAuc,
} from "./reward_train.ts";
import { answerStyle, equations } from "../tasks/arithmetic.ts";
import { openStudent, readStudentRows } from "./student_generate.ts";
import { freshPrompts } from "./rl_prompts.ts";
import { JsonlShards } from "../run/run_dir.ts";
import { type BestOfCost, type Compute, methodCompute } from "./compute.ts";
import {
  accuracy,
  EVAL_UNIT,
  evalQuestions,
  evalSamplerOptions,
  type Scores,
  scoreTexts,
} from "./eval_scores.ts";

/** A reward model's held-out scores against gold correctness. */
export interface RewardModelMetrics {
  accuracy: number;
  auc: number;
  aucWithinQuestion: number;
  /**
   * The same within one style (pairs of worked answers to a question, and of answer-only ones):
   * whether it tells right from wrong, or only worked from answer-only. Absent for held-out
   * scores written before styles were recorded.
   */
  aucWithinQuestionByStyle?: { worked: number; answerOnly: number };
  /**
   * The mean reward PPO is paid (`ppo.rewardModelOutput`) for right and wrong answers of each
   * style: a reward model can rank one question's answers well and still pay a wrong guess more
   * than a wrong worked answer, which PPO then buys.
   */
  paidByStyle?: PaidByStyle;
  n: number;
}

type PaidByStyle = Record<"worked" | "answerOnly", { right: number; wrong: number }>;

/** The mean of `paid` over the right and over the wrong items of each style. */
function paidByStyle<T>(
  items: T[],
  style: (t: T) => string,
  right: (t: T) => boolean,
  paid: (t: T) => number,
): PaidByStyle {
  const mean = (st: string, r: boolean) => {
    const some = items.filter((t) => style(t) === st && right(t) === r);
    return some.reduce((a, t) => a + paid(t), 0) / some.length;
  };
  const both = (st: string) => ({ right: mean(st, true), wrong: mean(st, false) });
  return { worked: both("worked"), answerOnly: both("answer-only") };
}

export interface EvalResult {
  questions: number;
  /** Metric name -> accuracy, per row of the table. */
  rows: Record<string, Record<string, number>>;
  /** Per-question correctness, for paired comparisons across runs. */
  perQuestion: Record<string, Record<string, boolean[]>>;
  pseudoLabels: LabelAccuracy & {
    /**
     * What the pseudo-label match pays the SFT student's own samples of the training questions
     * (student-generate), for right and wrong answers of each style: a student that learned the
     * teacher's guesses repeats its wrong majorities, which the match then pays.
     */
    paidByStyle?: PaidByStyle;
    /** The same on PPO's fresh prompts, as the pseudo reward labelled them (label.voters). */
    fresh?: LabelAccuracy;
  };
  /** Held-out, against gold; aucWithinQuestion: pairs of answers to the same question only. */
  rewardModel: RewardModelMetrics | null;
  /** The same for the ablation's reward model on teacher responses only, when it ran. */
  rewardModelTeacherOnly?: RewardModelMetrics | null;
  /** Mean per-response KL of each PPO student to the SFT reference, at its last iteration. */
  finalKl: Record<string, number>;
  /** Share of each greedy row's answers that work a calculation before the final answer. */
  workedShare: Record<string, number>;
  /** Per question, whether each greedy row's answer is worked (a run from before it was kept: absent). */
  perQuestionWorked?: Record<string, boolean[]>;
  /** Share of the calculations in each greedy row's answers that are right (none written, or a run from before it was counted: absent). */
  equationAccuracy?: Record<string, number>;
  /** Parameter counts (teacher: null when it is served over HTTP). */
  params: { teacher: number | null; student: number };
  tokensGenerated: number;
  /** Each method row's compute beyond the SFT student (compute.ts). */
  compute: Record<string, Compute>;
}

/** The index of the highest of the first `n` scores (the first on ties; -1 when there are none). */
export function bestOf(scores: number[], n: number): number {
  let best = -1;
  for (let i = 0; i < Math.min(n, scores.length); i++) {
    if (best < 0 || scores[i] > scores[best]) best = i;
  }
  return best;
}

/** Table rows of the PPO students, by reward source. */
export const PPO_ROWS: Record<RewardSource, string> = {
  model: "PPO student",
  "model-teacher": "PPO student (reward model on teacher responses)",
  pseudo: "PPO student (pseudo-label reward)",
  gold: "PPO student (gold reward)",
  vote: "PPO student (online majority reward)",
};

function greedyScores(ctx: StageContext, qs: Question[], rows: ResponseRow[]): Scores {
  const groups = byId(rows);
  return scoreTexts(ctx, qs, qs.map((q) => groups.get(q.id)?.[0]?.text ?? ""));
}

/** The summaries of the stages a method row may have needed. */
async function stageSummaries(ctx: StageContext) {
  const out: Record<string, Record<string, unknown> | null> = {};
  for (const stage of ["student-generate", "reward-train", "ppo", "gkd", "sft-baselines"]) {
    out[stage] = (await ctx.run.stageDone(stage)) as Record<string, unknown> | null;
  }
  return out;
}

export async function evalStage(ctx: StageContext): Promise<StageSummary & EvalResult> {
  const start = performance.now();
  const cfg = ctx.cfg.eval;
  const qs = evalQuestions(ctx);
  const opts = evalSamplerOptions(ctx);
  let tokens = 0;
  const rows: EvalResult["rows"] = {};
  const perQuestion: EvalResult["perQuestion"] = {};
  const run = async (
    name: string,
    sampler: Sampler,
    draws: { temperature: number; n: number }[],
  ) => {
    const out = await generateResponses(ctx, {
      stage: `eval ${name}`,
      rel: `eval/${name}`,
      sampler,
      questions: qs,
      draws,
      questionsPerUnit: EVAL_UNIT,
      seed: ctx.cfg.seed,
    });
    tokens += out.tokens;
    return out.rows;
  };
  const record = (name: string, s: Scores) => {
    rows[name] = accuracy(s);
    perQuestion[name] = s;
  };
  const workedShare: Record<string, number> = {};
  const perQuestionWorked: Record<string, boolean[]> = {};
  const equationAccuracy: Record<string, number> = {};
  const greedy = async (name: string, slug: string, sampler: Sampler) => {
    const out = await run(`${slug}-greedy`, sampler, [{ temperature: 0, n: 1 }]);
    const groups = byId(out);
    const worked = qs.map((q) => answerStyle(groups.get(q.id)?.[0]?.text ?? "") === "worked");
    perQuestionWorked[name] = worked;
    workedShare[name] = worked.filter(Boolean).length / Math.max(worked.length, 1);
    const eq = out.map((r) => equations(r.text)).reduce(
      (a, e) => ({ right: a.right + e.right, total: a.total + e.total }),
      { right: 0, total: 0 },
    );
    if (eq.total > 0) equationAccuracy[name] = eq.right / eq.total;
    record(name, greedyScores(ctx, qs, out));
  };

  // A teacher: greedy pass@1 and majority of K samples.
  const teacherRows = async (label: string, slug: string, sampler: Sampler) => {
    await greedy(`${label} pass@1`, slug, sampler);
    const majRows = byId(
      await run(`${slug}-maj`, sampler, [{ temperature: cfg.majTemperature, n: cfg.majK }]),
    );
    record(`${label} maj@${cfg.majK}`, {
      majority: qs.map((q) =>
        sameAnswer(majority((majRows.get(q.id) ?? []).map((r) => r.answer)).label, q.gold)
      ),
    });
  };
  const teacher = await openSource(ctx.cfg.teacher.source, opts, (t) => t.length);
  await teacherRows("teacher", "teacher", teacher.sampler);
  const params: EvalResult["params"] = {
    teacher: teacher.model?.numParameters() ?? null,
    student: 0,
  };
  teacher.model?.destroy();
  // The baseline teacher fine-tuned on the student's SFT data, beside the original.
  const tuned = await latestCheckpoint(ctx, "teacher-sft");
  if (tuned) {
    const t = await openSource(
      { kind: "local", model: ctx.run.path(tuned.dir) },
      opts,
      (x) => x.length,
    );
    await teacherRows("fine-tuned teacher", "teacher-sft", t.sampler);
    t.model?.destroy();
  }

  // The students: SFT, and PPO with each reward source that ran.
  const students: [string, string, string][] = [["SFT student", "sft", await modelDir(ctx, "sft")]];
  const finalKl: Record<string, number> = {};
  for (const reward of ctx.cfg.ppo.rewards as RewardSource[]) {
    const ppo = await latestCheckpoint(ctx, ppoDir(reward));
    if (!ppo) continue;
    const name = PPO_ROWS[reward];
    students.push([name, ppoDir(reward), `${ctx.run.path(ppo.dir)}/policy`]);
    const state = (await ctx.run.readJson(`${ppo.dir}/state.json`)) as { lastKl?: number } | null;
    finalKl[name] = state?.lastKl ?? NaN;
  }
  const equal = await latestCheckpoint(ctx, "sft-equal");
  if (equal) students.push(["SFT student (equal compute)", "sft-equal", ctx.run.path(equal.dir)]);
  const gkd = await latestCheckpoint(ctx, "gkd");
  if (gkd) students.push(["GKD student", "gkd", ctx.run.path(gkd.dir)]);
  for (const [name, slug, dir] of students) {
    // The SFT row may come from a serving engine (eval.sftSource); the PPO students are local.
    const student = slug === "sft"
      ? await openStudent(ctx, cfg.sftSource, opts)
      : await openStudent(ctx, { kind: "local", model: dir }, opts);
    params.student = student.params ?? params.student;
    await greedy(name, slug, student.sampler);
    if (cfg.passK > 0) {
      const groups = byId(
        await run(`${slug}-pass`, student.sampler, [{ temperature: 1, n: cfg.passK }]),
      );
      record(`${name} pass@${cfg.passK}`, {
        pass: qs.map((q) => (groups.get(q.id) ?? []).some((r) => sameAnswer(r.answer, q.gold))),
      });
    }
    student.destroy();
  }

  // Best-of-n with the reward model on the SFT student: no RL, the same reward.
  let bestOfCost: BestOfCost | null = null;
  if (cfg.bestOfN.length && (await latestCheckpoint(ctx, "rm"))) {
    const bestStart = performance.now();
    const tokensBefore = tokens;
    const nMax = Math.max(...cfg.bestOfN);
    const student = await openStudent(ctx, cfg.sftSource, opts);
    const samples = byId(
      await run("sft-best-of", student.sampler, [{ temperature: cfg.bestOfTemperature, n: nMax }]),
    );
    student.destroy();
    const rm = await loadRewardModel(ctx);
    const groups = qs.map((q) => samples.get(q.id) ?? []);
    const seqs = groups.flat().map((r) => sequenceOf(rm.tokenizer, r, ctx.cfg.reward.maxLen));
    const flat = await scoreAll(rm.scorer, seqs.map((s) => s.tokens), seqs.map((s) => s.start), 64);
    rm.model.destroy();
    let at = 0;
    const scores = groups.map((g) => Array.from(flat.subarray(at, at += g.length)));
    await ctx.run.writeJson(
      "eval/best_of.json",
      qs.map((q, i) => ({ id: q.id, scores: scores[i] })),
    );
    for (const n of cfg.bestOfN) {
      const picks = groups.map((g, i) => g[bestOf(scores[i], n)]);
      record(`Best-of-${n} (reward model)`, greedyScores(ctx, qs, picks.filter(Boolean)));
    }
    bestOfCost = {
      nMax,
      ns: cfg.bestOfN,
      tokensGenerated: tokens - tokensBefore,
      wallSeconds: (performance.now() - bestStart) / 1000,
    };
  }

  // Pseudo-labels against the training questions' gold answers.
  const gold = new Map(ctx.train.map((q) => [q.id, q.gold]));
  const studentRows = await readStudentRows(ctx);
  const fresh = await freshLabelAccuracy(ctx);
  const pseudoLabels = {
    ...labelAccuracy([...(await readLabels(ctx)).values()], gold),
    ...(studentRows.length > 0 && {
      paidByStyle: paidByStyle(
        studentRows,
        (r) => answerStyle(r.text),
        (r) => sameAnswer(r.answer, gold.get(r.id) ?? null),
        (r) => r.reward ?? 0,
      ),
    }),
    ...(fresh && { fresh }),
  };

  // The reward models' held-out scores against gold correctness.
  const heldOutMetrics = async (rel: string): Promise<RewardModelMetrics | null> => {
    const held = (await ctx.run.readJson(`${rel}/heldout.json`)) as {
      id: string;
      answer: string | null;
      style?: "worked" | "answer-only";
      score: number;
    }[] | null;
    if (!held?.length) return null;
    const right = (
      h: typeof held[number],
    ) => (sameAnswer(h.answer, gold.get(h.id) ?? null) ? 1 : 0);
    const m = classifierMetrics(held.map((h) => h.score), held.map(right), held.map((h) => h.id));
    const withinStyle = (style: string) => {
      const some = held.filter((h) => h.style === style);
      return withinQuestionAuc(some.map((h) => h.score), some.map(right), some.map((h) => h.id));
    };
    return {
      accuracy: m.accuracy,
      auc: m.auc,
      aucWithinQuestion: m.aucWithinQuestion,
      ...(held.every((h) => h.style) && {
        aucWithinQuestionByStyle: {
          worked: withinStyle("worked"),
          answerOnly: withinStyle("answer-only"),
        },
        paidByStyle: paidByStyle(
          held,
          (h) => h.style ?? "",
          (h) => right(h) === 1,
          (h) => rewardPaid(h.score, ctx.cfg.ppo.rewardModelOutput),
        ),
      }),
      n: m.n,
    };
  };
  const rewardModel = await heldOutMetrics("rm");
  const rewardModelTeacherOnly = await heldOutMetrics("rm-teacher");
  const result: EvalResult = {
    questions: qs.length,
    rows,
    perQuestion,
    pseudoLabels,
    rewardModel,
    rewardModelTeacherOnly,
    finalKl,
    workedShare,
    perQuestionWorked,
    equationAccuracy,
    params,
    tokensGenerated: tokens,
    compute: methodCompute(await stageSummaries(ctx), bestOfCost, PPO_ROWS),
  };
  await ctx.run.writeJson("eval/results.json", result);
  return { ...result, wallSeconds: (performance.now() - start) / 1000 };
}

type LabelAccuracy = { all: number; kept: number; keptFraction: number };

/** The share of labels that match gold, of all and of the kept ones, and the share kept. */
function labelAccuracy(labels: LabelRow[], gold: Map<string, string>): LabelAccuracy {
  const right = (ls: LabelRow[]) =>
    ls.filter((l) => sameAnswer(l.pseudo_label, gold.get(l.id) ?? null)).length /
    Math.max(ls.length, 1);
  const kept = labels.filter((l) => l.kept);
  return {
    all: right(labels),
    kept: right(kept),
    keptFraction: kept.length / Math.max(labels.length, 1),
  };
}

/**
 * How right the teacher's labels of PPO's fresh prompts are (teacher-rl/, written when the pseudo
 * reward or ppo.keptPromptsOnly labelled them), under the run's label settings; null without them.
 */
async function freshLabelAccuracy(ctx: StageContext): Promise<LabelAccuracy | null> {
  const rows = (await new JsonlShards(ctx.run, "teacher-rl").readAll()) as ResponseRow[];
  if (rows.length === 0 || ctx.cfg.ppo.freshPrompts === 0) return null;
  const gold = new Map(freshPrompts(ctx, ctx.cfg.ppo.freshPrompts).map((q) => [q.id, q.gold]));
  const { minAgreement, voters } = ctx.cfg.label;
  return labelAccuracy(majorityLabels(byId(rows), minAgreement, voters), gold);
}
