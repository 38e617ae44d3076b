/**
 * How a student answers, and what RL changed about it: the accuracy of its
 * worked answers against its answer-only ones, and a PPO student's
 * difference from the SFT student split by how each question's greedy answer
 * changed style. What RL can gain by choosing a style is bounded by the SFT
 * student's answer-only share times the gap between the two styles' accuracy;
 * the rest of a difference is a change within a style (docs/rl.md section 10).
 */

/** Accuracy of a row's greedy answers by style. */
export interface StyleGap {
  worked: { n: number; accuracy: number };
  answerOnly: { n: number; accuracy: number };
}

/** One cell of the split: questions whose greedy answer went from one style to another. */
export interface StyleSwitch {
  from: "worked" | "answer-only";
  to: "worked" | "answer-only";
  n: number;
  /** Accuracy on those questions before (SFT) and after (PPO). */
  before: number;
  after: number;
  /** Their share of the whole difference, in accuracy over all questions. */
  contribution: number;
}

/** Share true; NaN for none (a cell without questions has no accuracy, and reports say n/a). */
const rate = (xs: boolean[]) => (xs.length ? xs.filter(Boolean).length / xs.length : NaN);

export function styleGap(correct: boolean[], worked: boolean[]): StyleGap {
  if (correct.length !== worked.length) throw new Error("styleGap: lengths differ");
  const pick = (w: boolean) => correct.filter((_, i) => worked[i] === w);
  const w = pick(true);
  const a = pick(false);
  return {
    worked: { n: w.length, accuracy: rate(w) },
    answerOnly: { n: a.length, accuracy: rate(a) },
  };
}

/**
 * The difference after − before, split into four cells by each question's
 * style before and after; the cells' contributions sum to the whole difference.
 */
export function styleSwitches(
  before: { correct: boolean[]; worked: boolean[] },
  after: { correct: boolean[]; worked: boolean[] },
): StyleSwitch[] {
  const total = before.correct.length;
  if ([before.worked, after.correct, after.worked].some((x) => x.length !== total)) {
    throw new Error("styleSwitches: the rows cover different questions");
  }
  const style = (w: boolean) => (w ? "worked" : "answer-only") as StyleSwitch["from"];
  const cells: StyleSwitch[] = [];
  for (const from of [true, false]) {
    for (const to of [true, false]) {
      const idx = [...Array(total).keys()].filter((i) =>
        before.worked[i] === from && after.worked[i] === to
      );
      const b = rate(idx.map((i) => before.correct[i]));
      const a = rate(idx.map((i) => after.correct[i]));
      cells.push({
        from: style(from),
        to: style(to),
        n: idx.length,
        before: b,
        after: a,
        contribution: idx.length ? (idx.length * (a - b)) / total : 0,
      });
    }
  }
  return cells;
}

/** The style account of an eval: each greedy row's gap, and each student's switches from SFT. */
export function styleAccount(
  perQuestion: Record<string, Record<string, boolean[]>>,
  worked: Record<string, boolean[]> | undefined,
  sft = "SFT student",
): { gaps: Record<string, StyleGap>; switches: Record<string, StyleSwitch[]> } | null {
  if (!worked || !worked[sft]) return null;
  const correct = (name: string) => Object.values(perQuestion[name] ?? {})[0];
  const gaps: Record<string, StyleGap> = {};
  const switches: Record<string, StyleSwitch[]> = {};
  for (const [name, w] of Object.entries(worked)) {
    const c = correct(name);
    if (!c) continue;
    gaps[name] = styleGap(c, w);
    if (name !== sft && name.includes("student")) {
      switches[name] = styleSwitches({ correct: correct(sft), worked: worked[sft] }, {
        correct: c,
        worked: w,
      });
    }
  }
  return { gaps, switches };
}
