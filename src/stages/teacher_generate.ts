/**
 * Stage 1, teacher-generate: the teacher answers every training question
 * samplesPerTemperature times at each configured temperature.
 */
import type { CausalLM } from "../model/llama.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { loadPretrained } from "../model/checkpoint.ts";
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
  const t = ctx.cfg.teacher;
  const start = performance.now();
  const { sampler, model } = await openSource(t.source, {
    maxNewTokens: t.maxNewTokens,
    topP: t.topP,
    batchSize: t.batchSize,
    stop: ctx.task.stop,
  }, (text) => text.length);
  const { rows, tokens } = await generateResponses(ctx, {
    stage: "teacher-generate",
    rel: "teacher",
    sampler,
    questions: ctx.train,
    draws: t.temperatures.map((temperature) => ({ temperature, n: t.samplesPerTemperature })),
    questionsPerUnit: t.questionsPerUnit,
    seed: 0,
  });
  model?.destroy();
  return {
    responses: rows.length,
    withAnswer: rows.filter((r) => r.answer !== null).length,
    tokensGenerated: tokens,
    wallSeconds: (performance.now() - start) / 1000,
  };
}
