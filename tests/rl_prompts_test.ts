/** PPO's prompts: the share of training questions kept out of SFT. */
import assert from "node:assert/strict";
import { rlQuestionIds } from "../src/stages/context.ts";
import { configSchema } from "../src/pipeline/config.ts";
import { validate } from "../src/pipeline/schema.ts";
import type { Question } from "../src/tasks/task.ts";

const train: Question[] = Array.from({ length: 10 }, (_, i) => ({
  id: `q${i}`,
  prompt: `p${i}`,
  gold: String(i),
}));
const withShare = (promptShare: number) => validate(configSchema, { ppo: { promptShare } }, "test");

Deno.test("ppo.promptShare keeps the last share of the training questions for PPO", () => {
  assert.deepEqual([...rlQuestionIds({ cfg: withShare(0.3), train })], ["q7", "q8", "q9"]);
  assert.equal(rlQuestionIds({ cfg: withShare(0), train }).size, 0);
  // Rounded down: a share too small for one question keeps none.
  assert.equal(rlQuestionIds({ cfg: withShare(0.05), train }).size, 0);
  assert.throws(() => withShare(0.95), /promptShare/);
});
