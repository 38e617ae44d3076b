/**
 * PPO's prompts at the edge of what the SFT student solves: the share of its
 * student-generate responses that match the pseudo-label (no gold label is
 * read). A prompt the student never or always solves gives every response to
 * it the same reward, so RLOO learns nothing from it (DAPO's dynamic sampling
 * drops such groups online; here they are dropped once, before PPO).
 */
import type { Question } from "../tasks/types.ts";
import { byId } from "./context.ts";
import type { ResponseRow } from "../run/rows.ts";

/** Per question, the share of the student's responses with reward 1. */
export function passRates(rows: ResponseRow[]): Map<string, number> {
  const rates = new Map<string, number>();
  for (const [id, rs] of byId(rows)) {
    rates.set(id, rs.filter((r) => r.reward === 1).length / rs.length);
  }
  return rates;
}

/**
 * The questions whose pass rate lies in [min, max]. A question the student
 * was not sampled on (its pseudo-label was dropped) counts as rate 0.
 */
export function edgePrompts(
  questions: Question[],
  rates: Map<string, number>,
  min: number,
  max: number,
): Question[] {
  return questions.filter((q) => {
    const rate = rates.get(q.id) ?? 0;
    return rate >= min && rate <= max;
  });
}
