/**
 * Paired statistics for the eval table: mean ± standard error, and a PPO
 * student's difference from the SFT student paired by question, for one run
 * (the report) or averaged over seeds (the effect study).
 */
import type { EvalResult } from "./eval.ts";

export interface MeanSe {
  mean: number;
  se: number;
  n: number;
}

/** Mean and standard error (sample standard deviation / √n) of finite values. */
export function meanSe(xs: number[]): MeanSe {
  const v = xs.filter(Number.isFinite);
  const n = v.length;
  const mean = n ? v.reduce((a, b) => a + b, 0) / n : NaN;
  const sd = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : NaN;
  return { mean, se: sd / Math.sqrt(n), n };
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 erf, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 -
    (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

export interface PairedDifference extends MeanSe {
  /** mean / se */
  z: number;
  /** Two-sided p-value of the paired test (normal approximation; n is the question count). */
  p: number;
  test: string;
}

/**
 * The difference b − a in correctness, paired by question: each question's
 * difference is averaged over the seeds, then mean ± SE over questions, and
 * a two-sided paired z-test (a t-test with n − 1 ≥ 100 degrees of freedom
 * differs from it by under 1%).
 */
export function pairedDifference(a: boolean[][], b: boolean[][]): PairedDifference {
  if (a.length !== b.length || a.some((s, i) => s.length !== b[i].length)) {
    throw new Error("pairedDifference: the two sides cover different seeds or questions");
  }
  const questions = a[0]?.length ?? 0;
  const d = Array.from({ length: questions }, (_, q) => {
    let s = 0;
    for (let k = 0; k < a.length; k++) s += (b[k][q] ? 1 : 0) - (a[k][q] ? 1 : 0);
    return s / a.length;
  });
  const m = meanSe(d);
  const z = m.se > 0 ? m.mean / m.se : 0;
  return {
    ...m,
    z,
    p: 2 * (1 - normalCdf(Math.abs(z))),
    test: "two-sided paired z-test over questions",
  };
}

/** The primary metric's per-question scores of a row (strict for GSM8K-style tasks). */
function primaryScores(s: Record<string, boolean[]> | undefined): boolean[] | null {
  return s ? Object.values(s)[0] : null;
}

/** Each PPO row's difference from the SFT row, paired by question over the runs given. */
export function ppoDifferences(evals: EvalResult[]): Record<string, PairedDifference> {
  const names = [...new Set(evals.flatMap((e) => Object.keys(e.rows)))];
  const differences: Record<string, PairedDifference> = {};
  // Every student built on the SFT one: PPO, GKD and best-of-n with the reward model.
  const built = (n: string) =>
    ["PPO student", "GKD student", "Best-of-", "SFT student (equal compute)"].some((p) =>
      n.startsWith(p)
    );
  for (const name of names.filter(built)) {
    // Like with like: a PPO student's pass@K against the SFT student's pass@K.
    const suffix = name.match(/ pass@\d+$/)?.[0] ?? "";
    const base = `SFT student${suffix}`;
    const sft = evals.map((e) => primaryScores(e.perQuestion[base]));
    const ppo = evals.map((e) => primaryScores(e.perQuestion[name]));
    if (sft.every(Boolean) && ppo.every(Boolean)) {
      differences[`${name} − ${base}`] = pairedDifference(
        sft as boolean[][],
        ppo as boolean[][],
      );
    }
  }
  return differences;
}
