/**
 * Stage 4, student-generate: the SFT student answers the kept training
 * questions `samples` times; each response is labelled against the same
 * pseudo-labels (reward 1 if its answer matches).
 */
import { loadTokenizer } from "../model/tokenizer.ts";
import type { StageContext, StageSummary } from "./context.ts";
import { judgeRows, readLabels } from "./label.ts";
import { generateResponses } from "./responses.ts";
import type { Sampler, SamplerOptions } from "./sampler.ts";
import { openSource } from "./teacher_generate.ts";
import { modelDir } from "./checkpoints.ts";
import { JsonlShards } from "../run/run_dir.ts";
import type { ResponseRow } from "../run/rows.ts";

/** The student's labelled responses; in judge mode the judge's verdicts are their rewards. */
export async function readStudentRows(ctx: StageContext): Promise<ResponseRow[]> {
  const rows = (await new JsonlShards(ctx.run, "student").readAll()) as ResponseRow[];
  const judged = (await ctx.run.readJson("student_judged.json")) as number[] | null;
  if (judged) rows.forEach((r, i) => (r.reward = judged[i]));
  return rows;
}

/**
 * The SFT student as a sampler: this run's checkpoint (or another folder), or a serving engine
 * that serves it. Token counts always come from the checkpoint's tokenizer.
 */
export async function openStudent(
  ctx: StageContext,
  source: StageContext["cfg"]["studentGenerate"]["source"],
  opts: SamplerOptions,
): Promise<{ sampler: Sampler; params: number | null; destroy: () => void }> {
  const sft = await modelDir(ctx, "sft");
  const tokenizer = await loadTokenizer(source.kind === "local" && source.model || sft);
  const count = (t: string) => tokenizer.encode(t, { addSpecialTokens: false }).length;
  const resolved = source.kind === "local" ? { ...source, model: source.model || sft } : source;
  const { sampler, model } = await openSource(resolved, opts, count, "student");
  return {
    sampler,
    params: model?.numParameters() ?? null,
    destroy: () => model?.destroy(),
  };
}

export async function studentGenerate(ctx: StageContext): Promise<StageSummary> {
  const start = performance.now();
  const cfg = ctx.cfg.studentGenerate;
  const labels = await readLabels(ctx);
  const student = await openStudent(ctx, cfg.source, {
    maxNewTokens: cfg.maxNewTokens,
    topP: cfg.topP,
    batchSize: cfg.batchSize,
    stop: ctx.task.stop,
  });
  const questions = ctx.train.filter((q) => labels.get(q.id)?.kept);
  const { rows, tokens } = await generateResponses(ctx, {
    stage: "student-generate",
    rel: "student",
    sampler: student.sampler,
    questions,
    draws: [{ temperature: cfg.temperature, n: cfg.samples }],
    questionsPerUnit: cfg.questionsPerUnit,
    seed: ctx.cfg.seed,
    annotate: (row) => {
      if (ctx.cfg.label.mode === "judge") return { ...row, reward: -1 };
      const l = labels.get(row.id);
      return { ...row, reward: row.answer !== null && row.answer === l?.pseudo_label ? 1 : 0 };
    },
  });
  student.destroy();
  let judgeTokens = 0;
  if (
    ctx.cfg.label.mode === "judge" && rows.some((r) => r.reward === undefined || r.reward === -1)
  ) {
    // Open-ended tasks: the judge, not a pseudo-label, decides each student response.
    const verdict = await judgeRows(ctx, rows, "student-generate (judge)");
    rows.forEach((r, i) => (r.reward = verdict.positive[i] ? 1 : 0));
    judgeTokens = verdict.tokens;
    await ctx.run.writeJson("student_judged.json", rows.map((r) => r.reward));
  }
  const positive = rows.filter((r) => r.reward === 1).length;
  return {
    responses: rows.length,
    matchPseudoLabel: rows.length ? positive / rows.length : 0,
    tokensGenerated: tokens + judgeTokens,
    wallSeconds: (performance.now() - start) / 1000,
  };
}
