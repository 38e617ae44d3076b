/**
 * The effect study's arithmetic (paired standard error, aggregation across
 * seeds) and the study end to end on tiny inputs, with every reward source
 * plugged into the same PPO loop.
 */
import assert from "node:assert/strict";
import { aggregate, meanSe, normalCdf, pairedDifference } from "../src/pipeline/effect.ts";
import type { EvalResult } from "../src/stages/eval.ts";
import { assertClose } from "./support/assert.ts";

Deno.test("the paired difference on a known case: mean, standard error, z and p", () => {
  const T = true;
  const F = false;
  const sft = [[T, F, T, F], [T, T, F, F]];
  const ppo = [[T, T, T, F], [T, T, T, T]];
  // Per question, averaged over the two seeds: 0, 0.5, 0.5, 0.5.
  const d = pairedDifference(sft, ppo);
  assert.equal(d.n, 4);
  assertClose([d.mean, d.se, d.z], [0.375, 0.125, 3], { atol: 1e-12 });
  assertClose([d.p], [0.0026998], { rtol: 1e-3 });
  assertClose([normalCdf(1.959964)], [0.975], { atol: 1e-6 });
  assert.throws(() => pairedDifference(sft, [ppo[0]]), /different seeds or questions/);
});

function fakeEval(sft: boolean[], ppo: boolean[], teacher: number): EvalResult {
  const acc = (x: boolean[]) => x.filter(Boolean).length / x.length;
  // pass@8 rows: every question solved by some sample, for both students.
  const all = sft.map(() => true);
  return {
    questions: sft.length,
    rows: {
      "teacher pass@1": { strict: teacher, flexible: teacher },
      "SFT student": { strict: acc(sft), flexible: acc(sft) },
      "SFT student pass@8": { pass: 1 },
      "PPO student": { strict: acc(ppo), flexible: acc(ppo) },
      "PPO student pass@8": { pass: 1 },
    },
    perQuestion: {
      "SFT student": { strict: sft, flexible: sft },
      "SFT student pass@8": { pass: all },
      "PPO student": { strict: ppo, flexible: ppo },
      "PPO student pass@8": { pass: all },
    },
    pseudoLabels: { all: 0.8, kept: 0.9, keptFraction: 0.5 },
    rewardModel: { accuracy: 0.7, auc: 0.8, aucWithinQuestion: 0.6, n: 100 },
    finalKl: { "PPO student": 0.5 },
    workedShare: {},
    params: { teacher: null, student: 0 },
    tokensGenerated: 0,
    compute: {
      "SFT student": { tokensGenerated: 0, tokensTrained: 0, wallSeconds: 0 },
      "PPO student": { tokensGenerated: 100 * teacher, tokensTrained: 1000, wallSeconds: 10 },
    },
  };
}

Deno.test("aggregation across seeds: per-seed values, mean ± SE, and the paired difference", () => {
  const T = true;
  const F = false;
  const results = [
    { seed: 0, eval: fakeEval([T, F, F, F], [T, T, F, F], 0.9) },
    { seed: 1, eval: fakeEval([T, T, F, F], [T, T, T, F], 0.8) },
    { seed: 2, eval: fakeEval([F, F, F, F], [T, F, F, F], 0.7) },
  ];
  const agg = aggregate(results);
  const teacher = agg.rows.find((r) => r.name === "teacher pass@1")!;
  assert.deepEqual(teacher.perSeed, [0.9, 0.8, 0.7]);
  assertClose([teacher.summary.mean, teacher.summary.se], [0.8, 0.1 / Math.sqrt(3)], {
    atol: 1e-12,
  });
  const ppo = agg.rows.find((r) => r.name === "PPO student")!;
  assert.deepEqual(ppo.perSeed, [0.5, 0.75, 0.25]);
  const sftRow = agg.rows.find((r) => r.name === "SFT student")!;
  assertClose([meanSe(sftRow.perSeed).mean], [0.25]);
  // Every question gains 1/3 on average: questions 0..2 gain in one seed each, question 3 never.
  const d = agg.differences["PPO student − SFT student"];
  assertClose([d.mean], [0.25], { atol: 1e-12 });
  assert.equal(d.n, 4);
  // pass@8 is paired with the SFT student's pass@8, never with its greedy accuracy.
  assert.deepEqual(Object.keys(agg.differences).sort(), [
    "PPO student pass@8 − SFT student pass@8",
    "PPO student − SFT student",
  ]);
  assert.equal(agg.differences["PPO student pass@8 − SFT student pass@8"].mean, 0);
  assert.deepEqual(agg.finalKl[0].perSeed, [0.5, 0.5, 0.5]);
  // Compute is the mean over seeds (the fake PPO row generated 100 × the teacher's accuracy).
  assertClose([agg.compute["PPO student"].tokensGenerated], [80], { atol: 1e-9 });
  assert.equal(agg.compute["PPO student"].tokensTrained, 1000);
  // No ablation reward model ran: no row for it.
  assert.ok(!agg.rows.some((r) => r.name.startsWith("teacher-only reward model")));
  // Where it ran (ppo.rewards "model-teacher"), its held-out AUC gets a row per seed.
  results.forEach((r, i) => {
    r.eval.rewardModelTeacherOnly = {
      accuracy: 0.6,
      auc: 0.6 + i / 10,
      aucWithinQuestion: 0.5,
      n: 9,
    };
  });
  const ablation = aggregate(results).rows.find((r) =>
    r.name === "teacher-only reward model held-out AUC (gold)"
  )!;
  assertClose(ablation.perSeed, [0.6, 0.7, 0.8], { atol: 1e-12 });
  // The within-style AUC gets rows only where a seed measured it; a seed without: NaN.
  assert.ok(!agg.rows.some((r) => r.name.includes("worked answers (gold)")));
  results[0].eval.rewardModel!.aucWithinQuestionByStyle = { worked: 0.45, answerOnly: 0.5 };
  results[1].eval.rewardModel!.aucWithinQuestionByStyle = { worked: 0.95, answerOnly: 0.75 };
  const byStyle = aggregate(results).rows;
  const styleAuc = (n: string) =>
    byStyle.find((r) => r.name === `reward model held-out AUC within a question, ${n} (gold)`)!
      .perSeed;
  assert.deepEqual(styleAuc("worked answers"), [0.45, 0.95, NaN]);
  assert.deepEqual(styleAuc("answer-only"), [0.5, 0.75, NaN]);
  // The fresh prompts' label accuracy and what the match pays wrong answers: rows only where a
  // seed measured them.
  assert.ok(!agg.rows.some((r) => r.name.startsWith("pseudo-label match pays")));
  assert.ok(!agg.rows.some((r) => r.name.includes("fresh prompts")));
  results[2].eval.pseudoLabels.fresh = { all: 0.8, kept: 0.9, keptFraction: 0.7 };
  results[1].eval.pseudoLabels.paidByStyle = {
    worked: { right: 0.95, wrong: 0.05 },
    answerOnly: { right: 0.94, wrong: 0.31 },
  };
  const labelled = aggregate(results).rows;
  const perSeed = (n: string) => labelled.find((r) => r.name === n)!.perSeed;
  assert.deepEqual(perSeed("pseudo-labels right (PPO's fresh prompts, kept)"), [NaN, NaN, 0.9]);
  assert.deepEqual(perSeed("PPO's fresh prompts kept"), [NaN, NaN, 0.7]);
  assert.deepEqual(
    perSeed("pseudo-label match pays wrong answer-only answers (student-generate)"),
    [NaN, 0.31, NaN],
  );
  assert.deepEqual(
    perSeed("pseudo-label match pays wrong worked answers (student-generate)"),
    [NaN, 0.05, NaN],
  );
  // Runs from before styles were kept have no style rows; with styles, per seed by hand.
  assert.ok(!agg.rows.some((r) => r.name.startsWith("SFT student: ")));
  results.forEach((r) => {
    r.eval.perQuestionWorked = { "SFT student": [T, T, F, F], "PPO student": [T, T, T, T] };
  });
  const styled = aggregate(results).rows;
  const styleRow = (n: string) => styled.find((r) => r.name === n)!.perSeed;
  assert.deepEqual(styleRow("SFT student: greedy answers worked"), [0.5, 0.5, 0.5]);
  assert.deepEqual(styleRow("SFT student: worked answers right"), [0.5, 1, 0]);
  // Questions 2 and 3 switched to worked: seed 1 gained question 2 (1/4), the others none.
  assert.deepEqual(styleRow("PPO student: points from answer-only → worked"), [0, 0.25, 0]);
});

Deno.test("the effect study runs every seed and reward source on tiny inputs", async () => {
  const root = new URL("../", import.meta.url).pathname;
  const runs = await Deno.makeTempDir({ prefix: "effect-test-" });
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${root}src/cli/effect.ts`,
      "--config",
      `${root}tests/fixtures/configs/tiny.json`,
      "--set",
      `runsDir=${runs}`,
      "--set",
      "name=study",
      "--set",
      "effect.seeds=[3,4]",
      "--set",
      "ppo.rewards=[model,pseudo,gold]",
      "--set",
      "ppo.freshPrompts=16",
      "--set",
      "eval.passK=2",
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  for (const seed of [3, 4]) {
    for (const dir of ["ppo", "ppo-pseudo", "ppo-gold"]) {
      await Deno.stat(`${runs}/study-seed${seed}/${dir}/latest.json`);
    }
  }
  // The second seed reused the first seed's teacher responses, to the training questions and to
  // the pseudo reward's fresh prompts.
  for (const sub of ["teacher", "teacher-rl"]) {
    assert.match(stderr, new RegExp(`seed 4 reuses .*study-seed3/${sub}\n`));
    const a = await Deno.readTextFile(`${runs}/study-seed3/${sub}/u00000.jsonl`);
    const b = await Deno.readTextFile(`${runs}/study-seed4/${sub}/u00000.jsonl`);
    assert.equal(a, b, sub);
  }
  const report = JSON.parse(await Deno.readTextFile(`${runs}/study/report.json`));
  const names = report.rows.map((r: { name: string }) => r.name);
  for (
    const n of [
      "teacher pass@1",
      "teacher maj@2",
      "SFT student",
      "SFT student pass@2",
      "PPO student",
      "PPO student (pseudo-label reward)",
      "PPO student (gold reward)",
      "reward model held-out AUC (gold)",
    ]
  ) {
    assert.ok(names.includes(n), `row ${n} in ${names}`);
  }
  assert.ok(report.differences["PPO student − SFT student"]);
  const md = await Deno.readTextFile(`${runs}/study/report.md`);
  assert.match(md, /\| seed 3 \| seed 4 \| mean ± SE \|/);
  assert.match(md, /PPO student \(gold reward\) − SFT student: [+-]?\d/);
  await Deno.remove(runs, { recursive: true });
});
