/** The task layer: datasets, answer extraction, the arithmetic generator, judge prompts. */
import assert from "node:assert/strict";
import {
  extractChoice,
  extractFlexible,
  extractStrict,
  normalizeNumber,
  sameAnswer,
} from "../src/tasks/answers.ts";
import {
  ARITHMETIC_CHARS,
  type ArithmeticConfig,
  ArithmeticConfigError,
  equations,
  generateArithmetic,
} from "../src/tasks/arithmetic.ts";
import { loadGsm8k } from "../src/tasks/gsm8k.ts";
import {
  DEFAULT_JUDGE,
  type JudgeConfig,
  JudgeConfigError,
  judgePositive,
  judgePrompt,
  parseJudgeScore,
} from "../src/tasks/judge.ts";
import { DataError, readJsonl, requireString } from "../src/tasks/jsonl.ts";
import { loadMmluPro } from "../src/tasks/mmlu_pro.ts";
import { loadTask, makeTask } from "../src/tasks/task.ts";
import { EngineError } from "../src/errors.ts";

const DATA = new URL("./fixtures/data/", import.meta.url).pathname;
const GSM_TRAIN = `${DATA}gsm8k/train.jsonl`;
const GSM_TEST = `${DATA}gsm8k/test.jsonl`;
const MMLU_TEST = `${DATA}mmlu-pro/test.jsonl`;
const MMLU_VAL = `${DATA}mmlu-pro/validation.jsonl`;

/** The raw JSON objects of a fixture, parsed here without the code under test. */
function rawRows(path: string): Record<string, unknown>[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l)
  );
}

async function assertDataError(p: Promise<unknown>, ...parts: string[]) {
  await assert.rejects(p, (err: Error) => {
    assert.ok(err instanceof DataError, `${err.name}: ${err.message}`);
    assert.ok(err instanceof EngineError);
    assert.ok(!err.message.includes("\n"), `not one line: ${err.message}`);
    for (const part of parts) {
      assert.ok(err.message.includes(part), `"${err.message}" does not mention "${part}"`);
    }
    return true;
  });
}

// ---------------------------------------------------------------- answers: GSM8K

Deno.test("extractStrict and extractFlexible find every gold answer of the GSM8K slices", () => {
  let n = 0;
  for (const path of [GSM_TRAIN, GSM_TEST]) {
    for (const row of rawRows(path)) {
      const answer = row.answer as string;
      const parts = answer.split("####");
      assert.equal(parts.length, 2, answer);
      const expected = parts[1].trim().replaceAll(",", "");
      assert.match(expected, /^-?\d+$/);
      assert.equal(extractStrict(answer), expected, answer);
      assert.equal(extractFlexible(answer), expected, answer);
      n++;
    }
  }
  assert.equal(n, 128);
});

Deno.test("extractFlexible: commas, dollars, signs, decimals, last number, none", () => {
  const cases: [string, string | null][] = [
    ["She has 1,234 marbles", "1234"],
    ["It costs $5", "5"],
    ["The car costs $1,200.50.", "1200.5"],
    ["The temperature is -7 today", "-7"],
    ["Each one weighs 3.75 kg", "3.75"],
    ["First 12, then 30, finally 45 left", "45"],
    ["There is no number here.", null],
    ["Nothing... at all...", null],
    ["The answer is 42.", "42"],
    ["So 2 + 3 = 5\n#### 5", "5"],
    ["It is 17.00 now", "17"],
    ["7", "7"],
  ];
  for (const [text, want] of cases) assert.equal(extractFlexible(text), want, text);
});

Deno.test('extractStrict: only the number after "#### ", the last one, normalised', () => {
  const cases: [string, string | null][] = [
    ["so the total is 9\n#### 1,234", "1234"],
    ["#### 1,000", "1000"],
    ["#### -7", "-7"],
    ["#### 3.75", "3.75"],
    ["#### 42.", "42"],
    ["#### 17.0", "17"],
    ["#### 5 wait, let me redo it\n#### 6", "6"],
    ["The answer is 42.", null],
    ["#### the answer is unknown", null],
    ["#### ...", null],
    ["####5", null], // lm-eval's regex wants exactly "#### " before the number
    ["#### $5", null], // ... and no "$": the flexible extractor is the fallback for this
    ["", null],
  ];
  for (const [text, want] of cases) assert.equal(extractStrict(text), want, text);
  assert.equal(extractFlexible("#### $5"), "5");
});

Deno.test("normalizeNumber and sameAnswer", () => {
  const cases: [string, string][] = [
    ["1,234", "1234"],
    [" $1,200.50. ", "1200.5"],
    ["17.0", "17"],
    ["17.00", "17"],
    ["-0", "0"],
    ["-0.0", "0"],
    ["0.50", "0.5"],
    [".5", "0.5"],
    ["007", "7"],
    ["+3", "3"],
    ["-12", "-12"],
    ["100", "100"],
    ["12345678901234567890.10", "12345678901234567890.1"],
    [" C ", "C"],
    ["1.2.3", "1.2.3"],
    ["...", "..."],
  ];
  for (const [s, want] of cases) assert.equal(normalizeNumber(s), want, s);
  assert.ok(sameAnswer("1,000", "1000.00"));
  assert.ok(sameAnswer("$5", "5"));
  assert.ok(!sameAnswer("5", "6"));
  assert.ok(!sameAnswer(null, "5"));
  assert.ok(!sameAnswer("5", null));
  assert.ok(!sameAnswer(null, null));
});

// ---------------------------------------------------------------- answers: MMLU-Pro

Deno.test("extractChoice follows the official evaluate_from_local.py order", () => {
  const cases: [string, string | null][] = [
    // rule 1, "answer is \(?([A-J])\)?"
    ["Let's think step by step. ... the answer is (C).", "C"],
    ["The answer is D", "D"],
    ["answer is(C)", "C"],
    // rule 1 is re.search: the FIRST "answer is X" wins, even if the text later changes its mind
    ["The answer is (A). Wait, no: the answer is (B).", "A"],
    // rule 1 is case-sensitive and needs a capital letter, so these fall through
    ["The Answer is D", "D"], // -> rule 3, the last standalone letter
    ["the answer is a mystery", null], // "a" is never a choice
    // rule 2, ".*[aA]nswer:\s*([A-J])" without DOTALL: the first line with a match, its last match
    ["Answer: B", "B"],
    ["x answer: A then answer: B\nanswer: C", "B"],
    ["first line\nAnswer: J\nAnswer: A", "J"],
    ["Answer:\nC because", "C"], // \s* crosses the newline
    // rule 3, the last standalone A-J anywhere
    ["Comparing the options, (B) fails, so we go with E", "E"],
    ["We pick (B) and then C", "C"],
    ["xAy A_B A1", null], // letters inside words do not count
    ["café B", "B"],
    ["a bad idea and a good one", null], // lower-case "a" in ordinary words is never taken
    ["I guess so", "I"], // the official code takes the pronoun "I" as well
    ["no choice given here", null],
    ["", null],
  ];
  for (const [text, want] of cases) assert.equal(extractChoice(text), want, text);
});

// ---------------------------------------------------------------- tasks

Deno.test("makeTask: extraction and scores per kind", () => {
  const gsm = makeTask("gsm8k");
  assert.equal(gsm.extract("5 + 7 = 12\n#### 12"), "12");
  assert.equal(gsm.extract("so she has 12 apples."), "12"); // strict fails, flexible answers
  assert.equal(gsm.extract("#### 3 and 4 is 7"), "3"); // strict wins over flexible
  assert.equal(gsm.extract("no idea"), null);
  assert.deepEqual(gsm.score("3+4=7\n#### 7", "7"), { strict: true, flexible: true });
  assert.deepEqual(gsm.score("she has 7 now", "7"), { strict: false, flexible: true });
  assert.deepEqual(gsm.score("#### 7 (checked 8 times)", "7"), { strict: true, flexible: false });
  assert.deepEqual(gsm.stop, ["\n\n", "Question:"]);
  assert.equal(makeTask("arithmetic").kind, "arithmetic");
  assert.deepEqual(makeTask("arithmetic").score("1+1=2\n#### 2", "2"), {
    strict: true,
    flexible: true,
  });

  const mmlu = makeTask("mmlu-pro");
  assert.equal(mmlu.extract("... so the answer is (H)."), "H");
  assert.deepEqual(mmlu.score("the answer is (H)", "H"), { choice: true });
  assert.deepEqual(mmlu.score("the answer is (G)", "H"), { choice: false });
  assert.deepEqual(mmlu.score("no idea", "H"), { choice: false });
  assert.deepEqual(mmlu.stop, ["Question:"]);
  assert.throws(() => makeTask("nope" as "gsm8k"), /unknown task kind "nope"/);
});

// ---------------------------------------------------------------- loaders

Deno.test("loadGsm8k: ids, prompts, gold, solutions, offset and limit", async () => {
  const train = await loadGsm8k(GSM_TRAIN);
  assert.equal(train.length, 64);
  assert.equal((await loadGsm8k(GSM_TEST)).length, 64);
  assert.deepEqual(train[0], {
    id: "gsm8k-1",
    prompt: "Question: Natalia sold clips to 48 of her friends in April, and then she sold half " +
      "as many clips in May. How many clips did Natalia sell altogether in April and May?\nAnswer:",
    gold: "72",
    solution: "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n" +
      "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
  });
  assert.equal(train[1].gold, "10");
  const raw = rawRows(GSM_TRAIN);
  train.forEach((q, i) => {
    assert.equal(q.id, `gsm8k-${i + 1}`);
    assert.equal(q.prompt, `Question: ${raw[i].question}\nAnswer:`);
    assert.equal(q.gold, (raw[i].answer as string).split("#### ")[1].replaceAll(",", ""));
  });
  const part = await loadGsm8k(GSM_TRAIN, { offset: 10, limit: 5 });
  assert.deepEqual(part.map((q) => q.id), [
    "gsm8k-11",
    "gsm8k-12",
    "gsm8k-13",
    "gsm8k-14",
    "gsm8k-15",
  ]);
  assert.equal((await loadGsm8k(GSM_TRAIN, { offset: 60, limit: 10 })).length, 4);
  await assertDataError(loadGsm8k(GSM_TRAIN, { limit: -1 }), "limit");
});

Deno.test("loadMmluPro: ids, gold, categories, and the official 0-shot prompt", async () => {
  const test = await loadMmluPro(MMLU_TEST);
  assert.equal(test.length, 64);
  assert.equal(test[0].id, "mmlu-pro-70");
  assert.equal(test[63].id, "mmlu-pro-134");
  assert.equal(test[0].gold, "I");
  assert.equal(test[0].category, "business");
  const raw = rawRows(MMLU_TEST);
  test.forEach((q, i) => assert.equal(q.gold, raw[i].answer));

  const val = await loadMmluPro(MMLU_VAL);
  assert.equal(val.length, 70);
  const math = await loadMmluPro(MMLU_VAL, { categories: ["math"] });
  assert.deepEqual(math.map((q) => q.id), [0, 1, 2, 3, 4].map((i) => `mmlu-pro-${i}`));
  // "N/A" options are dropped, as the official preprocess() does
  assert.ok(val.every((q) => !q.prompt.includes(". N/A\n")));
  await assertDataError(loadMmluPro(MMLU_TEST, { categories: ["maths"] }), 'category "maths"');
  await assertDataError(loadMmluPro(MMLU_TEST, { shots: 2 }), "validationPath");

  const [q] = await loadMmluPro(MMLU_TEST, { offset: 1, limit: 1 });
  assert.equal(q.id, "mmlu-pro-71");
  const r = raw[1] as { question: string; options: string[] };
  const letters = "ABCDEFGHIJ";
  assert.equal(
    q.prompt,
    "The following are multiple choice questions (with answers) about business. Think step by " +
      'step and then finish your answer with "the answer is (X)" where X is the correct letter ' +
      "choice.\n\nQuestion:\n" + r.question + "\nOptions:\n" +
      r.options.map((o, i) => `${letters[i]}. ${o}\n`).join("") +
      "Answer: Let's think step by step.",
  );
});

Deno.test("loadMmluPro: the 1-shot prompt, written out in full", async () => {
  const [q] = await loadMmluPro(MMLU_TEST, { limit: 1, shots: 1, validationPath: MMLU_VAL });
  const expected = [
    'The following are multiple choice questions (with answers) about business. Think step by step and then finish your answer with "the answer is (X)" where X is the correct letter choice.',
    "",
    "Question:",
    "In contrast to _______, _______ aim to reward favourable behaviour by companies. The success of such campaigns have been heightened through the use of ___________, which allow campaigns to facilitate the company in achieving _________ .",
    "Options:",
    "A. Boycotts, Buyalls, Blockchain technology, Increased Sales",
    "B. Buycotts, Boycotts, Digital technology, Decreased Sales",
    "C. Boycotts, Buycotts, Digital technology, Decreased Sales",
    "D. Buycotts, Boycotts, Blockchain technology, Charitable donations",
    "E. Boycotts, Buyalls, Blockchain technology, Charitable donations",
    "F. Boycotts, Buycotts, Digital technology, Increased Sales",
    "G. Buycotts, Boycotts, Digital technology, Increased Sales",
    "H. Boycotts, Buycotts, Physical technology, Increased Sales",
    "I. Buycotts, Buyalls, Blockchain technology, Charitable donations",
    "J. Boycotts, Buycotts, Blockchain technology, Decreased Sales",
    "Answer: Let's think step by step. We refer to Wikipedia articles on business ethics for help. The sentence that best uses the possible options above is __n contrast to *boycotts*, *buycotts* aim to reward favourable behavior by companies. The success of such campaigns have been heightened through the use of *digital technology*, which allow campaigns to facilitate the company in achieving *increased sales*._ The answer is (F).",
    "",
    "Question:",
    "Typical advertising regulatory bodies suggest, for example that adverts must not: encourage _________, cause unnecessary ________ or _____, and must not cause _______ offence.",
    "Options:",
    "A. Safe practices, Fear, Jealousy, Trivial",
    "B. Unsafe practices, Distress, Joy, Trivial",
    "C. Safe practices, Wants, Jealousy, Trivial",
    "D. Safe practices, Distress, Fear, Trivial",
    "E. Unsafe practices, Wants, Jealousy, Serious",
    "F. Safe practices, Distress, Jealousy, Serious",
    "G. Safe practices, Wants, Fear, Serious",
    "H. Unsafe practices, Wants, Fear, Trivial",
    "I. Unsafe practices, Distress, Fear, Serious",
    "Answer: Let's think step by step.",
  ].join("\n");
  assert.equal(q.prompt, expected);
  // more shots than the category has: all five business exemplars
  const [q9] = await loadMmluPro(MMLU_TEST, { limit: 1, shots: 9, validationPath: MMLU_VAL });
  assert.equal(q9.prompt.split("\nAnswer: Let's think step by step.").length - 1, 6);
  assert.equal(q9.prompt.match(/about business\./g)?.length, 1);
});

Deno.test("loadTask builds the task and its questions", async () => {
  const g = await loadTask("gsm8k", { path: GSM_TEST, limit: 3 });
  assert.equal(g.task.kind, "gsm8k");
  assert.equal(g.questions.length, 3);
  const m = await loadTask("mmlu-pro", {
    path: MMLU_TEST,
    limit: 2,
    shots: 1,
    validationPath: MMLU_VAL,
  });
  assert.equal(m.task.kind, "mmlu-pro");
  assert.ok(m.questions[0].prompt.includes("The answer is (F)."));
  const a = await loadTask("arithmetic", {
    arithmetic: { ...ARITH, count: 10 },
    offset: 2,
    limit: 3,
  });
  assert.deepEqual(a.questions.map((q) => q.id), ["arith-7-2", "arith-7-3", "arith-7-4"]);
  await assert.rejects(loadTask("gsm8k", {}), EngineError);
  await assert.rejects(loadTask("arithmetic", {}), EngineError);
});

// ---------------------------------------------------------------- JSONL errors

Deno.test("readJsonl: blank lines skipped; errors name the file, the line and the field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/good.jsonl`;
    await Deno.writeTextFile(good, '{"a": 1}\n\n{"a": 2}\r\n\n');
    assert.deepEqual(await readJsonl(good), [{ a: 1 }, { a: 2 }]);

    const bad = `${dir}/bad.jsonl`;
    await Deno.writeTextFile(bad, '{"question": "q", "answer": "#### 1"}\n\n{"question": }\n');
    await assertDataError(readJsonl(bad), `${bad}:3: not valid JSON (`);
    await assertDataError(loadGsm8k(bad), `${bad}:3: not valid JSON (`);

    const arr = `${dir}/arr.jsonl`;
    await Deno.writeTextFile(arr, "[1, 2]\n");
    await assertDataError(readJsonl(arr), `${arr}:1: expected a JSON object, got an array`);

    const missing = `${dir}/missing.jsonl`;
    await Deno.writeTextFile(
      missing,
      '{"question": "q", "answer": "#### 1"}\n{"question": "q2", "answer": "#### 2"}\n' +
        '{"answer": "#### 3"}\n',
    );
    await assertDataError(loadGsm8k(missing), `${missing}:3: missing field "question"`);

    const typed = `${dir}/typed.jsonl`;
    await Deno.writeTextFile(typed, '{"question": 5, "answer": "#### 3"}\n');
    await assertDataError(loadGsm8k(typed), `${typed}:1: field "question" must be a string`);

    const nofinal = `${dir}/nofinal.jsonl`;
    await Deno.writeTextFile(nofinal, '{"question": "q", "answer": "it is 3"}\n');
    await assertDataError(loadGsm8k(nofinal), `${nofinal}:1:`, "####");

    await assertDataError(readJsonl(`${dir}/x.jsonl`), `${dir}/x.jsonl: file not found`);
    await assertDataError(loadMmluPro(`${dir}/x.jsonl`), `${dir}/x.jsonl: file not found`);

    const mm = `${dir}/mm.jsonl`;
    await Deno.writeTextFile(
      mm,
      '{"question_id": 1, "question": "q", "options": ["x", "y"], "answer": "C", ' +
        '"category": "math"}\n',
    );
    await assertDataError(loadMmluPro(mm), `${mm}:1: answer C but only 2 options`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.throws(() => requireString({}, "question", "data/train.jsonl:3"), (err: Error) => {
    assert.ok(err instanceof DataError);
    assert.equal(err.message, 'data/train.jsonl:3: missing field "question"');
    return true;
  });
});

// ---------------------------------------------------------------- arithmetic generator

const ARITH: ArithmeticConfig = {
  seed: 7,
  count: 300,
  minNumber: 1,
  maxNumber: 30,
  minSteps: 1,
  maxSteps: 3,
  ops: ["+", "-", "*"],
  nonNegative: true,
};

/** Checks a solution's "a+b=c" steps really compute, chain, and end at "#### gold". */
function checkSolution(question: string, solution: string, gold: string): number[] {
  const lines = solution.split("\n");
  assert.equal(lines.length, 2, solution);
  assert.equal(lines[1], `#### ${gold}`);
  const steps = lines[0].split(" ");
  let prev: number | null = null;
  const numbers: number[] = [];
  for (const step of steps) {
    const m = /^(-?\d+)([+*-])(\d+)=(-?\d+)$/.exec(step);
    assert.ok(m, `bad step "${step}" in ${JSON.stringify(solution)}`);
    const [a, b, c] = [Number(m[1]), Number(m[3]), Number(m[4])];
    const want = m[2] === "+" ? a + b : m[2] === "-" ? a - b : a * b;
    assert.equal(c, want, `${step} is wrong`);
    if (prev !== null) assert.equal(a, prev, `steps do not chain: ${lines[0]}`);
    prev = c;
    numbers.push(a, b, c);
  }
  assert.equal(String(prev), gold);
  // the start amount and every operand appear in the question
  const first = /^(-?\d+)/.exec(steps[0])![1];
  assert.ok(question.includes(` has ${first} `), `${question} / ${first}`);
  for (const step of steps) {
    const operand = /[+*-](\d+)=/.exec(step)![1];
    assert.ok(new RegExp(` ${operand}[ .]`).test(question), `${operand} not in ${question}`);
  }
  return numbers;
}

Deno.test("generateArithmetic: format, arithmetic, character set", () => {
  const qs = generateArithmetic(ARITH);
  assert.equal(qs.length, 300);
  const allowed = new Set(ARITHMETIC_CHARS);
  assert.equal(allowed.size, ARITHMETIC_CHARS.length, "ARITHMETIC_CHARS has duplicates");
  const stepCounts = new Set<number>();
  const opsSeen = new Set<string>();
  qs.forEach((q, i) => {
    assert.equal(q.id, `arith-7-${i}`);
    const m = /^Question: (.+)\nAnswer:$/.exec(q.prompt);
    assert.ok(m, JSON.stringify(q.prompt));
    const question = m[1];
    assert.match(
      question,
      /^[A-Z][a-z]+ has \d+ [a-z ]+\. .+ How many [a-z ]+ does [A-Z][a-z]+ have now\?$/,
    );
    const numbers = checkSolution(question, q.solution!, q.gold);
    assert.ok(numbers.every((v) => v >= 0), `nonNegative: ${q.solution}`);
    for (const text of [q.prompt, q.solution!, q.gold, `${q.prompt} ${q.solution}\n\n`]) {
      for (const ch of text) {
        assert.ok(allowed.has(ch), `${JSON.stringify(ch)} not in ARITHMETIC_CHARS`);
      }
    }
    stepCounts.add(q.solution!.split("\n")[0].split(" ").length);
    for (const op of q.solution!.match(/[+*-]/g)!) opsSeen.add(op);
    // the labelling reads the right answer out of the gold solution
    assert.equal(makeTask("arithmetic").extract(q.solution!), q.gold);
  });
  assert.deepEqual([...stepCounts].sort(), [1, 2, 3]);
  assert.deepEqual([...opsSeen].sort(), ["*", "+", "-"]);
  assert.equal(
    generateArithmetic({ ...ARITH, seed: 1, count: 1, ops: ["+"], minSteps: 1, maxSteps: 1 })[0]
      .solution!.split("\n")[0].split("+").length,
    2,
  );
});

Deno.test("generateArithmetic: same seed same output, other seeds other problems, distinct", () => {
  const a = generateArithmetic(ARITH);
  assert.deepEqual(generateArithmetic(ARITH), a);
  const b = generateArithmetic({ ...ARITH, seed: 8 });
  assert.notDeepEqual(b.map((q) => q.prompt), a.map((q) => q.prompt));
  const inA = new Set(a.map((q) => q.prompt));
  assert.ok(b.filter((q) => inA.has(q.prompt)).length < 5, "seeds 7 and 8 overlap");
  assert.equal(inA.size, a.length, "problems repeat within one call");
  // a prefix of a longer run is the shorter run
  assert.deepEqual(generateArithmetic({ ...ARITH, count: 20 }), a.slice(0, 20));
  // negative intermediates are allowed without nonNegative, and the arithmetic still holds
  const neg = generateArithmetic({
    ...ARITH,
    ops: ["-"],
    minSteps: 3,
    maxSteps: 3,
    nonNegative: false,
  });
  assert.ok(neg.some((q) => q.gold.startsWith("-")));
  for (const q of neg) checkSolution(/^Question: (.+)\n/.exec(q.prompt)![1], q.solution!, q.gold);
});

Deno.test("generateArithmetic: a small space fills up, and bad settings are one-line errors", () => {
  // 20 names x 16 objects x 2 numbers x 2 numbers x 5 clauses: 6,400 questions at most
  const small = generateArithmetic({
    ...ARITH,
    count: 100,
    minNumber: 1,
    maxNumber: 2,
    minSteps: 1,
    maxSteps: 1,
    ops: ["+"],
  });
  assert.equal(new Set(small.map((q) => q.prompt)).size, 100);
  const tiny = { ...ARITH, count: 3, minNumber: 5, maxNumber: 5, minSteps: 1, maxSteps: 1 };
  assert.equal(generateArithmetic({ ...tiny, ops: ["+"] }).length, 3);
  const bad: [Partial<ArithmeticConfig>, RegExp][] = [
    [{ minNumber: 5, maxNumber: 3 }, /minNumber \(5\) is greater than maxNumber \(3\)/],
    [{ minNumber: -1 }, /minNumber must be at least 0/],
    [{ minSteps: 0 }, /minSteps/],
    [{ minSteps: 3, maxSteps: 2 }, /minSteps \(3\) is greater than maxSteps \(2\)/],
    [{ ops: [] }, /ops must list/],
    [{ ops: ["/" as "+"] }, /unknown op "\/"/],
    [{ count: 1.5 }, /count/],
    [{ seed: 0.5 }, /seed/],
    // only "-", never negative, 5 - 5 = 0 and then nothing can follow
    [{ minNumber: 5, maxNumber: 5, minSteps: 2, maxSteps: 2, ops: ["-"] }, /no valid problem/],
  ];
  for (const [patch, re] of bad) {
    assert.throws(() => generateArithmetic({ ...ARITH, ...patch }), (err: Error) => {
      assert.ok(err instanceof ArithmeticConfigError, `${err.name}: ${err.message}`);
      assert.match(err.message, re);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
  }
  assert.deepEqual(generateArithmetic({ ...ARITH, count: 0 }), []);
});

// ---------------------------------------------------------------- judge

Deno.test("judge: prompt rendering", () => {
  const cfg: JudgeConfig = {
    template: "Q: {question}\nA: {response}\nScore: ",
    scorePattern: String.raw`Score:\s*(\d+)`,
    maxScore: 5,
    threshold: 0.6,
  };
  assert.equal(judgePrompt(cfg, "1+1?", "2"), "Q: 1+1?\nA: 2\nScore: ");
  // placeholders inside the filled-in text are left alone
  assert.equal(
    judgePrompt(cfg, "say {response}", "$& {question}"),
    "Q: say {response}\nA: $& {question}\nScore: ",
  );
  const p = judgePrompt(DEFAULT_JUDGE, "What is 2+3?", "2+3=5\n#### 5");
  assert.ok(p.includes("What is 2+3?") && p.includes("2+3=5\n#### 5"));
  assert.ok(p.endsWith("Rating: "));
  assert.ok(!p.includes("{question}") && !p.includes("{response}"));
  assert.throws(
    () => judgePrompt({ ...cfg, template: "Q: {question}" }, "q", "r"),
    JudgeConfigError,
  );
  assert.throws(
    () => judgePrompt({ ...cfg, scorePattern: "Score: \\d+" }, "q", "r"),
    /one capture group/,
  );
  assert.throws(() => judgePrompt({ ...cfg, scorePattern: "(" }, "q", "r"), /not a valid regex/);
});

Deno.test("judge: score parsing, normalised and clamped", () => {
  const j = DEFAULT_JUDGE;
  assert.equal(parseJudgeScore(j, "Rating: 7"), 0.7);
  assert.equal(parseJudgeScore(j, "7"), 0.7); // the judge continues the prompt's "Rating: "
  assert.equal(parseJudgeScore(j, " 8.5\nThe response is right."), 0.85);
  assert.equal(parseJudgeScore(j, "Rating: 11"), 1);
  assert.equal(parseJudgeScore(j, "Rating: 0"), 0);
  assert.equal(parseJudgeScore(j, "7\n\nRating: 3"), 0.7); // the first rating wins
  assert.equal(parseJudgeScore(j, "The response is correct.\nRating: 9"), 0.9);
  assert.equal(parseJudgeScore(j, "I cannot rate this."), null);
  assert.equal(parseJudgeScore(j, ""), null);
  assert.ok(judgePositive(j, 0.7));
  assert.ok(!judgePositive(j, 0.6));
  assert.ok(!judgePositive(j, null));
  const five: JudgeConfig = {
    template: "{question} {response}",
    scorePattern: String.raw`(\d)/5`,
    maxScore: 5,
    threshold: 0.5,
  };
  assert.equal(parseJudgeScore(five, "I give it 4/5"), 0.8);
  assert.equal(parseJudgeScore(five, "no score"), null);
});

Deno.test("equations counts the calculations a response writes and the right ones", () => {
  assert.deepEqual(equations(" 12+5=17 17-3=14\n#### 14"), { right: 2, total: 2 });
  assert.deepEqual(equations(" 12+5=18 18-3=15\n#### 15"), { right: 1, total: 2 });
  assert.deepEqual(equations(" 3*4=12 12/5=2\n#### 2"), { right: 1, total: 2 });
  assert.deepEqual(equations("Natalia sold <<48/2=24>>24 and 48 + 24 = 72 clips"), {
    right: 2,
    total: 2,
  });
  assert.deepEqual(equations(" #### 14"), { right: 0, total: 0 });
  assert.deepEqual(equations(" 5-9=-4"), { right: 1, total: 1 });
});
