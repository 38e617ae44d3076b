/**
 * A seeded generator of GSM8K-format word problems for character-level models:
 *   Question: Mia has 12 apples. She buys 5 more and then gives away 3. How many apples does Mia
 *   have now?
 *   Answer: 12+5=17 17-3=14
 *   #### 14
 * Every character it can emit is in ARITHMETIC_CHARS.
 */
import { EngineError } from "../errors.ts";
import { mulberry32 } from "../util/rng.ts";
import { gsm8kPrompt } from "./gsm8k.ts";
import type { Question } from "./types.ts";

export type ArithmeticOp = "+" | "-" | "*";

export interface ArithmeticConfig {
  seed: number;
  count: number;
  /** smallest number in a question (start amount and operands); at least 0 */
  minNumber: number;
  maxNumber: number;
  /** operations per problem: at least 1 */
  minSteps: number;
  maxSteps: number;
  ops: ArithmeticOp[];
  /** never produce negative intermediates */
  nonNegative?: boolean;
}

/**
 * Generator seed of the validation questions: settings are chosen on them (a run sets
 * task.arithmetic.testSeed to it), never on the held-out questions of task.arithmetic.testSeed.
 */
export const VALIDATION_SEED = 3003;

/** The arithmetic generator was given settings it cannot use. */
export class ArithmeticConfigError extends EngineError {}

/**
 * Every character the generator can emit, prompt and answer scaffolding included, sorted by code
 * point: newline, space, "#*+,-.", digits, ":=?", then A-Z and a-z.
 */
export const ARITHMETIC_CHARS =
  "\n #*+,-.0123456789:=?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const PEOPLE: [name: string, pronoun: "She" | "He"][] = [
  ["Mia", "She"],
  ["Ava", "She"],
  ["Emma", "She"],
  ["Zoe", "She"],
  ["Nina", "She"],
  ["Lily", "She"],
  ["Ella", "She"],
  ["Ruby", "She"],
  ["Ivy", "She"],
  ["Sara", "She"],
  ["Leo", "He"],
  ["Sam", "He"],
  ["Noah", "He"],
  ["Liam", "He"],
  ["Omar", "He"],
  ["Ben", "He"],
  ["Max", "He"],
  ["Jack", "He"],
  ["Tom", "He"],
  ["Eli", "He"],
];

const OBJECTS: [singular: string, plural: string][] = [
  ["apple", "apples"],
  ["pen", "pens"],
  ["book", "books"],
  ["sticker", "stickers"],
  ["marble", "marbles"],
  ["cookie", "cookies"],
  ["card", "cards"],
  ["stamp", "stamps"],
  ["shell", "shells"],
  ["coin", "coins"],
  ["toy car", "toy cars"],
  ["bead", "beads"],
  ["rock", "rocks"],
  ["balloon", "balloons"],
  ["cupcake", "cupcakes"],
  ["pencil", "pencils"],
];

/** Verb phrases, third person; "N" is the operand. */
const CLAUSES: Record<ArithmeticOp, string[]> = {
  "+": [
    "buys N more",
    "finds N more",
    "gets N more from a friend",
    "wins N more",
    "picks up N more",
  ],
  "-": ["gives away N", "sells N", "loses N", "gives N to a friend", "uses N"],
  "*": ["ends up with N times as many", "gets enough to have N times as many"],
};

/** mulberry32 on a splitmix-style mix of the seed (all 53 bits of it). */
function makeRng(seed: number): () => number {
  return mulberry32(
    Math.imul((seed >>> 0) ^ Math.floor(seed / 4294967296), 0x9e3779b1) ^ 0x85ebca6b,
  );
}

function checkConfig(cfg: ArithmeticConfig): void {
  const fail = (msg: string) => {
    throw new ArithmeticConfigError(`arithmetic: ${msg}`);
  };
  if (!Number.isSafeInteger(cfg.seed)) fail(`seed must be an integer, got ${cfg.seed}`);
  if (!Number.isInteger(cfg.count) || cfg.count < 0) {
    fail(`count must be a non-negative integer, got ${cfg.count}`);
  }
  if (!Number.isInteger(cfg.minNumber) || !Number.isInteger(cfg.maxNumber)) {
    fail(`minNumber and maxNumber must be integers, got ${cfg.minNumber} and ${cfg.maxNumber}`);
  }
  if (cfg.minNumber < 0) fail(`minNumber must be at least 0, got ${cfg.minNumber}`);
  if (cfg.minNumber > cfg.maxNumber) {
    fail(`minNumber (${cfg.minNumber}) is greater than maxNumber (${cfg.maxNumber})`);
  }
  if (!Number.isInteger(cfg.minSteps) || !Number.isInteger(cfg.maxSteps) || cfg.minSteps < 1) {
    fail(`minSteps and maxSteps must be integers of at least 1, got ${cfg.minSteps}`);
  }
  if (cfg.minSteps > cfg.maxSteps) {
    fail(`minSteps (${cfg.minSteps}) is greater than maxSteps (${cfg.maxSteps})`);
  }
  if (!Array.isArray(cfg.ops) || cfg.ops.length === 0) fail(`ops must list at least one of + - *`);
  for (const op of cfg.ops) {
    if (op !== "+" && op !== "-" && op !== "*") fail(`unknown op "${op}" (use + - *)`);
  }
}

interface Problem {
  question: string;
  solution: string;
  answer: number;
}

function generateOne(cfg: ArithmeticConfig, rng: () => number): Problem | null {
  const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
  const [name, She] = pick(PEOPLE);
  const she = She.toLowerCase();
  const [singular, plural] = pick(OBJECTS);
  const steps = int(cfg.minSteps, cfg.maxSteps);
  const start = int(cfg.minNumber, cfg.maxNumber);
  // Multiplying by 0 or 1 makes a poor question: use operands of at least 2 where the range has them.
  const mulLo = Math.max(cfg.minNumber, 2) <= cfg.maxNumber
    ? Math.max(cfg.minNumber, 2)
    : cfg.minNumber;
  let value = start;
  const calcs: string[] = [];
  const clauses: string[] = [];
  for (let s = 0; s < steps; s++) {
    const feasible = cfg.ops.filter((op) =>
      !(op === "-" && cfg.nonNegative && value < cfg.minNumber)
    );
    if (feasible.length === 0) return null;
    const op = pick(feasible);
    let n: number;
    let result: number;
    if (op === "+") {
      n = int(cfg.minNumber, cfg.maxNumber);
      result = value + n;
    } else if (op === "-") {
      n = int(cfg.minNumber, cfg.nonNegative ? Math.min(cfg.maxNumber, value) : cfg.maxNumber);
      result = value - n;
    } else {
      n = int(mulLo, cfg.maxNumber);
      result = value * n;
    }
    if (!Number.isSafeInteger(result)) return null;
    calcs.push(`${value}${op}${n}=${result}`);
    clauses.push(pick(CLAUSES[op]).replace("N", String(n)));
    value = result;
  }
  // Sentences of one or two clauses: "She buys 5 more and then gives away 3. Then she sells 2."
  const sentences: string[] = [];
  for (let i = 0; i < clauses.length;) {
    const subject = i === 0 ? She : `Then ${she}`;
    if (i + 1 < clauses.length && rng() < 0.5) {
      sentences.push(`${subject} ${clauses[i]} and then ${clauses[i + 1]}.`);
      i += 2;
    } else {
      sentences.push(`${subject} ${clauses[i]}.`);
      i += 1;
    }
  }
  const question = [
    `${name} has ${start} ${start === 1 ? singular : plural}.`,
    ...sentences,
    `How many ${plural} does ${name} have now?`,
  ].join(" ");
  return { question, solution: `${calcs.join(" ")}\n#### ${value}`, answer: value };
}

/** Attempts per problem to find one not yet generated before giving up on distinctness. */
const DISTINCT_TRIES = 1000;

/**
 * `count` word problems, identical for the same config. Problems are distinct (by question
 * text) while the space allows: once DISTINCT_TRIES draws in a row repeat earlier ones, the rest
 * may repeat. Settings that can produce no problem at all (say only "-" with nonNegative and a
 * start that runs out) are an ArithmeticConfigError.
 */
export function generateArithmetic(cfg: ArithmeticConfig): Question[] {
  checkConfig(cfg);
  const rng = makeRng(cfg.seed);
  const seen = new Set<string>();
  const out: Question[] = [];
  let distinct = true;
  while (out.length < cfg.count) {
    let chosen: Problem | null = null;
    let fallback: Problem | null = null;
    for (let t = 0; t < DISTINCT_TRIES && chosen === null; t++) {
      const p = generateOne(cfg, rng);
      if (p === null) continue;
      if (!distinct || !seen.has(p.question)) chosen = p;
      else fallback ??= p;
    }
    if (chosen === null) {
      if (fallback === null) {
        throw new ArithmeticConfigError(
          `arithmetic: no valid problem in ${DISTINCT_TRIES} tries with these settings`,
        );
      }
      distinct = false;
      chosen = fallback;
    }
    seen.add(chosen.question);
    const i = out.length;
    out.push({
      id: `arith-${cfg.seed}-${i}`,
      prompt: gsm8kPrompt(chosen.question),
      gold: String(chosen.answer),
      solution: chosen.solution,
    });
  }
  return out;
}

/**
 * How a response answers: "worked" when it writes a calculation ("12+5=17") before its final
 * answer, "answer-only" when it gives the answer alone ("#### 17").
 */
export function answerStyle(text: string): "worked" | "answer-only" {
  const head = text.split("####")[0];
  return head.includes("=") ? "worked" : "answer-only";
}

/**
 * The calculations a response writes ("12+5=17 17-3=14": whole numbers with +, -, * or /) and
 * how many of them are right: whether a student's errors are in its arithmetic or elsewhere.
 */
export function equations(text: string): { right: number; total: number } {
  let right = 0, total = 0;
  for (const [, a, op, b, c] of text.matchAll(/(-?\d+)\s*([+\-*/])\s*(-?\d+)\s*=\s*(-?\d+)/g)) {
    const [x, y, z] = [Number(a), Number(b), Number(c)];
    const value = op === "+" ? x + y : op === "-" ? x - y : op === "*" ? x * y : x / y;
    total++;
    if (value === z) right++;
  }
  return { right, total };
}
