/**
 * Builds tasks: `makeTask`, a task kind's answer reading, scoring and stop strings (the shapes are
 * in types.ts); and `loadTask`, which builds the task with its questions.
 *
 * Gold labels (`Question.gold`) are for evaluation only: the pipeline labels training questions
 * by majority vote over `Task.extract` of the teacher's responses.
 */
import { EngineError } from "../errors.ts";
import { extractChoice, extractFlexible, extractStrict, sameAnswer } from "./answers.ts";
import { type ArithmeticConfig, generateArithmetic } from "./arithmetic.ts";
import { loadGsm8k } from "./gsm8k.ts";
import { slice } from "./jsonl.ts";
import { loadMmluPro } from "./mmlu_pro.ts";
import type { Question, Task, TaskKind } from "./types.ts";

export const TASK_KINDS: readonly TaskKind[] = ["gsm8k", "mmlu-pro", "arithmetic"];

/** An unknown task kind, or options a task kind needs and did not get. */
export class TaskError extends EngineError {}

function numericTask(kind: "gsm8k" | "arithmetic"): Task {
  return {
    kind,
    extract: (response) => extractStrict(response) ?? extractFlexible(response),
    score: (response, gold) => ({
      strict: sameAnswer(extractStrict(response), gold),
      flexible: sameAnswer(extractFlexible(response), gold),
    }),
    // lm-evaluation-harness gsm8k.yaml: until ["\n\n", "Question:"]. GSM8K and arithmetic
    // solutions never contain a blank line.
    stop: ["\n\n", "Question:"],
  };
}

export function makeTask(kind: TaskKind): Task {
  switch (kind) {
    case "gsm8k":
    case "arithmetic":
      return numericTask(kind);
    case "mmlu-pro":
      return {
        kind,
        extract: extractChoice,
        score: (response, gold) => ({ choice: extractChoice(response) === gold }),
        // evaluate_from_local.py: SamplingParams(stop=["Question:"]). Chain-of-thought answers
        // have blank lines, so "\n\n" must not stop them.
        stop: ["Question:"],
      };
    default:
      throw new TaskError(
        `unknown task kind "${kind as string}" (use ${TASK_KINDS.join(", ")})`,
      );
  }
}

export interface LoadTaskOptions {
  /** JSONL file (gsm8k, mmlu-pro) */
  path?: string;
  limit?: number;
  offset?: number;
  /** mmlu-pro: validation JSONL for few-shot exemplars */
  validationPath?: string;
  /** mmlu-pro: exemplars per prompt (default 0) */
  shots?: number;
  /** mmlu-pro: categories to keep */
  categories?: string[];
  /** arithmetic: generator settings */
  arithmetic?: ArithmeticConfig;
}

/** The task of `kind` and its questions. */
export async function loadTask(
  kind: TaskKind,
  opts: LoadTaskOptions,
): Promise<{ task: Task; questions: Question[] }> {
  const task = makeTask(kind);
  const needPath = (): string => {
    if (opts.path === undefined) throw new TaskError(`task ${kind}: needs a data file path`);
    return opts.path;
  };
  let questions: Question[];
  if (kind === "gsm8k") {
    questions = await loadGsm8k(needPath(), { limit: opts.limit, offset: opts.offset });
  } else if (kind === "mmlu-pro") {
    questions = await loadMmluPro(needPath(), {
      limit: opts.limit,
      offset: opts.offset,
      validationPath: opts.validationPath,
      shots: opts.shots,
      categories: opts.categories,
    });
  } else {
    if (opts.arithmetic === undefined) {
      throw new TaskError(`task arithmetic: needs generator settings ("arithmetic")`);
    }
    questions = slice(generateArithmetic(opts.arithmetic), opts, "arithmetic");
  }
  return { task, questions };
}
