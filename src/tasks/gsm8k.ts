/**
 * GSM8K (openai/grade-school-math JSONL: {"question", "answer"}), in lm-evaluation-harness's
 * zero-shot format "Question: ...\nAnswer:".
 */
import { extractStrict } from "./answers.ts";
import { DataError, readJsonlLines, requireString, slice } from "./jsonl.ts";
import type { Question } from "./types.ts";

/** The prompt for one GSM8K-format question. */
export function gsm8kPrompt(question: string): string {
  return `Question: ${question}\nAnswer:`;
}

/**
 * Loads GSM8K questions. `gold` is the canonical number after "#### " in the answer field,
 * `solution` the whole answer field, `id` "gsm8k-<line>" (1-based line number in the file).
 * `offset` and `limit` count questions, in file order.
 */
export async function loadGsm8k(
  path: string,
  opts: { limit?: number; offset?: number } = {},
): Promise<Question[]> {
  const rows = slice(await readJsonlLines(path), opts, path);
  return rows.map(({ line, row }) => {
    const where = `${path}:${line}`;
    const question = requireString(row, "question", where);
    const answer = requireString(row, "answer", where);
    const gold = extractStrict(answer);
    if (gold === null) {
      throw new DataError(`${where}: field "answer" has no final "#### <number>" line`);
    }
    return { id: `gsm8k-${line}`, prompt: gsm8kPrompt(question), gold, solution: answer };
  });
}
