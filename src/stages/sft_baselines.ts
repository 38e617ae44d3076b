/**
 * Baselines beside PPO that are plain supervised training (issue 16):
 * - the teacher fine-tuned on the student's SFT data (the same pseudo-positive responses), so that
 *   "the student beats its teacher" compares like with like;
 * - equal-compute SFT: the SFT student trained further on the teacher's and its own pseudo-positive
 *   responses for as many tokens as PPO trained on (the method samples ~40 responses a question:
 *   would SFT on the positive ones do as well?).
 * Each is off unless its key asks for it.
 */
import { EngineError } from "../errors.ts";
import { loadPretrained } from "../model/checkpoint.ts";
import { loadTokenizer } from "../model/tokenizer.ts";
import { type StageContext, type StageSummary, teacherWeights } from "./context.ts";
import { modelDir } from "./checkpoints.ts";
import {
  sftBatch,
  sftExamples,
  type SftRun,
  sftTrain,
  studentTokenizer,
  toExample,
} from "./sft.ts";
import { readStudentRows } from "./student_generate.ts";

/** The first step count whose batches hold at least `tokens` tokens (their B·T, as SFT counts). */
export function stepsForTokens(batchTokens: (s: number) => number, tokens: number): number {
  let steps = 0;
  for (let sum = 0; sum < tokens; steps++) sum += batchTokens(steps);
  return steps;
}

export async function sftBaselinesStage(ctx: StageContext): Promise<StageSummary> {
  const cfg = ctx.cfg.baselines;
  const out: StageSummary = { tokensTrained: 0, wallSeconds: 0 };
  const add = (s: StageSummary) => {
    out.tokensTrained! += s.tokensTrained ?? 0;
    out.wallSeconds! += s.wallSeconds ?? 0;
  };
  const tokenizer = await studentTokenizer(ctx);
  const examples = await sftExamples(ctx, tokenizer);

  if (cfg.teacherSftSteps > 0) {
    const teacherDir = teacherWeights(ctx.cfg, "baselines.teacherSftSteps");
    const teacherTokenizer = await loadTokenizer(teacherDir);
    const s = await sftTrain(ctx, {
      stage: "teacher-sft",
      rel: "teacher-sft",
      examples: await sftExamples(ctx, teacherTokenizer),
      tokenizer: teacherTokenizer,
      start: async () => (await loadPretrained(teacherDir)).model,
      cfg: { ...ctx.cfg.sft, lr: cfg.teacherSftLr, steps: cfg.teacherSftSteps },
      stream: 3000,
    });
    out.teacherSft = s;
    add(s);
  }

  if (cfg.equalComputeSft) {
    // The method's own PPO run (the learned reward model), or the first that ran.
    const ppo = (await ctx.run.readJson("stages.json") as Record<string, StageSummary> | null)?.ppo;
    const arm = (ppo?.model ?? ppo?.[ctx.cfg.ppo.rewards[0]]) as StageSummary | undefined;
    const budget = arm?.tokensTrained ?? 0;
    if (!budget) throw new EngineError("baselines.equalComputeSft: the ppo stage has not run");
    const own = (await readStudentRows(ctx)).filter((r) => r.reward === 1)
      .map((r) => toExample(tokenizer, r.prompt, r.text));
    const sft = await modelDir(ctx, "sft");
    const run: SftRun = {
      stage: "sft-equal-compute",
      rel: "sft-equal",
      examples: [...examples, ...own],
      tokenizer,
      start: async () => (await loadPretrained(sft)).model,
      cfg: ctx.cfg.sft,
      stream: 4000,
    };
    const batchTokens = (s: number) => {
      const b = sftBatch(ctx, run, s);
      return b.B * b.T;
    };
    const s = await sftTrain(ctx, { ...run, steps: stepsForTokens(batchTokens, budget) });
    out.equalComputeSft = { ...s, ppoTokensTrained: budget };
    add(s);
  }
  return out;
}
