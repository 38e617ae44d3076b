/** The pure parts of a PPO rollout: prompt draws, the padded batch and its mask, penalties. */
import assert from "node:assert/strict";
import { drawPrompts, penalisedScores, rolloutBatch } from "../src/train/rollout.ts";
import { rng } from "../src/stages/context.ts";

Deno.test("drawPrompts repeats each drawn prompt samplesPerPrompt times, seeded", () => {
  const pool = ["a", "b", "c", "d", "e"];
  const draw = (seed: number) => drawPrompts(pool, 4, 3, rng(seed, 9000));
  const qs = draw(1);
  assert.equal(qs.length, 12);
  for (let g = 0; g < 4; g++) {
    assert.deepEqual(qs.slice(3 * g, 3 * g + 3), Array(3).fill(qs[3 * g]));
  }
  assert.deepEqual(draw(1), qs, "same seed, same prompts (a resumed run repeats its iteration)");
  // By hand: the first draw of the stream picks floor(u * 5).
  assert.equal(qs[0], pool[Math.floor(rng(1, 9000)() * 5)]);
  const seen = new Set(Array.from({ length: 50 }, (_, s) => draw(s)).flat());
  assert.equal(seen.size, 5, "every prompt can be drawn");
});

Deno.test("rolloutBatch pads to a scored width of a multiple of 8 and masks response tokens", () => {
  // prompt [5, 6] + response [7, 8, 9]; prompt [5] + response [7].
  const { B, T, ids, mask } = rolloutBatch([[5, 6, 7, 8, 9], [5, 7]], [2, 1], 0);
  assert.equal(B, 2);
  assert.equal(T, 9); // 5 tokens score 4 next tokens: width 4, padded to 8
  assert.deepEqual([...ids], [5, 6, 7, 8, 9, 0, 0, 0, 0, 5, 7, 0, 0, 0, 0, 0, 0, 0]);
  // Position j scores token j+1: row 0 scores 7, 8, 9 at j = 1, 2, 3; row 1 scores 7 at j = 0.
  assert.deepEqual([...mask], [0, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(rolloutBatch([Array(9).fill(1)], [1], 0).T, 9);
  assert.equal(rolloutBatch([Array(10).fill(1)], [1], 0).T, 17);
});

Deno.test("penalisedScores subtracts each earned penalty, rounded to f32 as stored", () => {
  const scores = Float32Array.from([0.7, 0.7, 0.7, 0.7]);
  const out = penalisedScores(scores, [
    { hasAnswer: true, endedWithEos: true },
    { hasAnswer: false, endedWithEos: true },
    { hasAnswer: true, endedWithEos: false },
    { hasAnswer: false, endedWithEos: false },
  ], { noAnswer: 1, noEos: 0.5 });
  const f = Math.fround;
  assert.deepEqual([...out], [f(0.7), f(f(0.7) - 1), f(f(0.7) - 0.5), f(f(f(0.7) - 1) - 0.5)]);
  assert.equal(scores[1], f(0.7), "the input is not changed");
});
