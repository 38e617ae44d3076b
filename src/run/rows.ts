/**
 * The rows a run directory holds that more than one reader needs: the
 * generate stages write response rows (teacher/, student/), the label stage
 * writes labels.json, and the progress server reads both.
 */

/** One teacher or student response, as the generate stages write it. */
export interface ResponseRow {
  id: string;
  prompt: string;
  temperature: number;
  sample: number;
  text: string;
  answer: string | null;
  finish: string;
  tokens: number;
  /** 1 if the answer matches the pseudo-label (student rows), else 0. */
  reward?: number;
}

/** A question's majority vote, as the label stage writes it. */
export interface LabelRow {
  id: string;
  pseudo_label: string | null;
  agreement: number;
  kept: boolean;
  votes: Record<string, number>;
  /** judge mode: per-response judged positives, keyed by `${temperature}:${sample}`. */
  judged?: Record<string, boolean>;
}
