/**
 * MMLU-Pro (TIGER-Lab JSONL: question_id, question, options, answer, cot_content, category), in
 * the official chain-of-thought format of TIGER-Lab's evaluate_from_local.py.
 */
import {
  DataError,
  readJsonlLines,
  requireId,
  requireString,
  requireStringArray,
  slice,
} from "./jsonl.ts";
import type { Question } from "./types.ts";

const LETTERS = "ABCDEFGHIJ";

/** One MMLU-Pro row, with "N/A" options dropped as the official `preprocess` does. */
export interface MmluProItem {
  id: string;
  line: number;
  question: string;
  options: string[];
  answer: string;
  category: string;
  cotContent: string;
}

/**
 * The header of the official prompt (cot_prompt_lib/initial_prompt.txt with "{$}" replaced).
 * The official script ends it with four newlines (the file's two trailing blank lines plus one
 * added "\n"); we end it with one blank line, like the exemplars.
 */
export function mmluProHeader(category: string): string {
  return `The following are multiple choice questions (with answers) about ${category}. ` +
    `Think step by step and then finish your answer with "the answer is (X)" where X is the ` +
    `correct letter choice.\n\n`;
}

function formatQuestion(item: MmluProItem): string {
  let s = `Question:\n${item.question}\nOptions:\n`;
  item.options.forEach((opt, i) => {
    s += `${LETTERS[i]}. ${opt}\n`;
  });
  return s;
}

/** A validation exemplar: the question, then "Answer: " and its worked solution, then "\n\n". */
export function mmluProExemplar(item: MmluProItem): string {
  const cot = item.cotContent.startsWith("A: ") ? item.cotContent.slice(3) : item.cotContent;
  return `${formatQuestion(item)}Answer: ${cot}\n\n`;
}

/** The full prompt: header, exemplars, then the question ending "Answer: Let's think step by step." */
export function mmluProPrompt(item: MmluProItem, exemplars: MmluProItem[] = []): string {
  return mmluProHeader(item.category) + exemplars.map(mmluProExemplar).join("") +
    `${formatQuestion(item)}Answer: Let's think step by step.`;
}

/** Reads every row of an MMLU-Pro JSONL file (test or validation split). */
export async function readMmluPro(path: string): Promise<MmluProItem[]> {
  const rows = await readJsonlLines(path);
  return rows.map(({ line, row }) => {
    const where = `${path}:${line}`;
    const options = requireStringArray(row, "options", where).filter((o) => o !== "N/A");
    const answer = requireString(row, "answer", where);
    const index = LETTERS.indexOf(answer);
    if (answer.length !== 1 || index < 0) {
      throw new DataError(`${where}: field "answer" must be one letter A-J, got "${answer}"`);
    }
    if (index >= options.length) {
      throw new DataError(`${where}: answer ${answer} but only ${options.length} options`);
    }
    const cot = row["cot_content"];
    return {
      id: requireId(row, "question_id", where),
      line,
      question: requireString(row, "question", where),
      options,
      answer,
      category: requireString(row, "category", where),
      cotContent: typeof cot === "string" ? cot : "",
    };
  });
}

/**
 * Loads MMLU-Pro questions: `categories` filters first (exact names; one that matches nothing
 * is an error), then `offset` and `limit`. With `shots` > 0, each prompt carries the first
 * `shots` rows of the same category from `validationPath` (fewer if it has fewer), as the
 * official script does. `gold` is the answer letter; `id` is "mmlu-pro-<question_id>".
 */
export async function loadMmluPro(
  path: string,
  opts: {
    limit?: number;
    offset?: number;
    validationPath?: string;
    shots?: number;
    categories?: string[];
  } = {},
): Promise<Question[]> {
  const shots = opts.shots ?? 0;
  if (!Number.isInteger(shots) || shots < 0) {
    throw new DataError(`${path}: shots must be a non-negative integer, got ${shots}`);
  }
  if (shots > 0 && opts.validationPath === undefined) {
    throw new DataError(`${path}: shots=${shots} needs validationPath for the exemplars`);
  }
  let items = await readMmluPro(path);
  if (opts.categories !== undefined) {
    const present = new Set(items.map((it) => it.category));
    for (const c of opts.categories) {
      if (!present.has(c)) {
        const known = [...present].sort().join(", ");
        throw new DataError(`${path}: no questions in category "${c}" (categories: ${known})`);
      }
    }
    const wanted = new Set(opts.categories);
    items = items.filter((it) => wanted.has(it.category));
  }
  items = slice(items, opts, path);
  const exemplars = new Map<string, MmluProItem[]>();
  if (shots > 0) {
    for (const ex of await readMmluPro(opts.validationPath!)) {
      const list = exemplars.get(ex.category) ?? [];
      if (list.length < shots) list.push(ex);
      exemplars.set(ex.category, list);
    }
  }
  return items.map((it) => ({
    id: `mmlu-pro-${it.id}`,
    prompt: mmluProPrompt(it, exemplars.get(it.category) ?? []),
    gold: it.answer,
    category: it.category,
  }));
}
