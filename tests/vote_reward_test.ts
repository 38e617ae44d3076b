/** The online majority vote as a PPO reward (TTRL, SRT), on hand-made groups. */
import assert from "node:assert/strict";
import { voteScores } from "../src/stages/label.ts";

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
