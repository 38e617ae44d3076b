/**
 * The shapes every task shares: a question, a task kind, and a task (how to
 * read a response's final answer, how eval scores it, where generation
 * stops). The task files and the loader (task.ts) import these; nothing here
 * imports them back.
 */

export interface Question {
  id: string;
  prompt: string;
  /** gold final answer, canonical; used by eval, PPO's gold arm (an upper bound) and its gold_accuracy log */
  gold: string;
  /** gold full solution text if the dataset has one (GSM8K answer field, arithmetic) */
  solution?: string;
  /** subject, where the dataset has one (MMLU-Pro), for per-category eval tables */
  category?: string;
}

export type TaskKind = "gsm8k" | "mmlu-pro" | "arithmetic";

export interface Task {
  kind: TaskKind;
  /** Final answer of a response as the pipeline's labelling sees it (GSM8K: strict first, falling back to flexible; MMLU-Pro: extractChoice). */
  extract(response: string): string | null;
  /** Eval scores: GSM8K gives {strict, flexible}; MMLU-Pro gives {choice}. */
  score(response: string, gold: string): Record<string, boolean>;
  /** Stop strings that end a response (e.g. "\n\nQuestion:" for few-shot formats). */
  stop: string[];
}
