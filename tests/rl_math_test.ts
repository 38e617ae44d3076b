/** PPO arithmetic and reward-model losses against hand-computed values. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import {
  AdaptiveKl,
  gae,
  groupAdvantages,
  klRewards,
  mixedGroups,
  whiten,
} from "../src/train/ppo_math.ts";
import { bceWithLogits, bradleyTerry } from "../src/train/reward_loss.ts";
import { withinQuestionAuc } from "../src/stages/reward_train.ts";
import { assertClose } from "./support/assert.ts";
import "./support/gpu.ts";

Deno.test("KL-penalised rewards put the score on the last response token", () => {
  const mask = new Float32Array([0, 1, 1, 0, 1, 1, 1, 1]);
  const logp = new Float32Array([0, -1, -2, 0, -1, -1, -1, -1]);
  const ref = new Float32Array([0, -1.5, -1, 0, -1, -2, -1, -1]);
  const { rewards, kl } = klRewards(logp, ref, mask, [3, -1], 2, 4, 0.1);
  assertClose(kl, [0, 0.5, -1, 0, 0, 1, 0, 0]);
  assertClose(rewards, [0, -0.05, 0.1 + 3, 0, 0, -0.1, 0, -1]);
});

Deno.test("GAE matches the recursion computed by hand", () => {
  // One row, 3 response tokens after a prompt position.
  const mask = new Float32Array([0, 1, 1, 1]);
  const r = new Float32Array([0, 0.1, -0.2, 1]);
  const v = new Float32Array([9, 0.5, 0.4, 0.3]);
  const g = 0.9;
  const l = 0.8;
  const d2 = 1 - 0.3;
  const d1 = -0.2 + g * 0.3 - 0.4;
  const d0 = 0.1 + g * 0.4 - 0.5;
  const a2 = d2;
  const a1 = d1 + g * l * a2;
  const a0 = d0 + g * l * a1;
  const { advantages, returns } = gae(r, v, mask, 1, 4, g, l);
  assertClose(advantages, [0, a0, a1, a2]);
  assertClose(returns, [0, a0 + 0.5, a1 + 0.4, a2 + 0.3]);
});

Deno.test("group advantages: each response's return minus the mean of the others' (RLOO)", () => {
  // Two groups of 3 rows, 3 positions each; position 0 is the prompt.
  const mask = new Float32Array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1]);
  const r = new Float32Array([9, 1, 0.5, 9, 2, 9, 9, 0, 0, 9, 0, -1, 9, 0, 4, 9, 0, 1]);
  // Returns over masked positions: 1.5, 2, 0 | -1, 4, 1.
  const a = [1.5 - 1, 2 - 0.75, 0 - 1.75, -1 - 2.5, 4 - 0, 1 - 1.5];
  const got = groupAdvantages(r, mask, 6, 3, 3);
  const want = Array.from(mask, (m, i) => (m ? a[Math.floor(i / 3)] : 0));
  assertClose(got, want);
  assert.throws(() => groupAdvantages(r, mask, 6, 3, 4), /do not form groups of 4/);
});

Deno.test("only groups whose scores differ are trained on", () => {
  assert.deepEqual(mixedGroups([1, 1, 0, 1, 0, 0, 2, 2], 2), [2, 3]);
  assert.deepEqual(mixedGroups([1, 1, 1, 0.5], 4), [0, 1, 2, 3]);
});

Deno.test("whitening gives masked mean 0 and unbiased variance 1", () => {
  const x = new Float32Array([1, 2, 3, 100, 5]);
  const mask = new Float32Array([1, 1, 1, 0, 1]);
  const w = whiten(x, mask);
  const vals = [0, 1, 2, 4].map((i) => w[i]);
  const mean = vals.reduce((a, b) => a + b) / 4;
  const variance = vals.reduce((a, b) => a + (b - mean) ** 2, 0) / 3;
  assertClose([mean, variance, w[3]], [0, 1, 0], { atol: 1e-5 });
});

Deno.test("the adaptive KL coefficient grows above target and shrinks below, clipped at 20%", () => {
  const k = new AdaptiveKl(0.1, 1, 10);
  k.update(2, 5);
  assertClose([k.beta], [0.1 * (1 + 0.2 * 5 / 10)]);
  k.update(0.9, 10);
  assertClose([k.beta], [0.11 * (1 - 0.1)]);
});

Deno.test("pointwise BCE and pairwise Bradley–Terry losses match float64", async () => {
  const s = [-30, -1.5, 0, 2, 40];
  const y = [0, 1, 1, 0, 1];
  const sp = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
  const bce = s.reduce((acc, v, i) => acc + sp(v) - y[i] * v, 0) / s.length;
  const bt = [0, 1].reduce((acc, i) => acc + sp(s[i + 3] - s[i]), 0) / 2;
  const got = await E.readAll([
    bceWithLogits(E.tensor(s), E.tensor(y)),
    bradleyTerry(E.tensor([s[0], s[1]]), E.tensor([s[3], s[4]])),
  ]);
  assertClose([got[0][0], got[1][0]], [bce, bt], { rtol: 1e-5 });
  assert.ok(Number.isFinite(got[0][0]));
});

Deno.test("the within-question AUC counts only pairs of answers to one question", () => {
  // q1: positive 0.9 beats both negatives (0.5, 0.95 beats it: 1 of 2); q2: a tie (half);
  // q3 has no negative and q4 no positive: no pairs. The overall ranking would mix them.
  const scores = [0.9, 0.5, 0.95, 0.2, 0.2, 3, -3];
  const labels = [1, 0, 0, 1, 0, 1, 0];
  const qs = ["q1", "q1", "q1", "q2", "q2", "q3", "q4"];
  assert.equal(withinQuestionAuc(scores, labels, qs), (1 + 0 + 0.5) / 3);
  assert.ok(Number.isNaN(withinQuestionAuc([1, 2], [1, 0], ["a", "b"])));
});
