/**
 * The pipeline end to end on tiny inputs, through `deno task distill`'s own
 * entry point in a subprocess: every stage's outputs, resume after kill -9
 * in generation and in training, and one-line errors for bad input.
 */
import assert from "node:assert/strict";
import { readJsonl, withServeProcess, withServer } from "./support/serve.ts";
import { answerStyle, generateArithmetic } from "../src/tasks/arithmetic.ts";
import { loadConfig } from "../src/util/schema.ts";
import { configSchema } from "../src/run/config.ts";
import { makeContext } from "../src/stages/context.ts";
import { gkdResponses } from "../src/stages/gkd.ts";
import { initGpu } from "../src/gpu/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLI = `${ROOT}src/cli/distill.ts`;
const TINY = `${ROOT}tests/fixtures/configs/tiny.json`;

function distill(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--config", TINY, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  });
}

async function runToEnd(args: string[]) {
  const out = await distill(args).output();
  const stderr = new TextDecoder().decode(out.stderr);
  // (The XDG_RUNTIME_DIR line is Deno's harmless warning, not ours.)
  const errors = stderr.split("\n").filter((l) =>
    l.startsWith("error:") && !l.includes("XDG_RUNTIME_DIR")
  );
  return { code: out.code, stderr, errors };
}

/** Starts a run and SIGKILLs it as soon as `path` exists. */
async function killWhen(args: string[], path: string) {
  const child = distill(args).spawn();
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      await Deno.stat(path);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  child.kill("SIGKILL");
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  return status;
}

async function readJson(path: string) {
  return JSON.parse(await Deno.readTextFile(path));
}

/** The parts of a report that must not depend on interruptions (not wall times). */
function stable(report: Record<string, unknown>) {
  const compute = (report.compute as Record<string, number | string>[]).map((
    { wallSeconds: _, ...rest },
  ) => rest);
  return {
    eval: report.eval,
    pseudoLabels: report.pseudoLabels,
    rewardModel: report.rewardModel,
    compute,
  };
}

const dir = await Deno.makeTempDir({ prefix: "distill-test-" });

Deno.test("every stage runs on tiny inputs and writes its outputs", async () => {
  const { code, stderr } = await runToEnd(["--set", `runsDir=${dir}`, "--name", "straight"]);
  assert.equal(code, 0, stderr);
  const run = `${dir}/straight`;
  // Each stage's pooled buffers are freed when it ends (a study of 3 seeds held 17 GB of them).
  for (const stage of ["teacher-generate", "sft", "ppo", "eval"]) {
    const freed = stderr.match(
      new RegExp(`^${stage}: freed (\\d+) MB of pooled GPU buffers$`, "m"),
    );
    assert.ok(freed, `${stage}: no "freed" line`);
  }
  const stages = await readJson(`${run}/stages.json`);
  assert.deepEqual(Object.keys(stages), [
    "teacher-generate",
    "label",
    "sft",
    "student-generate",
    "reward-train",
    "ppo",
    "sft-baselines",
    "gkd",
    "eval",
  ]);
  // 24 questions x 2 temperatures x 1 sample.
  assert.equal(stages["teacher-generate"].responses, 48);
  const labels = await readJson(`${run}/labels.json`);
  assert.equal(labels.length, 24);
  for (const l of labels) assert.ok(l.agreement >= 0 && l.agreement <= 1);
  assert.equal((await readJson(`${run}/sft/latest.json`)).step, 8);
  // ppo.promptShare 0.25: the last 6 questions are PPO's prompts, and SFT never sees them.
  const rl = new Set([18, 19, 20, 21, 22, 23].map((i) => `arith-1001-${i}`));
  const byId = new Map(labels.map((l: { id: string }) => [l.id, l]));
  const teacher = (await Array.fromAsync(Deno.readDir(`${run}/teacher`)))
    .filter((e) => e.name.endsWith(".jsonl"));
  let positives = 0;
  let allPositives = 0;
  let worked = 0;
  for (const e of teacher) {
    for (const r of await readJsonl(`${run}/teacher/${e.name}`)) {
      const l = byId.get(r.id) as { kept: boolean; pseudo_label: string } | undefined;
      if (!(l?.kept && r.answer === l.pseudo_label)) continue;
      if (!rl.has(r.id)) positives++;
      allPositives++;
      if (r.text.split("####")[0].includes("=")) worked++;
    }
  }
  assert.equal(stages.sft.examples, positives);
  // The label stage counts the positives of every question and how many work a calculation.
  assert.equal(stages.label.positives, allPositives);
  assert.equal(stages.label.positivesWorked, worked / allPositives);
  assert.ok(stages["student-generate"].responses > 0);
  assert.ok(stages["reward-train"].heldOut.n > 0);
  assert.equal((await readJson(`${run}/ppo/latest.json`)).step, 2);
  const report = await readJson(`${run}/report.json`);
  assert.deepEqual(Object.keys(report.eval.rows), [
    "teacher pass@1",
    "teacher maj@2",
    "SFT student",
    "PPO student",
  ]);
  // Both sizes, and the PPO student's paired difference recomputed from the per-question scores.
  assert.equal(report.params.teacher, 450_624);
  assert.ok(report.params.student > 0 && report.params.student < report.params.teacher);
  const perQ = (await readJson(`${run}/eval/results.json`)).perQuestion;
  const d = perQ["PPO student"].strict.map((v: boolean, i: number) =>
    Number(v) - Number(perQ["SFT student"].strict[i])
  );
  const mean = d.reduce((a: number, b: number) => a + b, 0) / d.length;
  const sd = Math.sqrt(d.reduce((a: number, b: number) => a + (b - mean) ** 2, 0) / (d.length - 1));
  const diff = report.differences["PPO student − SFT student"];
  assert.ok(Math.abs(diff.mean - mean) < 1e-12 && Math.abs(diff.se - sd / Math.sqrt(12)) < 1e-12);
  // The teacher's worked answers write calculations; the share right is a fraction.
  const eqs = report.equationAccuracy["teacher pass@1"];
  assert.ok(eqs > 0.5 && eqs <= 1, JSON.stringify(report.equationAccuracy));
  // The style split covers every question and adds up to the paired difference.
  const gap = report.styles.gaps["SFT student"];
  assert.equal(gap.worked.n + gap.answerOnly.n, 12);
  const cells = report.styles.switches["PPO student"] as { contribution: number }[];
  const split = cells.reduce((s, c) => s + c.contribution, 0);
  assert.ok(Math.abs(split - diff.mean) < 1e-12, `${split} vs ${diff.mean}`);
  const md = await Deno.readTextFile(`${run}/report.md`);
  assert.match(md, /\| teacher pass@1 \|/);
  assert.match(md, /\| answer-only → worked \| \d+ \|/);
  assert.equal(report.positivesWorked, stages.label.positivesWorked);
  assert.match(md, /Of the teacher's positive responses, \d+\.\d% are worked/);
  assert.match(md, /Calculations in those answers that are right/);
  assert.match(md, /PPO student − SFT student: [+-]\d+\.\d ± \d+\.\d points/);
  assert.match(md, /\| sft \| 0 \| [\d,]+ \|/);
  const metrics = await readJsonl(`${run}/metrics.jsonl`);
  for (const name of ["reward", "kl", "entropy", "clipfrac", "value_loss", "response_length"]) {
    assert.ok(metrics.some((m) => m.stage === "ppo" && m.name === name), `ppo logs ${name}`);
  }
});

Deno.test("ppo.evalEvery: the test-split curve during PPO ends at eval's PPO row", async () => {
  // The straight run's first four stages, with the guess teacher standing in for the SFT student: a
  // policy that answers, in both styles, so that the curve is not all zeros and the worked share
  // not all or nothing.
  const run = await afterStudentGenerate("curve");
  const sft = (await readJson(`${run}/sft/latest.json`)).dir;
  await Deno.remove(`${run}/${sft}`, { recursive: true });
  await new Deno.Command("cp", {
    args: ["-r", `${ROOT}models/arith-teacher-guess`, `${run}/${sft}`],
  })
    .output();
  const sets = [
    "reward.steps=0",
    'ppo.rewards=["gold"]',
    "ppo.advantage=group",
    "ppo.samplesPerPrompt=2",
    "ppo.evalEvery=1",
  ].flatMap((s) => ["--set", s]);
  const { code, stderr } = await runToEnd([...sets, "--set", `runsDir=${dir}`, "--name", "curve"]);
  assert.equal(code, 0, stderr);
  const report = await readJson(`${run}/report.json`);
  const metrics = await readJsonl(`${run}/metrics.jsonl`);
  const curve = (name: string) =>
    metrics.filter((m) => m.stage === "ppo-gold" && m.name === name).map((m) => [m.step, m.value]);
  assert.deepEqual(curve("eval_strict").map(([s]) => s), [0, 1]);
  const row = "PPO student (gold reward)";
  const worked = report.workedShare[row];
  assert.ok(report.eval.rows[row].strict > 0 && worked > 0 && worked < 1, JSON.stringify(report));
  assert.equal(curve("eval_strict")[1][1], report.eval.rows[row].strict);
  assert.equal(curve("eval_flexible")[1][1], report.eval.rows[row].flexible);
  assert.equal(curve("eval_worked_share")[1][1], report.workedShare[row]);
  // The report carries the curve, by iterations done.
  assert.deepEqual(report.ppoCurves[row], {
    metric: "strict",
    points: curve("eval_strict").map(([s, v]) => [s + 1, v]),
  });
  const md = await Deno.readTextFile(`${run}/report.md`);
  assert.match(
    md,
    /PPO student \(gold reward\), strict on the test questions by iterations done \(ppo\.evalEvery\): 0 \(SFT\) \d+\.\d%, 1 \d+\.\d%, 2 \d+\.\d%\./,
  );
});

Deno.test("PPO arms and baselines added to a finished run: the same command runs only what they need, then evaluates again", async () => {
  const run = await afterStudentGenerate("add-arm");
  const base = ["--set", `runsDir=${dir}`, "--name", "add-arm", "--set", "ppo.iterations=1"];
  const arms = (a: string) => [...base, "--set", `ppo.rewards=${a}`];
  const first = await runToEnd(arms('["gold"]'));
  assert.equal(first.code, 0, first.stderr);
  const before = await readJson(`${run}/stages.json`);
  const goldSteps = async () =>
    (await readJsonl(`${run}/metrics.jsonl`)).filter((m) =>
      m.stage === "ppo-gold" && m.name === "reward"
    ).length;
  const stepsBefore = await goldSteps();

  const second = await runToEnd(arms('["gold","pseudo"]'));
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /ppo: done earlier without the PPO arms pseudo; running it again/);
  assert.match(second.stderr, /eval: an earlier stage ran again; evaluating again/);
  assert.match(second.stderr, /reward-train: done earlier, skipped/);
  const after = await readJson(`${run}/stages.json`);
  // The gold arm resumed at its last checkpoint: no iteration more, the same student.
  assert.equal(await goldSteps(), stepsBefore);
  assert.equal(after.ppo.gold.tokensGenerated, before.ppo.gold.tokensGenerated);
  assert.equal(after.ppo.gold.tokensTrained, before.ppo.gold.tokensTrained);
  const gold = "PPO student (gold reward)";
  assert.deepEqual(after.eval.rows[gold], before.eval.rows[gold]);
  assert.ok(after.ppo.pseudo.tokensGenerated > 0);
  const report = await readJson(`${run}/report.json`);
  assert.ok("PPO student (pseudo-label reward) − SFT student" in report.differences);

  // The paper's ablation arm needs a second reward model: reward-train runs again for it; and two
  // baselines switched on run in their own stages.
  const more = ["gkd.steps=1", "baselines.equalComputeSft=true", "baselines.teacherSftSteps=1"]
    .flatMap((s) => ["--set", s]);
  const third = await runToEnd([...arms('["gold","pseudo","model-teacher"]'), ...more]);
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stderr, /reward-train: done earlier without the teacher-only reward model/);
  assert.match(
    third.stderr,
    /sft-baselines: done earlier without the fine-tuned teacher and equal-compute SFT/,
  );
  assert.match(third.stderr, /gkd: done earlier without on-policy distillation/);
  const stages = await readJson(`${run}/stages.json`);
  assert.ok("teacherOnly" in stages["reward-train"]);
  assert.ok("model-teacher" in stages.ppo);
  assert.ok(
    "equalComputeSft" in stages["sft-baselines"] && "teacherSft" in stages["sft-baselines"],
  );
  assert.equal(stages.gkd.steps, 1);
  const rows = Object.keys((await readJson(`${run}/report.json`)).eval.rows);
  for (const r of ["GKD student", "SFT student (equal compute)", "fine-tuned teacher pass@1"]) {
    assert.ok(rows.includes(r), rows.join(", "));
  }

  // Nothing more asked: everything is skipped.
  const fourth = await runToEnd([...arms('["gold","pseudo","model-teacher"]'), ...more]);
  assert.equal(fourth.code, 0, fourth.stderr);
  assert.match(fourth.stderr, /ppo: done earlier, skipped/);
  assert.match(fourth.stderr, /eval: done earlier, skipped/);

  // A stage run again alone (as when a run stops before eval) leaves eval to be redone.
  const vote = [
    ...arms('["gold","pseudo","model-teacher","vote"]'),
    "--set",
    "ppo.samplesPerPrompt=2",
  ];
  const alone = await runToEnd(["ppo", ...vote, ...more]);
  assert.equal(alone.code, 0, alone.stderr);
  assert.ok(!("eval" in await readJson(`${run}/stages.json`)));
  const sixth = await runToEnd([...vote, ...more]);
  assert.equal(sixth.code, 0, sixth.stderr);
  assert.doesNotMatch(sixth.stderr, /eval: done earlier/);
  const evaluated = Object.keys((await readJson(`${run}/report.json`)).eval.rows);
  assert.ok(evaluated.includes("PPO student (online majority reward)"), evaluated.join(", "));

  // A key changed inside a done stage does not redo it, and the log says so.
  const fifth = await runToEnd([
    ...vote,
    ...more,
    "--set",
    "ppo.lr=5e-5",
  ]);
  assert.equal(fifth.code, 0, fifth.stderr);
  assert.match(
    fifth.stderr,
    /ppo: done earlier with other settings \(ppo\.lr [0-9.e-]+ → 0\.00005\), skipped/,
  );
  assert.match(fifth.stderr, /sft: done earlier, skipped/);
});

Deno.test("the reward model's held-out AUC within one style agrees with a brute-force count against gold", async () => {
  const run = `${dir}/straight`;
  const held: { id: string; answer: string | null; style: string; score: number }[] =
    await readJson(`${run}/rm/heldout.json`);
  // Each held-out row's style is that of a response to its question with its answer.
  const responses: { id: string; answer: string | null; text: string; reward: number }[] = [];
  let studentCount = 0;
  for (const sub of ["teacher", "student"]) {
    const before = responses.length;
    for (
      const e of [...Deno.readDirSync(`${run}/${sub}`)].filter((e) => e.name.endsWith(".jsonl"))
    ) {
      responses.push(...await readJsonl(`${run}/${sub}/${e.name}`));
    }
    studentCount = responses.length - before;
  }
  const written = new Set(responses.map((r) => `${r.id}|${r.answer}|${answerStyle(r.text)}`));
  for (const h of held) assert.ok(written.has(`${h.id}|${h.answer}|${h.style}`), JSON.stringify(h));
  // The tiny config's training questions (task.arithmetic defaults, 24 of seed 1001).
  const gold = new Map(tinyQuestions(1001, 24).map((q) => [q.id, Number(q.gold)]));
  const right = (h: typeof held[number]) =>
    h.answer !== null && Number(h.answer) === gold.get(h.id);
  const bruteForce = (style: string) => {
    let wins = 0, pairs = 0;
    for (const p of held.filter((h) => h.style === style && right(h))) {
      for (const n of held.filter((h) => h.style === style && h.id === p.id && !right(h))) {
        wins += p.score > n.score ? 1 : p.score === n.score ? 0.5 : 0;
        pairs++;
      }
    }
    return pairs ? wins / pairs : null; // (NaN is null in report.json)
  };
  const m = (await readJson(`${run}/report.json`)).rewardModel;
  for (const [style, key] of [["worked", "worked"], ["answer-only", "answerOnly"]]) {
    const want = bruteForce(style);
    const got = m.aucWithinQuestionByStyle[key];
    if (want === null) assert.equal(got, null, style);
    else assert.ok(Math.abs(got - want) < 1e-12, `${style}: ${got} against ${want}`);
    // What PPO is paid (the tiny config's rewardModelOutput: probability), by gold and style.
    for (const [r, which] of [[true, "right"], [false, "wrong"]] as const) {
      const some = held.filter((h) => h.style === style && right(h) === r);
      const mean = some.reduce((s, h) => s + 1 / (1 + Math.exp(-h.score)), 0) / some.length;
      const paid = m.paidByStyle[key][which];
      if (!some.length) assert.equal(paid, null, `${style} ${which}`);
      else assert.ok(Math.abs(paid - mean) < 1e-12, `${style} ${which}: ${paid} against ${mean}`);
    }
  }
  assert.match(
    await Deno.readTextFile(`${run}/report.md`),
    /within a question's answers \d\.\d{3} \(within one style: worked (\d\.\d{3}|NaN), answer-only/,
  );
  assert.match(
    await Deno.readTextFile(`${run}/report.md`),
    /Mean reward paid: worked answers right (\d\.\d{3}|NaN), wrong (\d\.\d{3}|NaN); answer-only/,
  );
  // What the pseudo-label match pays the student's samples of training questions, by gold and
  // style: each student row's own reward, counted here.
  const students = responses.filter((_, i) => i >= responses.length - studentCount);
  const p = (await readJson(`${run}/report.json`)).pseudoLabels.paidByStyle;
  for (const [style, key] of [["worked", "worked"], ["answer-only", "answerOnly"]]) {
    for (const [r, which] of [[true, "right"], [false, "wrong"]] as const) {
      const some = students.filter((s) =>
        answerStyle(s.text) === style &&
        (s.answer !== null && Number(s.answer) === gold.get(s.id)) === r
      );
      const mean = some.reduce((a, s) => a + s.reward, 0) / some.length;
      if (!some.length) assert.equal(p[key][which], null, `${style} ${which}`);
      else assert.equal(p[key][which], mean, `${style} ${which}`);
    }
  }
  assert.match(
    await Deno.readTextFile(`${run}/report.md`),
    /The pseudo-label match pays the SFT student's samples of them \(student-generate\): worked answers right/,
  );
});

/** Questions of the tiny config's generated task (task.arithmetic defaults) at one seed. */
function tinyQuestions(seed: number, count: number) {
  return generateArithmetic({
    seed,
    count,
    minNumber: 1,
    maxNumber: 30,
    minSteps: 1,
    maxSteps: 2,
    ops: ["+", "-"],
    nonNegative: true,
  });
}

/** A run folder holding the straight run's stages up to student-generate, marked done. */
async function afterStudentGenerate(name: string): Promise<string> {
  const run = `${dir}/${name}`;
  await Deno.mkdir(run, { recursive: true });
  for (const part of ["teacher", "labels.json", "sft", "student"]) {
    await new Deno.Command("cp", { args: ["-r", `${dir}/straight/${part}`, run] }).output();
  }
  const stages = await readJson(`${dir}/straight/stages.json`);
  const { "reward-train": _, ppo: _p, eval: _e, ...before } = stages;
  await Deno.writeTextFile(`${run}/stages.json`, JSON.stringify(before));
  return run;
}

Deno.test("a design screened at SFT's cost: eval alone after sft reports the style ceiling, no PPO row", async () => {
  const run = await afterStudentGenerate("screen");
  const { code, stderr } = await runToEnd([
    "eval",
    "--set",
    `runsDir=${dir}`,
    "--name",
    "screen",
  ]);
  assert.equal(code, 0, stderr);
  const report = await readJson(`${run}/report.json`);
  assert.deepEqual(Object.keys(report.eval.rows), [
    "teacher pass@1",
    "teacher maj@2",
    "SFT student",
  ]);
  assert.deepEqual(report.styles.switches, {});
  const g = report.styles.gaps["SFT student"];
  assert.equal(g.worked.n + g.answerOnly.n, 12);
  // The SFT row is the straight run's own (same checkpoint, greedy).
  const straight = await readJson(`${dir}/straight/report.json`);
  assert.deepEqual(report.eval.rows["SFT student"], straight.eval.rows["SFT student"]);
});

Deno.test("reward.init starts the reward model from another checkpoint with the student's tokenizer", async () => {
  // The straight run's first four stages, then reward-train alone.
  const run = await afterStudentGenerate("rm-init");
  const base = ["reward-train", "--set", `runsDir=${dir}`, "--name", "rm-init"];
  const teacher = `${ROOT}models/arith-teacher`;
  const ok = await runToEnd([...base, "--set", `reward.init=${teacher}`]);
  assert.equal(ok.code, 0, ok.stderr);
  const latest = await readJson(`${run}/rm/latest.json`);
  const rmConfig = await readJson(`${run}/${latest.dir}/config.json`);
  const teacherConfig = await readJson(`${teacher}/config.json`);
  assert.equal(rmConfig.hidden_size, teacherConfig.hidden_size);
  assert.notEqual(
    rmConfig.hidden_size,
    (await readJson(`${run}/sft/ckpt-000008/config.json`)).hidden_size,
  );
  // PPO feeds the reward model the student's token ids: another tokenizer is refused.
  await Deno.remove(`${run}/rm`, { recursive: true });
  const bad = await runToEnd([
    ...base,
    "--set",
    `reward.init=${ROOT}tests/fixtures/stories260K`,
  ]);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.errors.length, 1, bad.stderr);
  assert.match(
    bad.errors[0],
    /^error: reward-train: reward\.init .*stories260K has a different tokenizer/,
  );
});

Deno.test("reward.responses=teacher trains the reward model on the teacher's responses only, alone or as a PPO arm beside the method's", async () => {
  const run = await afterStudentGenerate("rm-teacher-only");
  const ok = await runToEnd([
    "reward-train",
    "--set",
    `runsDir=${dir}`,
    "--name",
    "rm-teacher-only",
    "--set",
    "reward.responses=teacher",
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const both = (await readJson(`${dir}/straight/stages.json`))["reward-train"];
  const only = (await readJson(`${run}/stages.json`))["reward-train"];
  const studentRows = (await readJson(`${dir}/straight/stages.json`))["student-generate"].responses;
  // The student's rows are gone from training; the held-out set is the same.
  assert.ok(only.train > 0 && only.train < both.train, `${only.train} vs ${both.train}`);
  assert.ok(only.train + studentRows >= both.train);
  assert.equal(only.heldOut.n, both.heldOut.n);

  // ppo.rewards "model-teacher": the same ablation as a second reward model beside the
  // method's, and a PPO arm against it, in one run.
  const arm = await afterStudentGenerate("rm-teacher-arm");
  const sets = ['ppo.rewards=["model","model-teacher"]', "ppo.iterations=2"]
    .flatMap((s) => ["--set", s]);
  const done = await runToEnd([...sets, "--set", `runsDir=${dir}`, "--name", "rm-teacher-arm"]);
  assert.equal(done.code, 0, done.stderr);
  const stages = await readJson(`${arm}/stages.json`);
  const rt = stages["reward-train"];
  assert.equal(rt.train, both.train);
  assert.deepEqual(rt.teacherOnly.train, only.train);
  // The ablation's reward model is the one reward.responses=teacher trains, score for score.
  assert.deepEqual(
    await readJson(`${arm}/rm-teacher/heldout.json`),
    await readJson(`${run}/rm/heldout.json`),
  );
  const ckpt = (await readJson(`${arm}/ppo-model-teacher/latest.json`)).dir;
  await Deno.stat(`${arm}/${ckpt}/policy/model.safetensors`);
  const report = await readJson(`${arm}/report.json`);
  const row = "PPO student (reward model on teacher responses)";
  assert.ok(row in report.eval.rows, Object.keys(report.eval.rows).join(", "));
  assert.ok(`${row} − SFT student` in report.differences);
  assert.equal(report.rewardModelTeacherOnly.n, rt.heldOut.n);
  // Each arm's compute counts its own reward model: the method's needs the student's samples.
  const cost = report.methodCompute;
  assert.equal(
    cost[row].tokensTrained,
    rt.teacherOnly.tokensTrained + stages.ppo["model-teacher"].tokensTrained,
  );
  assert.equal(cost[row].tokensGenerated, stages.ppo["model-teacher"].tokensGenerated);
  assert.equal(
    cost["PPO student"].tokensTrained,
    rt.tokensTrained - rt.teacherOnly.tokensTrained + stages.ppo.model.tokensTrained,
  );
  assert.match(
    await Deno.readTextFile(`${arm}/report.md`),
    /Reward model trained on teacher responses only on held-out responses, against gold correctness: accuracy/,
  );
});

Deno.test("reward.pairs=question trains with same-question pairs; the held-out AUC within a question is reported", async () => {
  const run = await afterStudentGenerate("rm-question-pairs");
  const ok = await runToEnd([
    "reward-train",
    "--set",
    `runsDir=${dir}`,
    "--name",
    "rm-question-pairs",
    "--set",
    "reward.pairs=question",
    "--set",
    "reward.pairwiseWeight=1",
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const held = (await readJson(`${run}/stages.json`))["reward-train"].heldOut;
  assert.ok(held.n > 0);
  assert.ok(held.aucWithinQuestion >= 0 && held.aucWithinQuestion <= 1, JSON.stringify(held));
  const losses = (await readJsonl(`${run}/metrics.jsonl`))
    .filter((m) => m.stage === "reward-train" && m.name === "loss");
  assert.ok(losses.length > 0 && losses.every((m) => Number.isFinite(m.value)));
});

Deno.test("gkd: on-policy distillation from the SFT student, with its own eval row", async () => {
  const run = await afterStudentGenerate("gkd");
  const sets = ["gkd.steps=4", "gkd.lmbda=1", "gkd.batchSize=4", "gkd.checkpointEvery=2"]
    .flatMap((s) => ["--set", s]);
  for (const stage of ["gkd", "eval"]) {
    const ok = await runToEnd([stage, ...sets, "--set", `runsDir=${dir}`, "--name", "gkd"]);
    assert.equal(ok.code, 0, ok.stderr);
  }
  assert.equal((await readJson(`${run}/gkd/latest.json`)).step, 4);
  const metrics = (await readJsonl(`${run}/metrics.jsonl`)).filter((m) => m.stage === "gkd");
  const losses = metrics.filter((m) => m.name === "loss");
  assert.equal(losses.length, 4);
  // Divergences are >= 0; lmbda 1: every step's responses are the student's own.
  assert.ok(losses.every((m) => Number.isFinite(m.value) && m.value >= 0));
  assert.ok(metrics.filter((m) => m.name === "on_policy").every((m) => m.value === 1));
  const stages = await readJson(`${run}/stages.json`);
  assert.ok(stages.gkd.tokensGenerated > 0 && stages.gkd.tokensTrained > 0);
  const results = await readJson(`${run}/eval/results.json`);
  assert.ok("GKD student" in results.rows);
  // An HTTP teacher cannot score tokens without its weights (teacher.checkpoint): one line.
  const bad = await runToEnd([
    "gkd",
    ...sets,
    "--set",
    `runsDir=${dir}`,
    "--name",
    "gkd-http",
    "--set",
    "teacher.source.kind=http",
    "--set",
    "teacher.source.baseUrl=http://127.0.0.1:9/v1",
    "--set",
    "teacher.source.model=m",
  ]);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.errors.length, 1, bad.stderr);
  assert.match(bad.errors[0], /^error: config: gkd.steps needs the teacher's weights/);
});

Deno.test("sft-baselines: the teacher fine-tuned on the SFT data, and equal-compute SFT", async () => {
  // The whole straight run, up to and including PPO.
  const run = `${dir}/sft-baselines`;
  await new Deno.Command("cp", { args: ["-r", `${dir}/straight`, run] }).output();
  const stages = await readJson(`${run}/stages.json`);
  for (const k of ["sft-baselines", "gkd", "eval"]) delete stages[k];
  await Deno.writeTextFile(`${run}/stages.json`, JSON.stringify(stages));
  await Deno.remove(`${run}/eval`, { recursive: true });
  const sets = ["baselines.teacherSftSteps=3", "baselines.equalComputeSft=true"]
    .flatMap((s) => ["--set", s]);
  const ok = await runToEnd([...sets, "--set", `runsDir=${dir}`, "--name", "sft-baselines"]);
  assert.equal(ok.code, 0, ok.stderr);
  const done = (await readJson(`${run}/stages.json`))["sft-baselines"];
  assert.equal((await readJson(`${run}/teacher-sft/latest.json`)).step, 3);
  // The fine-tuned teacher is the teacher's shape, not the student's.
  const tuned = await readJson(
    `${run}/${(await readJson(`${run}/teacher-sft/latest.json`)).dir}/config.json`,
  );
  assert.equal(
    tuned.hidden_size,
    (await readJson(`${ROOT}models/arith-teacher/config.json`)).hidden_size,
  );
  // Equal compute: the first step count whose batches reach PPO's tokens.
  const ppoTokens = stages.ppo.model.tokensTrained;
  const eq = done.equalComputeSft;
  assert.equal(eq.ppoTokensTrained, ppoTokens);
  assert.ok(eq.tokensTrained >= ppoTokens, `${eq.tokensTrained} < ${ppoTokens}`);
  const steps = (await readJson(`${run}/sft-equal/latest.json`)).step;
  assert.ok(eq.tokensTrained - ppoTokens < eq.tokensTrained / steps, "one step too many");
  const rows = (await readJson(`${run}/report.json`)).eval.rows;
  for (
    const r of [
      "fine-tuned teacher pass@1",
      "fine-tuned teacher maj@2",
      "SFT student (equal compute)",
    ]
  ) {
    assert.ok(r in rows, `${r} missing: ${Object.keys(rows)}`);
  }
  const diffs = (await readJson(`${run}/report.json`)).differences;
  assert.ok("SFT student (equal compute) − SFT student" in diffs);
  // Each row's compute beyond the SFT student, from the stages' own summaries.
  const cost = (await readJson(`${run}/report.json`)).methodCompute;
  const all = await readJson(`${run}/stages.json`);
  const gen = all["student-generate"].tokensGenerated;
  assert.deepEqual(cost["SFT student"], { tokensGenerated: 0, tokensTrained: 0, wallSeconds: 0 });
  assert.equal(cost["PPO student"].tokensGenerated, gen + all.ppo.model.tokensGenerated);
  assert.equal(
    cost["PPO student"].tokensTrained,
    all["reward-train"].tokensTrained + all.ppo.model.tokensTrained,
  );
  assert.equal(cost["SFT student (equal compute)"].tokensTrained, eq.tokensTrained);
  assert.equal(cost["SFT student (equal compute)"].tokensGenerated, gen);
  assert.equal(
    cost["fine-tuned teacher pass@1"].tokensTrained,
    done.teacherSft.tokensTrained,
  );
  assert.match(
    await Deno.readTextFile(`${run}/report.md`),
    /\| SFT student \(equal compute\) \| [\d,]+ \| [\d,]+ \| [\d.]+ s \|/,
  );
});

Deno.test("reward.steps 0 keeps the initial model as the reward model, with only its logprob fit", async () => {
  const run = await afterStudentGenerate("rm-steps0");
  const sets = [
    "reward.score=min-logprob",
    `reward.init=${ROOT}models/arith-teacher`,
    "reward.steps=0",
  ]
    .flatMap((s) => ["--set", s]);
  const ok = await runToEnd([
    "reward-train",
    ...sets,
    "--set",
    `runsDir=${dir}`,
    "--name",
    "rm-steps0",
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const latest = await readJson(`${run}/rm/latest.json`);
  assert.equal(latest.step, 0);
  // The teacher's weights, unchanged.
  assert.deepEqual(
    await Deno.readFile(`${run}/${latest.dir}/model.safetensors`),
    await Deno.readFile(`${ROOT}models/arith-teacher/model.safetensors`),
  );
  assert.equal((await readJson(`${run}/rm/reward_head.json`)).reduce, "min");
});

Deno.test("a min-logprob reward model from the teacher, and PPO with group advantages", async () => {
  // The straight run's first four stages, then the rest with the two options.
  const run = await afterStudentGenerate("logprob-group");
  const sets = [
    // (The mean's path is the same but for the reduction; tests/logprob_reward_test.ts checks both.)
    "reward.score=min-logprob",
    `reward.init=${ROOT}models/arith-teacher`,
    "ppo.advantage=group",
    "ppo.samplesPerPrompt=3",
    "ppo.promptsPerIteration=2",
    "ppo.miniBatch=4",
    "ppo.rewardModelOutput=probability",
    'ppo.rewards=["model","gold","vote"]',
    "eval.bestOfN=[2,3]",
  ].flatMap((s) => ["--set", s]);
  const ok = await runToEnd([...sets, "--set", `runsDir=${dir}`, "--name", "logprob-group"]);
  assert.equal(ok.code, 0, ok.stderr);
  const head = await readJson(`${run}/rm/reward_head.json`);
  assert.equal(head.kind, "logprob");
  assert.equal(head.reduce, "min");
  assert.ok(Number.isFinite(head.scale) && Number.isFinite(head.bias));
  // The reward model is the teacher's LM, fine-tuned: no score head.
  const latest = await readJson(`${run}/rm/latest.json`);
  assert.deepEqual((await readJson(`${run}/${latest.dir}/config.json`)).architectures, [
    "LlamaForCausalLM",
  ]);
  const held = await readJson(`${run}/rm/heldout.json`);
  assert.ok(held.length > 0 && held.every((h: { score: number }) => Number.isFinite(h.score)));
  // No value model with group advantages; rewards on the 0-1 scale.
  for (const rel of ["ppo", "ppo-gold", "ppo-vote"]) {
    const ckpt = (await readJson(`${run}/${rel}/latest.json`)).dir;
    await Deno.stat(`${run}/${ckpt}/policy/model.safetensors`);
    await assert.rejects(Deno.stat(`${run}/${ckpt}/value`));
  }
  const metrics = await readJsonl(`${run}/metrics.jsonl`);
  const rewards = metrics.filter((m) => m.stage === "ppo" && m.name === "reward");
  assert.equal(rewards.length, 2);
  // Probabilities, less the penalties for a missing answer or EOS (1 each).
  for (const r of rewards) assert.ok(r.value >= -2 && r.value <= 1, `reward ${r.value}`);
  assert.ok(metrics.some((m) => m.stage === "ppo-gold" && m.name === "trained_fraction"));
  // Every arm logs the share of gold answers; with gold rewards the reward is that share less the
  // penalties, so it is never above it.
  const gold = (stage: string) =>
    metrics.filter((m) => m.stage === stage && m.name === "gold_accuracy").map((m) => m.value);
  for (const stage of ["ppo", "ppo-gold", "ppo-vote"]) {
    assert.equal(gold(stage).length, 2, stage);
    assert.ok(gold(stage).every((v) => v >= 0 && v <= 1), `${stage}: ${gold(stage)}`);
  }
  const goldRewards = metrics.filter((m) => m.stage === "ppo-gold" && m.name === "reward");
  goldRewards.forEach((r, i) => assert.ok(r.value <= gold("ppo-gold")[i] + 1e-9));
  const report = await readJson(`${run}/report.json`);
  assert.ok("PPO student (gold reward)" in report.eval.rows);
  assert.ok("PPO student (online majority reward)" in report.eval.rows);
  // Best-of-n with the reward model: 3 scored samples per question, a row and a paired
  // difference per n.
  const bestOf = await readJson(`${run}/eval/best_of.json`);
  assert.equal(bestOf.length, 12);
  for (const q of bestOf) {
    assert.equal(q.scores.length, 3);
    assert.ok(q.scores.every(Number.isFinite));
  }
  for (const n of [2, 3]) {
    const acc = report.eval.rows[`Best-of-${n} (reward model)`].strict;
    assert.ok(acc >= 0 && acc <= 1);
    assert.ok(`Best-of-${n} (reward model) − SFT student` in report.differences);
  }
  // One clear line when group advantages have no group.
  const bad = await runToEnd([
    "ppo",
    "--set",
    `runsDir=${dir}`,
    "--name",
    "logprob-group",
    "--set",
    "ppo.advantage=group",
  ]);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.errors.length, 1, bad.stderr);
  assert.match(bad.errors[0], /^error: ppo: advantage "group" .*samplesPerPrompt must be >= 2/);
});

Deno.test("ppo.freshPrompts: PPO on new questions, which the teacher labels for the pseudo reward", async () => {
  const run = await afterStudentGenerate("fresh");
  const sets = [
    "ppo.freshPrompts=10",
    "ppo.promptsPerIteration=5",
    'ppo.rewards=["pseudo","gold"]',
    // With two teacher draws a question is kept only when both agree (labels.json is already made).
    "label.minAgreement=1",
  ].flatMap((s) => ["--set", s]);
  const ok = await runToEnd(["ppo", ...sets, "--set", `runsDir=${dir}`, "--name", "fresh"]);
  assert.equal(ok.code, 0, ok.stderr);
  // The teacher answered each fresh question with its configured draws (2 temperatures x 1), and
  // none of them is a training question.
  const shards = async (rel: string) => {
    const rows: { id: string; prompt: string; answer: string | null; text: string }[] = [];
    for await (const f of Deno.readDir(`${run}/${rel}`)) {
      rows.push(...await readJsonl(`${run}/${rel}/${f.name}`));
    }
    return rows;
  };
  const train = new Set((await shards("teacher")).map((r) => r.prompt));
  const rows = await shards("teacher-rl");
  assert.equal(rows.length, 20);
  assert.ok(rows.every((r) => r.id.startsWith("rl-") && !train.has(r.prompt)));
  // GKD on the same prompts: its off-policy share is the teacher's answers to them that agree with
  // a kept majority (both draws alike here, label.minAgreement 1), read back from teacher-rl/.
  const cfg = await loadConfig(configSchema, TINY, [
    `runsDir=${dir}`,
    "name=fresh",
    "ppo.freshPrompts=10",
    "label.minAgreement=1",
  ]);
  await initGpu(); // the teacher is opened, though every answer is read back
  const gkd = await gkdResponses(await makeContext(cfg, () => {}));
  const agreed = [...Map.groupBy(rows, (r) => r.id).values()]
    .filter((rs) => rs.every((r) => r.answer !== null && r.answer === rs[0].answer)).flat();
  const key = (r: { id: string; text: string }) => `${r.id}\t${r.text}`;
  assert.ok(agreed.length > 0, "no fresh prompt kept: the check is empty");
  assert.deepEqual(gkd.rows.map(key).sort(), agreed.map(key).sort());
  const distilled = await runToEnd([
    "gkd",
    ...sets,
    ..."gkd.steps=1 gkd.batchSize=2 gkd.lmbda=0".split(" ").flatMap((k) => ["--set", k]),
    "--set",
    `runsDir=${dir}`,
    "--name",
    "fresh",
  ]);
  assert.equal(distilled.code, 0, distilled.stderr);
  assert.equal((await shards("teacher-rl")).length, 20); // nothing generated again
  const summary = (await readJson(`${run}/stages.json`)).ppo;
  assert.ok(summary.pseudo.tokensGenerated > summary.gold.tokensGenerated);
  for (const rel of ["ppo-pseudo", "ppo-gold"]) await Deno.stat(`${run}/${rel}/latest.json`);
  // The pseudo reward draws only the questions whose teacher majority reaches label.minAgreement
  // (counted here from the teacher's answers), gold every fresh question; with
  // ppo.keptPromptsOnly gold draws the pseudo reward's prompts.
  const bar = (await readJson(`${run}/config.json`)).label.minAgreement;
  const keptCount = (vote: (r: typeof rows[number]) => boolean) => {
    const answers = new Map<string, (string | null)[]>();
    for (const r of rows.filter(vote)) answers.set(r.id, [...(answers.get(r.id) ?? []), r.answer]);
    return [...answers.values()].filter((as) => {
      const votes = as.filter((a) => a !== null).map((a) => as.filter((b) => b === a).length);
      return votes.length > 0 && Math.max(...votes) / as.length >= bar;
    }).length;
  };
  const kept = keptCount(() => true);
  assert.ok(kept < 10, `every fresh question kept (${kept}): the test cannot tell the pools apart`);
  assert.equal(summary.pseudo.prompts, kept);
  assert.equal(summary.gold.prompts, 10);
  // Eval reports how right those labels are, against the fresh prompts' gold answers.
  const evaluated = await runToEnd(["eval", ...sets, "--set", `runsDir=${dir}`, "--name", "fresh"]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  // The fresh prompts come from the generator at task.arithmetic.rlSeed (4004).
  const goldOf = new Map(tinyQuestions(4004, 200).map((q) => [q.prompt, Number(q.gold)]));
  const keptRight =
    [...Map.groupBy(rows, (r) => r.id).values()].filter((rs) =>
      rs.every((r) => r.answer !== null && r.answer === rs[0].answer) &&
      Number(rs[0].answer) === goldOf.get(rs[0].prompt)
    ).length;
  const fresh = (await readJson(`${run}/report.json`)).pseudoLabels.fresh;
  assert.equal(fresh.keptFraction, kept / 10);
  assert.equal(fresh.kept, keptRight / kept);
  await afterStudentGenerate("fresh-kept");
  await Deno.mkdir(`${dir}/fresh-kept/teacher-rl`);
  for await (const f of Deno.readDir(`${run}/teacher-rl`)) {
    await Deno.copyFile(`${run}/teacher-rl/${f.name}`, `${dir}/fresh-kept/teacher-rl/${f.name}`);
  }
  // With label.voters "worked" only the teacher's worked answers vote.
  const keptWorked = keptCount((r) => answerStyle(r.text) === "worked");
  assert.notEqual(keptWorked, kept, "the test cannot tell the voters apart");
  const keptOnly = await runToEnd([
    "ppo",
    ...sets,
    "--set",
    'ppo.rewards=["gold"]',
    "--set",
    "ppo.keptPromptsOnly=true",
    "--set",
    "label.voters=worked",
    "--set",
    `runsDir=${dir}`,
    "--name",
    "fresh-kept",
  ]);
  assert.equal(keptOnly.code, 0, keptOnly.stderr);
  assert.equal((await readJson(`${dir}/fresh-kept/stages.json`)).ppo.gold.prompts, keptWorked);
  // The edge filter needs the student's samples of each prompt, which fresh prompts lack.
  await afterStudentGenerate("fresh-edge");
  const bad = await runToEnd([
    "ppo",
    ...sets,
    "--set",
    "ppo.minPassRate=0.1",
    "--set",
    `runsDir=${dir}`,
    "--name",
    "fresh-edge",
  ]);
  assert.equal(bad.errors.length, 1, bad.stderr);
  assert.match(
    bad.errors[0],
    /^error: ppo: ppo.minPassRate\/maxPassRate .*fresh prompts have none/,
  );
});

Deno.test("kill -9 during generation and during training, then the same command: the same report", async () => {
  const args = ["--set", `runsDir=${dir}`, "--name", "killed"];
  const run = `${dir}/killed`;
  // Mid teacher-generate: after its second unit of four.
  await killWhen(args, `${run}/teacher/u00001.jsonl`);
  assert.equal(await Deno.stat(`${run}/teacher/u00003.jsonl`).then(() => true, () => false), false);
  // Mid sft: after its first checkpoint (step 3 of 8).
  await killWhen(args, `${run}/sft/latest.json`);
  assert.ok((await readJson(`${run}/sft/latest.json`)).step < 8);
  // The killed attempts' seconds, recorded before each unit and checkpoint.
  const spent = await readJson(`${run}/stage_time.json`);
  assert.ok(spent["teacher-generate"] > 0 && spent.sft > 0, JSON.stringify(spent));
  // Mid reward-train: after its first checkpoint (step 2 of 4); its tokens trained must still
  // count the steps before the resume.
  await killWhen(args, `${run}/rm/latest.json`);
  assert.ok((await readJson(`${run}/rm/latest.json`)).step < 4);
  // Mid ppo: after its first iteration's checkpoint (of 2). Each PPO arm and SFT run keeps its
  // own clock, so a method's compute row counts its interrupted attempts too.
  await killWhen(args, `${run}/ppo/latest.json`);
  const armSpent = await readJson(`${run}/arm_time.json`);
  assert.ok(armSpent.sft > 0 && armSpent.ppo > 0, JSON.stringify(armSpent));
  const { code, stderr } = await runToEnd(args);
  assert.equal(code, 0, stderr);
  const a = await readJson(`${dir}/straight/report.json`);
  const b = await readJson(`${run}/report.json`);
  assert.deepEqual(stable(b), stable(a));
  // A resumed stage's wall time counts its interrupted attempt too.
  const wall = (stage: string) =>
    b.compute.find((c: { stage: string }) => c.stage === stage).wallSeconds;
  assert.ok(wall("teacher-generate") > spent["teacher-generate"]);
  assert.ok(wall("sft") > spent.sft);
  const arms = await readJson(`${run}/stages.json`);
  const armFinal = await readJson(`${run}/arm_time.json`);
  assert.ok(armFinal.ppo > armSpent.ppo, JSON.stringify(armFinal));
  assert.equal(arms.ppo.model.wallSeconds, armFinal.ppo);
  assert.ok(arms.sft.wallSeconds >= armSpent.sft);
  // The final student is bit-identical too.
  const weights = async (r: string) => {
    const l = await readJson(`${r}/sft/latest.json`);
    return await Deno.readFile(`${r}/${l.dir}/model.safetensors`);
  };
  assert.deepEqual(await weights(run), await weights(`${dir}/straight`));
});

Deno.test("bad input stops the run with one line naming the fault", async () => {
  const bad = `${dir}/bad.jsonl`;
  await Deno.writeTextFile(
    bad,
    '{"question": "a", "answer": "#### 1"}\n{"question": "b", "answer": "#### 2"}\n{not json}\n',
  );
  const cases: [string[], RegExp][] = [
    [
      ["--set", "sft.lrr=1"],
      /^error: override "sft\.lrr=1": unknown key sft\.lrr \(did you mean sft\.lr\?\)$/,
    ],
    [["--set", "sft.steps=many"], /^error: .*sft\.steps.*must be an integer/],
    [[
      "--set",
      "task.kind=gsm8k",
      "--set",
      "task.train=/nonexistent/train.jsonl",
      "--set",
      "task.test=/nonexistent/test.jsonl",
    ], /^error: \/nonexistent\/train\.jsonl: file not found$/],
    [
      ["--set", "task.kind=gsm8k", "--set", `task.train=${bad}`, "--set", `task.test=${bad}`],
      new RegExp(`^error: ${bad}:3: not valid JSON`),
    ],
    [
      [
        "--set",
        "teacher.source.kind=http",
        "--set",
        "teacher.source.baseUrl=http://127.0.0.1:9/v1",
        "--set",
        "teacher.source.model=m",
        "--set",
        "teacher.source.maxRetries=1",
        "--set",
        `runsDir=${dir}`,
        "--name",
        "unreachable",
      ],
      /^error: teacher http:\/\/127\.0\.0\.1:9\/v1: unreachable after 2 tries/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const { code, errors, stderr } = await runToEnd(args);
    assert.equal(code, 1, stderr);
    assert.equal(errors.length, 1, stderr);
    assert.match(errors[0], pattern);
    assert.ok(!/\n\s+at /.test(stderr), `stack trace in: ${stderr}`);
  }
});

Deno.test("a NaN loss stops training naming stage and step, keeping the last good checkpoint", async () => {
  // Warm-up gives step 0 a learning rate of 0; from step 1 on 1e38 blows the weights up.
  const args = [
    "--set",
    `runsDir=${dir}`,
    "--name",
    "nan",
    "--set",
    "sft.lr=1e38",
    "--set",
    "sft.warmupSteps=2",
    "--set",
    "sft.checkpointEvery=1",
  ];
  const { code, errors, stderr } = await runToEnd(args);
  assert.equal(code, 1, stderr);
  assert.equal(errors.length, 1, stderr);
  const m = errors[0].match(/^error: sft: loss is (NaN|Infinity|-Infinity) at step (\d+)$/);
  assert.ok(m, errors[0]);
  const latest = await readJson(`${dir}/nan/sft/latest.json`);
  assert.ok(latest.step <= Number(m[2]), `checkpoint ${latest.step} after the bad step ${m[2]}`);
  await Deno.stat(`${dir}/nan/${latest.dir}/model.safetensors`);
});

Deno.test("a real teacher over HTTP: the project's own OpenAI-compatible server", async () => {
  // The server runs in its own process, serving the committed teacher checkpoint.
  const runDir = await Deno.makeTempDir({ prefix: "teacher-server-" });
  await Deno.writeTextFile(`${runDir}/config.json`, "{}");
  const serveArgs = ["--run", runDir, "--model", `${ROOT}models/arith-teacher-worked`];
  await withServeProcess(ROOT, serveArgs, async (url) => {
    const { code, stderr } = await runToEnd([
      "--set",
      `runsDir=${dir}`,
      "--name",
      "http-teacher",
      "--set",
      "teacher.source.kind=http",
      "--set",
      `teacher.source.baseUrl=${url}/v1`,
      "--set",
      "teacher.source.model=arith-teacher-worked",
      "--set",
      "teacher.source.api=completions",
      "--set",
      "teacher.source.concurrency=4",
    ]);
    assert.equal(code, 0, stderr);
    const rows = await readJsonl(`${dir}/http-teacher/teacher/u00000.jsonl`);
    // The served teacher solves the generated problems: nearly every response has an answer.
    assert.ok(
      rows.filter((r) => r.answer !== null).length >= rows.length * 0.8,
      JSON.stringify(rows[0]),
    );
    const report = await readJson(`${dir}/http-teacher/report.json`);
    assert.ok(report.eval.rows["teacher pass@1"].strict >= 0.75, JSON.stringify(report.eval.rows));
  });
});

Deno.test("a student sampled by a serving engine: our own server of the SFT checkpoint stands in for vLLM", async () => {
  const base = ["--set", `runsDir=${dir}`, "--name", "served-student"];
  for (const stage of ["teacher-generate", "label", "sft"]) {
    const { code, stderr } = await runToEnd([stage, ...base]);
    assert.equal(code, 0, stderr);
  }
  const run = `${dir}/served-student`;
  const sft = `${run}/${(await readJson(`${run}/sft/latest.json`)).dir}`;
  // The same run, copied before anything samples the student: its eval runs locally.
  await new Deno.Command("cp", { args: ["-r", run, `${dir}/local-student`] }).output();

  const runDir = await Deno.makeTempDir({ prefix: "student-server-" });
  await Deno.writeTextFile(`${runDir}/config.json`, "{}");
  await withServeProcess(ROOT, ["--run", runDir, "--model", sft], async (url) => {
    const http = (key: string) => [
      "--set",
      `${key}.kind=http`,
      "--set",
      `${key}.baseUrl=${url}/v1`,
      "--set",
      `${key}.model=${sft.split("/").pop()}`,
      "--set",
      `${key}.api=completions`,
    ];
    for (
      const [stage, key] of [["student-generate", "studentGenerate.source"], [
        "eval",
        "eval.sftSource",
      ]]
    ) {
      const { code, stderr } = await runToEnd([stage, ...base, ...http(key)]);
      assert.equal(code, 0, stderr);
    }
  });
  const { code, stderr } = await runToEnd([
    "eval",
    "--set",
    `runsDir=${dir}`,
    "--name",
    "local-student",
  ]);
  assert.equal(code, 0, stderr);

  // Every kept question got `samples` responses from the server, labelled against its pseudo-label.
  const labels = new Map<string, { pseudo_label: string; kept: boolean }>(
    (await readJson(`${run}/labels.json`)).map((l: { id: string }) => [l.id, l]),
  );
  const rows = (await Promise.all(
    [...Deno.readDirSync(`${run}/student`)].map((f) => readJsonl(`${run}/student/${f.name}`)),
  )).flat();
  const kept = [...labels.values()].filter((l) => l.kept).length;
  assert.equal(rows.length, kept * 2);
  for (const r of rows) {
    assert.equal(
      r.reward,
      r.answer !== null && r.answer === labels.get(r.id)!.pseudo_label ? 1 : 0,
    );
    // (A character-level tokenizer: one token per character.)
    assert.equal(r.tokens, r.text.length, JSON.stringify(r));
  }
  // Greedy answers from the server are the local engine's, token for token.
  const texts = async (name: string) =>
    (await Promise.all(
      [...Deno.readDirSync(`${dir}/${name}/eval/sft-greedy`)].sort((a, b) =>
        a.name.localeCompare(b.name)
      ).map((f) => readJsonl(`${dir}/${name}/eval/sft-greedy/${f.name}`)),
    )).flat().map((r) => `${r.id} ${r.text}`);
  const served = await texts("served-student");
  assert.equal(served.length, 12);
  assert.deepEqual(served, await texts("local-student"));
  const [a, b] = await Promise.all(
    ["served-student", "local-student"].map((n) => readJson(`${dir}/${n}/eval/results.json`)),
  );
  assert.deepEqual(a.rows["SFT student"], b.rows["SFT student"]);
});

Deno.test("judge mode: an OpenAI-compatible judge scores teacher and student responses", async () => {
  // A real HTTP judge, rule-based so the test knows its verdicts: it rates a
  // response 9 when the response has a "####" final answer, else 1.
  const { Hono } = await import("hono");
  const app = new Hono();
  let calls = 0;
  app.post("/v1/completions", async (c) => {
    const body = await c.req.json();
    calls++;
    const prompt = String(body.prompt);
    const response = prompt.slice(prompt.lastIndexOf("[Response]"));
    const text = response.includes("####") ? "9" : "1";
    return c.json({
      id: "j",
      object: "text_completion",
      model: body.model,
      choices: Array.from(
        { length: body.n ?? 1 },
        (_, index) => ({ index, text, finish_reason: "stop" }),
      ),
    });
  });
  await withServer(app, async (base) => {
    const args = [
      "--set",
      `runsDir=${dir}`,
      "--name",
      "judge",
      "--set",
      "label.mode=judge",
      "--set",
      "label.judge.source.kind=http",
      "--set",
      `label.judge.source.baseUrl=${base}`,
      "--set",
      "label.judge.source.model=judge",
      "--set",
      "label.judge.source.api=completions",
    ];
    const { code, stderr } = await runToEnd(args);
    assert.equal(code, 0, stderr);
    const labels = await readJson(`${dir}/judge/labels.json`);
    const teacher = await readJsonl(`${dir}/judge/teacher/u00000.jsonl`);
    const first = labels.find((l: { id: string }) => l.id === teacher[0].id);
    // The verdict recorded for a response is the judge's rule applied to it.
    assert.equal(
      first.judged[`${teacher[0].temperature}:${teacher[0].sample}`],
      teacher[0].text.includes("####"),
    );
    const judged = await readJson(`${dir}/judge/student_judged.json`);
    assert.ok(judged.every((v: number) => v === 0 || v === 1));
    assert.ok(calls >= labels.length);
  });
});
