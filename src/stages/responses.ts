/**
 * Sampling responses to many questions into resumable units: the shared
 * body of teacher-generate, student-generate and eval's sampling.
 */
import { JsonlShards } from "../run/run_dir.ts";
import type { Question } from "../tasks/types.ts";
import { chunk, hash32, type StageContext, unitId } from "./context.ts";
import type { ResponseRow } from "../run/rows.ts";
import type { Sampler } from "./sampler.ts";

export interface ResponseJob {
  stage: string;
  /** Folder of the run directory that holds one JSONL file per unit. */
  rel: string;
  sampler: Sampler;
  questions: Question[];
  /** (temperature, samples) pairs; temperature 0 is greedy. */
  draws: { temperature: number; n: number }[];
  questionsPerUnit: number;
  seed: number;
  /** Adds fields to each row before it is written (e.g. the reward). */
  annotate?: (row: ResponseRow) => ResponseRow;
}

/** Runs every unit not yet written, and returns all rows (finished units included). */
export async function generateResponses(
  ctx: StageContext,
  job: ResponseJob,
): Promise<{ rows: ResponseRow[]; tokens: number; newTokens: number }> {
  const shards = new JsonlShards(ctx.run, job.rel);
  const done = await shards.done();
  const units = chunk(job.questions, job.questionsPerUnit);
  const perQuestion = job.draws.length;
  const bar = ctx.progress(job.stage, job.questions.length, "questions");
  let newTokens = 0;
  for (let u = 0; u < units.length; u++) {
    const id = unitId(u);
    if (done.has(id)) {
      bar.tick(units[u].length);
      continue;
    }
    const reqs = units[u].flatMap((q) =>
      job.draws.map((d) => ({
        prompt: q.prompt,
        n: d.n,
        temperature: d.temperature,
        // Each question's samples depend on the run seed and the question only.
        seed: (hash32(q.id) ^ Math.imul(job.seed + 1, 0x9e3779b1) ^
          Math.round(d.temperature * 1000)) >>>
          0,
      }))
    );
    let seen = 0;
    const outs = await job.sampler.sample(reqs, (n) => {
      seen += n;
      const questions = Math.floor(seen / perQuestion);
      if (questions > 0) {
        bar.tick(questions);
        seen -= questions * perQuestion;
      }
    });
    const rows: ResponseRow[] = [];
    reqs.forEach((r, i) => {
      const q = units[u][Math.floor(i / perQuestion)];
      outs[i].forEach((s, k) => {
        newTokens += s.tokens;
        const row: ResponseRow = {
          id: q.id,
          prompt: q.prompt,
          temperature: r.temperature,
          sample: k,
          text: s.text,
          answer: ctx.task.extract(s.text),
          finish: s.finish,
          tokens: s.tokens,
        };
        rows.push(job.annotate ? job.annotate(row) : row);
      });
    });
    await shards.writeUnit(id, rows);
  }
  bar.done();
  const rows = (await shards.readAll()) as ResponseRow[];
  return { rows, tokens: rows.reduce((s, r) => s + r.tokens, 0), newTokens };
}
