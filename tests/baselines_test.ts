/** Baselines beside the method: the online majority vote (TTRL, SRT), best-of-n, equal-compute SFT. */
import assert from "node:assert/strict";
import { voteScores } from "../src/stages/label.ts";
import { bestOf } from "../src/stages/eval.ts";
import { stepsForTokens } from "../src/stages/sft_baselines.ts";

Deno.test("voteScores rewards each group's plurality answer, and nobody without agreement", () => {
  const answers = ["14", "14", "15", null, "7", "8", "9", "9", "9", "3", "3", "4", "4"];
  const groups = ["a", "a", "a", "a", "b", "b", "c", "c", "c", "d", "d", "d", "d"];
  assert.deepEqual([...voteScores(answers, groups)], [
    // a: 14 twice wins; 15 and the missing answer get nothing.
    1,
    1,
    0,
    0,
    // b: one vote each is no agreement.
    0,
    0,
    // c: unanimous.
    1,
    1,
    1,
    // d: a tie of two votes each: the first to reach the top count wins (as majority() labels).
    1,
    1,
    0,
    0,
  ]);
  // Groups need not be contiguous.
  assert.deepEqual([...voteScores(["1", "2", "1"], ["x", "y", "x"])], [1, 0, 1]);
});

Deno.test("bestOf picks the highest of the first n scores, the first on ties", () => {
  const scores = [0.2, 0.9, 0.5, 0.95, 0.9];
  assert.equal(bestOf(scores, 1), 0);
  assert.equal(bestOf(scores, 2), 1);
  assert.equal(bestOf(scores, 3), 1);
  assert.equal(bestOf(scores, 4), 3);
  assert.equal(bestOf(scores, 99), 3);
  assert.equal(bestOf([0.3, 0.7, 0.7], 3), 1);
  assert.equal(bestOf([-2, -1], 2), 1);
  assert.equal(bestOf([], 4), -1);
});

Deno.test("stepsForTokens: the first step count whose batches reach the budget", () => {
  const sizes = [100, 120, 80, 100];
  const at = (s: number) => sizes[s % sizes.length];
  assert.equal(stepsForTokens(at, 1), 1);
  assert.equal(stepsForTokens(at, 100), 1);
  assert.equal(stepsForTokens(at, 101), 2);
  assert.equal(stepsForTokens(at, 300), 3);
  assert.equal(stepsForTokens(at, 301), 4);
  assert.equal(stepsForTokens(at, 0), 0);
});
