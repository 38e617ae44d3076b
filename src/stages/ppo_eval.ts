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
import { LocalSampler } from "./sampler.ts";

/** `eval_<score>` per score the task gives (the share right), and the greedy worked share. */
export async function policyEval(
  ctx: StageContext,
  policy: CausalLM,
  tokenizer: Tokenizer,
): Promise<Record<string, number>> {
  const cfg = ctx.cfg.eval;
  const qs = cfg.questions ? ctx.test.slice(0, cfg.questions) : ctx.test;
  const sampler = new LocalSampler(policy, tokenizer, {
    maxNewTokens: cfg.maxNewTokens,
    topP: cfg.topP,
    batchSize: cfg.batchSize,
    stop: ctx.task.stop,
  });
  const right: Record<string, number> = {};
  let worked = 0;
  // In eval's units of 128 questions, so that the last point matches eval's PPO row.
  for (const unit of chunk(qs, 128)) {
    const outs = await sampler.sample(
      unit.map((q) => ({ prompt: q.prompt, n: 1, temperature: 0, seed: 0 })),
    );
    unit.forEach((q, i) => {
      const text = outs[i][0].text;
      for (const [k, v] of Object.entries(ctx.task.score(text, q.gold))) {
        right[k] = (right[k] ?? 0) + (v ? 1 : 0);
      }
      if (answerStyle(text) === "worked") worked++;
    });
  }
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(right)) out[`eval_${k}`] = n / qs.length;
  // A worked answer is arithmetic's notion; other tasks' answers would all count as one style.
  if (ctx.task.kind === "arithmetic") out.eval_worked_share = worked / qs.length;
  return out;
}
