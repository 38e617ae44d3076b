/**
 * configs/gsm8k.json and configs/mmlu-pro.json, end to end through
 * `deno task distill`'s entry point, on the real datasets' slices shipped in
 * tests/fixtures/data. The student is the real pretrained stories260K Llama
 * (`student.init`), as the configs start from a real checkpoint. The teacher
 * is an OpenAI-compatible server on 127.0.0.1 that plays a 7B model we cannot
 * run here: it writes the dataset's own solution, and every third sample a
 * wrong final answer, so the majority vote has something to outvote. What the
 * test checks is the real-data path: loading, prompts, HTTP sampling, answer
 * extraction, pseudo-labels against the held-back gold, every stage on real
 * text with a real BPE tokenizer, and the report.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { extractStrict } from "../src/tasks/answers.ts";
import { readJsonl, withServer } from "./support/serve.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLI = `${ROOT}src/cli/distill.ts`;
const DATA = `${ROOT}tests/fixtures/data`;
const STUDENT = `${ROOT}tests/fixtures/stories260K`;

/** A teacher that answers with `solve(prompt)`, and every third sample with `wrong(prompt)`. */
function teacherApp(solve: (prompt: string) => string, wrong: (prompt: string) => string) {
  const app = new Hono();
  let calls = 0;
  app.post("/v1/completions", async (c) => {
    calls++;
    const body = await c.req.json();
    const prompt = String(body.prompt);
    const n = Number(body.n ?? 1);
    const greedy = Number(body.temperature ?? 1) === 0;
    const choices = Array.from({ length: n }, (_, index) => ({
      index,
      text: !greedy && index % 3 === 2 ? wrong(prompt) : solve(prompt),
      logprobs: null,
      finish_reason: "stop",
    }));
    return c.json({
      id: "cmpl-1",
      object: "text_completion",
      created: 0,
      model: body.model,
      choices,
    });
  });
  return { app, calls: () => calls };
}

async function distill(config: string, sets: string[]) {
  const args = ["run", "-A", CLI, "--config", config];
  for (const s of sets) args.push("--set", s);
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** Small budgets for every stage; the task and teacher keys come from the config under test. */
const SMALL = [
  "teacher.maxNewTokens=400",
  "teacher.questionsPerUnit=4",
  "sft.steps=2",
  "sft.batchSize=4",
  "sft.maxLen=384",
  "studentGenerate.samples=2",
  "studentGenerate.maxNewTokens=24",
  "studentGenerate.batchSize=16",
  "reward.steps=2",
  "reward.batchSize=4",
  "reward.maxLen=384",
  "ppo.iterations=1",
  "ppo.promptsPerIteration=4",
  "ppo.miniBatch=4",
  "ppo.maxNewTokens=24",
  "eval.majK=3",
  "eval.maxNewTokens=24",
  "eval.batchSize=16",
  "server.enabled=false",
  `student.init=${STUDENT}`,
];

/** The shipped slices of each dataset as the config's data files. */
const GSM8K_FILES = [`task.train=${DATA}/gsm8k/train.jsonl`, `task.test=${DATA}/gsm8k/test.jsonl`];
const MMLU_FILES = [
  `task.train=${DATA}/mmlu-pro/test.jsonl`,
  `task.test=${DATA}/mmlu-pro/test.jsonl`,
];

/**
 * Every baseline of issue 16 beside the method, as one config key each. The endpoint teacher's
 * weights (teacher.checkpoint, for GKD's token scores and the fine-tuned teacher) are the
 * stories260K checkpoint, standing in for a local copy of the served 7B model.
 */
const BASELINES = [
  'ppo.rewards=["model","model-teacher","pseudo","gold","vote"]',
  "ppo.samplesPerPrompt=2",
  "eval.bestOfN=[2,3]",
  "baselines.equalComputeSft=true",
  "baselines.teacherSftSteps=1",
  "gkd.steps=1",
  "gkd.batchSize=4",
  "gkd.maxNewTokens=24",
  "gkd.maxLen=384",
  `teacher.checkpoint=${STUDENT}`,
];

/** The report's rows of the method and of every baseline in BASELINES. */
const BASELINE_ROWS = [
  "SFT student",
  "PPO student",
  "PPO student (reward model on teacher responses)",
  "PPO student (pseudo-label reward)",
  "PPO student (gold reward)",
  "PPO student (online majority reward)",
  "Best-of-2 (reward model)",
  "Best-of-3 (reward model)",
  "SFT student (equal compute)",
  "GKD student",
  "fine-tuned teacher pass@1",
  "fine-tuned teacher maj@3",
];

async function withTeacher(
  solve: (prompt: string) => string,
  wrong: (prompt: string) => string,
  fn: (baseUrl: string) => Promise<void>,
) {
  const { app, calls } = teacherApp(solve, wrong);
  await withServer(app, async (baseUrl) => {
    await fn(baseUrl);
    assert.ok(calls() > 0, "the teacher endpoint was never called");
  });
}

async function checkRun(dir: string, golds: Map<string, string>, kept: number) {
  const questions = JSON.parse(await Deno.readTextFile(`${dir}/labels.json`)) as {
    id: string;
    pseudo_label: string | null;
    kept: boolean;
  }[];
  assert.equal(questions.length, golds.size);
  assert.equal(questions.filter((q) => q.kept).length, kept);
  // The majority outvotes the wrong third: every pseudo-label is the gold answer.
  for (const q of questions) assert.equal(q.pseudo_label, golds.get(q.id), q.id);
  const report = JSON.parse(await Deno.readTextFile(`${dir}/report.json`));
  const stages = (report.compute as { stage: string }[]).map((c) => c.stage);
  assert.deepEqual(stages, [
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
  const rows = Object.keys(report.eval.rows);
  for (const row of BASELINE_ROWS) assert.ok(rows.includes(row), `${row} missing: ${rows}`);
  // Each baseline's compute is accounted for: beside its row, and per arm in stages.json.
  for (const row of BASELINE_ROWS.filter((r) => r !== "SFT student" && !r.endsWith("maj@3"))) {
    const c = report.methodCompute[row];
    assert.ok(c && c.wallSeconds > 0 && c.tokensGenerated + c.tokensTrained > 0, row);
  }
  const done = JSON.parse(await Deno.readTextFile(`${dir}/stages.json`));
  for (const arm of ["model", "model-teacher", "pseudo", "gold", "vote"]) {
    assert.ok(done.ppo[arm].tokensGenerated > 0, arm);
  }
  assert.ok(done["sft-baselines"].teacherSft.tokensTrained > 0);
  assert.ok(done["sft-baselines"].equalComputeSft.tokensTrained > 0);
  assert.equal(done.gkd.steps, 1);
  return report;
}

Deno.test("configs/gsm8k.json runs every stage on GSM8K lines", async () => {
  const runs = await Deno.makeTempDir();
  const train = await readJsonl(`${DATA}/gsm8k/train.jsonl`);
  const test = await readJsonl(`${DATA}/gsm8k/test.jsonl`);
  const all = [...train, ...test];
  const find = (prompt: string) => all.find((r) => prompt.includes(r.question))!;
  const solve = (p: string) => " " + find(p).answer;
  const wrong = (p: string) => " " + find(p).answer.replace(/#### (.*)$/, "#### 999999");
  await withTeacher(solve, wrong, async (baseUrl) => {
    const { code, stderr } = await distill(`${ROOT}configs/gsm8k.json`, [
      ...SMALL,
      ...BASELINES,
      `runsDir=${runs}`,
      ...GSM8K_FILES,
      "task.trainLimit=6",
      "task.testLimit=4",
      `teacher.source.baseUrl=${baseUrl}`,
    ]);
    assert.equal(code, 0, stderr);
  });
  const golds = new Map(
    train.slice(0, 6).map((r, i) => [`gsm8k-${i + 1}`, extractStrict(r.answer)!]),
  );
  const report = await checkRun(`${runs}/gsm8k`, golds, 6);
  // The teacher writes the gold solution when greedy: strict and flexible both score it 100%.
  assert.deepEqual(report.eval.rows["teacher pass@1"], { strict: 1, flexible: 1 });
  assert.equal(report.eval.questions, 4);
  for (const row of ["SFT student", "PPO student"]) {
    assert.ok(row in report.eval.rows, `${row} missing from ${JSON.stringify(report.eval)}`);
  }
  await Deno.remove(runs, { recursive: true });
});

/** A config that cannot run fails in one line before any stage, and writes nothing. */
async function failsBeforeAnyStage(config: string, sets: string[], line: RegExp) {
  const runs = await Deno.makeTempDir();
  const { code, stderr } = await distill(`${ROOT}configs/${config}`, [`runsDir=${runs}`, ...sets]);
  assert.notEqual(code, 0);
  const errors = stderr.split("\n").filter((l) =>
    l.startsWith("error:") && !l.includes("XDG_RUNTIME_DIR")
  );
  assert.equal(errors.length, 1, stderr);
  assert.match(errors[0], line);
  assert.deepEqual([...Deno.readDirSync(runs)], []);
  await Deno.remove(runs, { recursive: true });
}

Deno.test("label.voters worked on MMLU-Pro is one line before any stage", async () => {
  await failsBeforeAnyStage(
    "mmlu-pro.json",
    [...MMLU_FILES, "label.voters=worked"],
    /^error: config: label.voters "worked" .*use "all"/,
  );
});

Deno.test("a baseline that needs the endpoint teacher's weights asks for teacher.checkpoint", async () => {
  for (const key of ["gkd.steps=1", "baselines.teacherSftSteps=1"]) {
    await failsBeforeAnyStage(
      "gsm8k.json",
      [...GSM8K_FILES, key],
      new RegExp(
        `^error: config: ${
          key.split("=")[0]
        } needs the teacher's weights.*set teacher.checkpoint to a local copy of Qwen/Qwen2.5-7B-Instruct$`,
      ),
    );
  }
  await failsBeforeAnyStage(
    "default.json",
    [`teacher.checkpoint=${STUDENT}`],
    /^error: config: teacher.checkpoint is for an endpoint teacher/,
  );
  await failsBeforeAnyStage(
    "gsm8k.json",
    [...GSM8K_FILES, `teacher.checkpoint=${DATA}`, "gkd.steps=1"],
    /^error: config: teacher.checkpoint .* has no config.json/,
  );
});

Deno.test("configs/mmlu-pro.json runs every stage on MMLU-Pro lines", async () => {
  const runs = await Deno.makeTempDir();
  const items = await readJsonl(`${DATA}/mmlu-pro/test.jsonl`);
  const find = (prompt: string) => items.find((r) => prompt.includes(r.question))!;
  const solve = (p: string) => ` Let's think step by step. The answer is (${find(p).answer}).`;
  const wrong = (p: string) => {
    const a = find(p).answer === "A" ? "B" : "A";
    return ` Let's think step by step. The answer is (${a}).`;
  };
  await withTeacher(solve, wrong, async (baseUrl) => {
    const { code, stderr } = await distill(`${ROOT}configs/mmlu-pro.json`, [
      ...SMALL,
      ...BASELINES,
      `runsDir=${runs}`,
      ...MMLU_FILES,
      `task.validation=${DATA}/mmlu-pro/validation.jsonl`,
      // Windows of short questions: stories260K has 512 positions.
      "task.trainOffset=7",
      "task.trainLimit=6",
      "task.testOffset=27",
      "task.testLimit=4",
      `teacher.source.baseUrl=${baseUrl}`,
    ]);
    assert.equal(code, 0, stderr);
  });
  const report = await checkRun(
    `${runs}/mmlu-pro`,
    new Map(items.slice(7, 13).map((r) => [`mmlu-pro-${r.question_id}`, r.answer])),
    6,
  );
  assert.equal(report.eval.questions, 4);
  const teacher = report.eval.rows["teacher pass@1"];
  assert.ok(Object.values(teacher).every((v) => v === 1), JSON.stringify(report.eval));
  await Deno.remove(runs, { recursive: true });
});
