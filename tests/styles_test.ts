/**
 * The style account of an eval (src/stages/styles.ts) on hand-made rows:
 * accuracy by style, and a difference split by how each answer changed style.
 */
import assert from "node:assert/strict";
import { styleAccount, styleGap, styleSwitches } from "../src/stages/styles.ts";
import { assertClose } from "./support/assert.ts";

const T = true;
const F = false;

Deno.test("styleGap: accuracy of worked and answer-only answers, counted by hand", () => {
  const g = styleGap([T, F, T, F, F], [T, T, F, F, F]);
  assert.deepEqual(g, {
    worked: { n: 2, accuracy: 0.5 },
    answerOnly: { n: 3, accuracy: 1 / 3 },
  });
});

Deno.test("styleSwitches: four cells whose contributions sum to the whole difference", () => {
  // Six questions: 0-1 worked both times, 2-3 answer-only -> worked, 4 worked -> answer-only,
  // 5 answer-only both times.
  const before = { correct: [T, F, F, F, T, F], worked: [T, T, F, F, T, F] };
  const after = { correct: [T, T, T, T, F, F], worked: [T, T, T, T, F, F] };
  const cells = styleSwitches(before, after);
  const cell = (from: string, to: string) => cells.find((c) => c.from === from && c.to === to)!;
  assert.deepEqual(
    { ...cell("answer-only", "worked") },
    { from: "answer-only", to: "worked", n: 2, before: 0, after: 1, contribution: 2 / 6 },
  );
  assertClose([cell("worked", "worked").before, cell("worked", "worked").after], [0.5, 1], {
    atol: 1e-12,
  });
  assertClose([cell("worked", "answer-only").contribution], [-1 / 6], { atol: 1e-12 });
  assert.equal(cell("answer-only", "answer-only").n, 1);
  // A cell without questions has no accuracy and adds nothing.
  const none = styleSwitches(before, before).find((c) => c.from === "worked" && c.to !== "worked")!;
  assert.ok(none.n === 0 && Number.isNaN(none.before) && none.contribution === 0);
  const rate = (xs: boolean[]) => xs.filter(Boolean).length / xs.length;
  const total = cells.reduce((s, c) => s + c.contribution, 0);
  assertClose([total], [rate(after.correct) - rate(before.correct)], { atol: 1e-12 });
  assert.throws(() => styleSwitches(before, { correct: [T], worked: [T] }), /different questions/);
});

Deno.test("styleAccount: gaps for every greedy row, switches for students beside SFT", () => {
  const perQuestion = {
    "teacher pass@1": { correct: [T, T, F] },
    "SFT student": { correct: [F, T, F] },
    "PPO student": { correct: [T, T, F] },
  };
  const worked = {
    "teacher pass@1": [T, T, T],
    "SFT student": [F, T, T],
    "PPO student": [T, T, T],
  };
  const a = styleAccount(perQuestion, worked)!;
  assert.deepEqual(Object.keys(a.gaps), Object.keys(worked));
  assert.deepEqual(Object.keys(a.switches), ["PPO student"]);
  assert.equal(a.switches["PPO student"].find((c) => c.from === "answer-only")!.n, 1);
  assert.equal(styleAccount(perQuestion, undefined), null);
});
