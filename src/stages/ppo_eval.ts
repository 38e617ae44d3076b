/**
 * Test-split accuracy during PPO (`ppo.evalEvery`, as `eval_steps` in Hugging Face's Trainer): the
 * policy answers the test questions greedily, as eval's PPO row does, so that the number of
 * iterations can be chosen from one run's curve on a validation split. It reads gold labels, like
 * eval and nothing else: on the held-out split the curve is for reading, never for choosing.
 */
import type { CausalLM } from "../model/llama.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { answerStyle } from "../tasks/arithmetic.ts";
import { chunk, type StageContext } from "./context.ts";
import {
  accuracy,
  EVAL_UNIT,
  evalQuestions,
  evalSamplerOptions,
  scoreTexts,
} from "./eval_scores.ts";
import { LocalSampler } from "./sampler.ts";

/** `eval_<score>` per score the task gives (the share right), and the greedy worked share. */
export async function policyEval(
  ctx: StageContext,
  policy: CausalLM,
  tokenizer: Tokenizer,
): Promise<Record<string, number>> {
  const qs = evalQuestions(ctx);
  const sampler = new LocalSampler(policy, tokenizer, evalSamplerOptions(ctx));
  const texts: string[] = [];
  // In eval's units, so that the last point matches eval's PPO row.
  for (const unit of chunk(qs, EVAL_UNIT)) {
    const outs = await sampler.sample(
      unit.map((q) => ({ prompt: q.prompt, n: 1, temperature: 0, seed: 0 })),
    );
    texts.push(...outs.map((o) => o[0].text));
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(accuracy(scoreTexts(ctx, qs, texts)))) out[`eval_${k}`] = v;
  // A worked answer is arithmetic's notion; other tasks' answers would all count as one style.
  if (ctx.task.kind === "arithmetic") {
    out.eval_worked_share = texts.filter((t) => answerStyle(t) === "worked").length / qs.length;
  }
  return out;
}
