/** PPO's prompts: the share of training questions kept out of SFT, at the edge of the student's reach. */
import assert from "node:assert/strict";
import { arithmeticSettings, rlQuestionIds } from "../src/stages/context.ts";
import { generateArithmetic, VALIDATION_SEED } from "../src/tasks/arithmetic.ts";
import { configSchema } from "../src/run/config.ts";
import { validate } from "../src/util/schema.ts";
import type { Question } from "../src/tasks/types.ts";
import type { ResponseRow } from "../src/run/rows.ts";
import {
  edgePrompts,
  freshPrompts,
  passRates,
  promptsInOrder,
  runPrompts,
} from "../src/stages/rl_prompts.ts";
import { goldAccuracy } from "../src/stages/ppo.ts";
import { makeTask } from "../src/tasks/task.ts";

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

const row = (id: string, reward: number): ResponseRow => ({
  id,
  prompt: "",
  temperature: 1,
  sample: 0,
  text: "",
  answer: null,
  finish: "eos",
  tokens: 1,
  reward,
});

Deno.test("passRates and edgePrompts keep the prompts the SFT student sometimes solves", () => {
  const rows = [
    ...[0, 0, 0, 0].map((r) => row("q0", r)),
    ...[1, 0, 0, 0].map((r) => row("q1", r)),
    ...[1, 1, 0, 1].map((r) => row("q2", r)),
    ...[1, 1, 1, 1].map((r) => row("q3", r)),
    // The judge's "not yet judged" marker is not a pass.
    ...[-1, 1].map((r) => row("q4", r)),
  ];
  const rates = passRates(rows);
  assert.deepEqual(Object.fromEntries(rates), { q0: 0, q1: 0.25, q2: 0.75, q3: 1, q4: 0.5 });
  // q5 was never sampled (its pseudo-label was dropped): rate 0.
  const ids = (min: number, max: number) =>
    edgePrompts(train.slice(0, 6), rates, min, max).map((q) => q.id);
  assert.deepEqual(ids(0.25, 1), ["q1", "q2", "q3", "q4"]);
  assert.deepEqual(ids(0.25, 0.75), ["q1", "q2", "q4"]);
  assert.deepEqual(ids(0, 1), ["q0", "q1", "q2", "q3", "q4", "q5"]);
  assert.deepEqual(ids(0.9, 0.95), []);
});

Deno.test("ppo.freshPrompts: new questions, none a training or held-out one, drawn in order without repeats", () => {
  const cfg = validate(
    configSchema,
    { task: { arithmetic: { maxNumber: 5, maxSteps: 1, trainCount: 40, testCount: 20 } } },
    "test",
  );
  const gen = (seed: number, count: number) =>
    generateArithmetic(arithmeticSettings(cfg, seed, count));
  const train = gen(cfg.task.arithmetic.trainSeed, 40);
  const test = gen(cfg.task.arithmetic.testSeed, 20);
  // Seeding the fresh pool with the training seed must still give no training question.
  const sameSeed = {
    ...cfg,
    task: { ...cfg.task, arithmetic: { ...cfg.task.arithmetic, rlSeed: 1001 } },
  };
  for (const c of [cfg, sameSeed]) {
    const fresh = freshPrompts({ cfg: c, train, test }, 30);
    assert.equal(fresh.length, 30);
    const old = new Set([...train, ...test].map((q) => q.prompt));
    assert.ok(fresh.every((q) => !old.has(q.prompt) && q.id.startsWith("rl-")));
    assert.equal(new Set(fresh.map((q) => q.prompt)).size, 30);
  }
  const pool = ["a", "b", "c", "d", "e"];
  const drawn = [0, 1].map((it) => promptsInOrder(pool, it, 2, 3));
  assert.deepEqual(drawn, [["a", "a", "a", "b", "b", "b"], ["c", "c", "c", "d", "d", "d"]]);
  assert.deepEqual(promptsInOrder(pool, 2, 2, 1), ["e", "a"]);
  const gsm = { ...cfg, task: { ...cfg.task, kind: "gsm8k" as const } };
  assert.throws(() => freshPrompts({ cfg: gsm, train, test }, 3), /generated task/);
  assert.throws(() => freshPrompts({ cfg, train, test }, 100_000), /lower ppo.freshPrompts/);
});

Deno.test("runPrompts: every question a run can meet, PPO's fresh prompts included", () => {
  const settings = { maxNumber: 9, maxSteps: 1, trainCount: 60, testCount: 30 };
  const cfg = validate(
    configSchema,
    { task: { arithmetic: settings }, ppo: { freshPrompts: 50 } },
    "test",
  );
  const a = cfg.task.arithmetic;
  const gen = (seed: number, count: number) =>
    generateArithmetic(arithmeticSettings(cfg, seed, count));
  const train = gen(a.trainSeed, a.trainCount);
  const test = gen(a.testSeed, a.testCount);
  const validation = gen(VALIDATION_SEED, a.testCount);
  const fresh = freshPrompts({ cfg, train, test }, cfg.ppo.freshPrompts);
  const reserved = runPrompts(cfg);
  for (const q of [...train, ...test, ...validation, ...fresh]) {
    assert.ok(reserved.has(q.prompt), q.prompt);
  }
  // Without fresh prompts the rlSeed questions are not the run's.
  const noFresh = validate(configSchema, { task: { arithmetic: settings } }, "test");
  const others = new Set([...train, ...test, ...validation].map((q) => q.prompt));
  assert.ok(fresh.some((q) => !others.has(q.prompt)));
  assert.deepEqual(runPrompts(noFresh), others);
});

Deno.test("goldAccuracy: the share of responses whose final answer is the gold one", () => {
  const task = makeTask("arithmetic");
  const qs = [{ gold: "14" }, { gold: "14" }, { gold: "7" }, { gold: "30" }];
  const texts = [" 12+2=14\n#### 14", " #### 41", " 3+4=7\n#### 7", " 10+20=30"];
  // The last has no "####" line; the task's extract falls back to its last number.
  const answers = texts.map((t) => task.extract(t));
  assert.equal(goldAccuracy(answers, qs), 3 / 4);
  assert.equal(goldAccuracy(answers.slice(0, 3), qs.slice(0, 3)), 2 / 3);
  assert.equal(goldAccuracy([task.extract(" #### 1")], [{ gold: "" }]), null);
});
