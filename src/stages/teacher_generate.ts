/**
 * Stage 1, teacher-generate: the teacher answers every training question
 * samplesPerTemperature times at each configured temperature.
 */
import type { CausalLM } from "../model/llama.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { loadPretrained } from "../model/checkpoint.ts";
import type { ResponseRow } from "../run/rows.ts";
import type { Question } from "../tasks/types.ts";
import type { StageContext, StageSummary } from "./context.ts";
import { generateResponses } from "./responses.ts";
import { HttpSampler, LocalSampler, type Sampler, type SamplerOptions } from "./sampler.ts";

/**
 * A sampler for a configured source (the teacher, the judge or a served student); `role` names it
 * in the HTTP client's errors.
 */
export async function openSource(
  source: StageContext["cfg"]["teacher"]["source"],
  opts: SamplerOptions,
  countTokens: (text: string) => number,
  role = "teacher",
): Promise<{ sampler: Sampler; model?: CausalLM; tokenizer?: Tokenizer }> {
  if (source.kind === "http") {
    const { kind: _, ...settings } = source;
    return { sampler: new HttpSampler(settings, opts, countTokens, role) };
  }
  const { model, tokenizer } = await loadPretrained(source.model);
  return { sampler: new LocalSampler(model, tokenizer, opts), model, tokenizer };
}

export async function teacherGenerate(ctx: StageContext): Promise<StageSummary> {
  const start = performance.now();
  const { rows, tokens } = await teacherAnswers(ctx, ctx.train, "teacher", "teacher-generate");
  return {
    responses: rows.length,
    withAnswer: rows.filter((r) => r.answer !== null).length,
    tokensGenerated: tokens,
    wallSeconds: (performance.now() - start) / 1000,
  };
}

/** The teacher's configured draws for `questions`, written (resumably) under the run's `rel`. */
export async function teacherAnswers(
  ctx: StageContext,
  questions: Question[],
  rel: string,
  stage: string,
): Promise<{ rows: ResponseRow[]; tokens: number }> {
  const t = ctx.cfg.teacher;
  const { sampler, model } = await openSource(t.source, {
    maxNewTokens: t.maxNewTokens,
    topP: t.topP,
    batchSize: t.batchSize,
    stop: ctx.task.stop,
  }, (text) => text.length);
  const { rows, tokens } = await generateResponses(ctx, {
    stage,
    rel,
    sampler,
    questions,
    draws: t.temperatures.map((temperature) => ({ temperature, n: t.samplesPerTemperature })),
    questionsPerUnit: t.questionsPerUnit,
    seed: 0,
  });
  model?.destroy();
  return { rows, tokens };
}
