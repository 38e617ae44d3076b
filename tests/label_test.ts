/** Pseudo-labels by majority vote of the teacher's responses, all of them or the worked ones. */
import assert from "node:assert/strict";
import { majorityLabels } from "../src/stages/label.ts";
import type { ResponseRow } from "../src/run/rows.ts";

const row = (id: string, text: string): ResponseRow => {
  const answer = text.match(/#### (\d+)/)?.[1] ?? null;
  return { id, prompt: "", temperature: 1, sample: 0, text, answer, finish: "eos", tokens: 1 };
};
const groups = new Map([
  // a: three guesses outvote one worked answer; worked voters follow the calculation.
  ["a", [row("a", "2+3=5 #### 5"), row("a", "#### 7"), row("a", "#### 7"), row("a", "#### 7")]],
  // b: guesses only: no worked voter, so no label.
  ["b", [row("b", "#### 4"), row("b", "#### 4")]],
  // c: worked answers 6, 6, 5 against guesses 5, 5, 5.
  ["c", [
    ...["1+5=6 #### 6", "1+5=6 #### 6", "1+4=5 #### 5", "#### 5", "#### 5", "#### 5"].map((t) =>
      row("c", t)
    ),
  ]],
]);

Deno.test("majority labels: every response votes by default", () => {
  const got = majorityLabels(groups, 0.6);
  assert.deepEqual(got.map((l) => [l.id, l.pseudo_label, l.agreement, l.kept]), [
    ["a", "7", 0.75, true],
    ["b", "4", 1, true],
    ["c", "5", 4 / 6, true],
  ]);
});

Deno.test("majority labels with voters worked: only worked responses vote, agreement is their share", () => {
  const got = majorityLabels(groups, 0.6, "worked");
  assert.deepEqual(got.map((l) => [l.id, l.pseudo_label, l.agreement, l.kept]), [
    ["a", "5", 1, true],
    ["b", null, 0, false],
    ["c", "6", 2 / 3, true],
  ]);
});
