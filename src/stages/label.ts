/**
 * Stage 2, label: pseudo-rewards without gold labels. The majority answer of
 * a question's teacher responses is its pseudo-label; responses that agree
 * are positive. Questions whose majority is weaker than minAgreement are
 * dropped. In judge mode an LLM judge scores each response instead.
 */
import { JsonlShards } from "../run/run_dir.ts";
import { DEFAULT_JUDGE, judgePositive, judgePrompt, parseJudgeScore } from "../tasks/judge.ts";
import { sameAnswer } from "../tasks/answers.ts";
import { answerStyle } from "../tasks/arithmetic.ts";
import { byId, type StageContext, type StageSummary } from "./context.ts";
import type { LabelRow, ResponseRow } from "../run/rows.ts";
import { openSource } from "./teacher_generate.ts";
import type { Config } from "../run/config.ts";

/**
 * The most frequent non-null answer and its share of all responses. Ties go to the first in
 * object-key order: the smallest for whole-number answers, else the one seen first.
 */
export function majority(
  answers: (string | null)[],
): { label: string | null; agreement: number; votes: Record<string, number> } {
  const votes: Record<string, number> = {};
  for (const a of answers) if (a !== null) votes[a] = (votes[a] ?? 0) + 1;
  let label: string | null = null;
  for (const [a, v] of Object.entries(votes)) if (label === null || v > votes[label]) label = a;
  return {
    label,
    agreement: label === null ? 0 : votes[label] / Math.max(answers.length, 1),
    votes,
  };
}

/**
 * The online majority vote as a reward (TTRL, SRT): within each group of samples for one prompt,
 * 1 for an answer that matches the group's plurality answer, else 0. A plurality of one vote is no
 * agreement, so it rewards nobody.
 */
export function voteScores(answers: (string | null)[], groups: string[]): Float32Array {
  const byGroup = new Map<string, (string | null)[]>();
  answers.forEach((a, i) => byGroup.set(groups[i], [...(byGroup.get(groups[i]) ?? []), a]));
  const winner = new Map<string, string | null>();
  for (const [g, as] of byGroup) {
    const m = majority(as);
    winner.set(g, m.label !== null && m.votes[m.label] >= 2 ? m.label : null);
  }
  return Float32Array.from(answers, (a, i) => {
    const w = winner.get(groups[i]);
    return a !== null && w !== null && w !== undefined && sameAnswer(a, w) ? 1 : 0;
  });
}

export async function teacherRows(ctx: StageContext): Promise<ResponseRow[]> {
  return (await new JsonlShards(ctx.run, "teacher").readAll()) as ResponseRow[];
}

export async function readLabels(ctx: StageContext): Promise<Map<string, LabelRow>> {
  const rows = (await ctx.run.readJson("labels.json")) as LabelRow[] | null;
  return new Map((rows ?? []).map((r) => [r.id, r]));
}

/** Whether a teacher response counts as positive under the labels. */
export function isPositive(label: LabelRow | undefined, row: ResponseRow): boolean {
  if (!label?.kept) return false;
  if (label.judged) return label.judged[`${row.temperature}:${row.sample}`] ?? false;
  return row.answer !== null && row.answer === label.pseudo_label;
}

/** The configured LLM judge's verdict on each response, in order. */
export async function judgeRows(
  ctx: StageContext,
  rows: ResponseRow[],
  stage: string,
): Promise<{ positive: boolean[]; tokens: number }> {
  const cfg = ctx.cfg.label;
  const judgeCfg = {
    template: cfg.judge.template || DEFAULT_JUDGE.template,
    scorePattern: cfg.judge.scorePattern || DEFAULT_JUDGE.scorePattern,
    maxScore: cfg.judge.maxScore,
    threshold: cfg.judge.threshold,
  };
  const { sampler, model } = await openSource(cfg.judge.source, {
    maxNewTokens: cfg.judge.maxNewTokens,
    topP: 1,
    batchSize: ctx.cfg.teacher.batchSize,
    stop: ["\n"],
  }, (t) => t.length);
  const bar = ctx.progress(stage, rows.length, "responses");
  const outs = await sampler.sample(
    rows.map((r) => ({
      prompt: judgePrompt(judgeCfg, r.prompt, r.text),
      n: 1,
      temperature: 0,
      seed: 0,
    })),
    (n) => bar.tick(n),
  );
  bar.done();
  model?.destroy();
  return {
    positive: outs.map((o) => judgePositive(judgeCfg, parseJudgeScore(judgeCfg, o[0].text))),
    tokens: outs.reduce((s, o) => s + o[0].tokens, 0),
  };
}

/**
 * Each question's majority answer as its pseudo-label, kept when its agreement reaches the bar;
 * with voters "worked" only worked responses vote, and agreement is their share.
 */
export function majorityLabels(
  groups: Map<string, ResponseRow[]>,
  minAgreement: number,
  voters: Config["label"]["voters"] = "all",
): LabelRow[] {
  return [...groups].map(([id, rows]) => {
    const voting = voters === "all" ? rows : rows.filter((r) => answerStyle(r.text) === "worked");
    const m = majority(voting.map((r) => r.answer));
    return {
      id,
      pseudo_label: m.label,
      agreement: m.agreement,
      kept: m.label !== null && m.agreement >= minAgreement,
      votes: m.votes,
    };
  });
}

export async function labelStage(ctx: StageContext): Promise<StageSummary> {
  const start = performance.now();
  const cfg = ctx.cfg.label;
  const groups = byId(await teacherRows(ctx));
  const labels: LabelRow[] = [];
  let judgeTokens = 0;
  if (cfg.mode === "majority") {
    labels.push(...majorityLabels(groups, cfg.minAgreement, cfg.voters));
  } else {
    const all = [...groups.values()].flat();
    const { positive, tokens } = await judgeRows(ctx, all, "label (judge)");
    judgeTokens = tokens;
    const judged = new Map<string, Record<string, boolean>>();
    all.forEach((r, i) => {
      const rec = judged.get(r.id) ?? {};
      rec[`${r.temperature}:${r.sample}`] = positive[i];
      judged.set(r.id, rec);
    });
    for (const [id] of groups) {
      const rec = judged.get(id)!;
      const pos = Object.values(rec).filter(Boolean).length;
      const agreement = pos / Math.max(Object.keys(rec).length, 1);
      labels.push({ id, pseudo_label: null, agreement, kept: pos > 0, votes: {}, judged: rec });
    }
  }
  await ctx.run.writeJson("labels.json", labels);
  const kept = labels.filter((l) => l.kept).length;
  const hist = new Array(10).fill(0);
  for (const l of labels) hist[Math.min(9, Math.floor(l.agreement * 10))]++;
  // The style mix SFT imitates (PPO's own prompts included): the SFT student's greedy style
  // follows it, sharpened.
  const byQuestion = new Map(labels.map((l) => [l.id, l]));
  const positives = [...groups.values()].flat().filter((r) => isPositive(byQuestion.get(r.id), r));
  return {
    questions: labels.length,
    kept,
    dropped: labels.length - kept,
    agreementHistogram: hist,
    positives: positives.length,
    positivesWorked: positives.filter((r) => answerStyle(r.text) === "worked").length /
      Math.max(positives.length, 1),
    tokensGenerated: judgeTokens,
    wallSeconds: (performance.now() - start) / 1000,
  };
}
