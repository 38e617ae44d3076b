/**
 * The effect study: the whole pipeline once per seed (sharing the teacher's
 * responses), PPO with each reward source, and one aggregated report with
 * every row per seed and as mean ± standard error, plus the PPO student's
 * difference from the SFT student paired by question.
 */
import type { EvalResult } from "../stages/eval.ts";

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

export interface SeedResult {
  seed: number;
  eval: EvalResult;
}

export interface EffectRow {
  name: string;
  perSeed: number[];
  summary: MeanSe;
}

/** The first metric of a table row (strict for GSM8K-style tasks, choice for MMLU-Pro). */
function primary(r: Record<string, number> | undefined): number {
  return r ? Object.values(r)[0] : NaN;
}

function primaryScores(s: Record<string, boolean[]> | undefined): boolean[] | null {
  return s ? Object.values(s)[0] : null;
}

/** Every row of the report, per seed and aggregated. */
export function aggregate(results: SeedResult[]): {
  rows: EffectRow[];
  differences: Record<string, PairedDifference>;
  finalKl: EffectRow[];
} {
  const rowNames = [...new Set(results.flatMap((r) => Object.keys(r.eval.rows)))];
  const row = (name: string, f: (e: EvalResult) => number): EffectRow => {
    const perSeed = results.map((r) => f(r.eval));
    return { name, perSeed, summary: meanSe(perSeed) };
  };
  const rows: EffectRow[] = [
    ...rowNames.map((n) => row(n, (e) => primary(e.rows[n]))),
    row("pseudo-labels right (all training questions)", (e) => e.pseudoLabels.all),
    row("pseudo-labels right (kept questions)", (e) => e.pseudoLabels.kept),
    row("training questions kept", (e) => e.pseudoLabels.keptFraction),
    row("reward model held-out accuracy (gold)", (e) => e.rewardModel?.accuracy ?? NaN),
    row("reward model held-out AUC (gold)", (e) => e.rewardModel?.auc ?? NaN),
  ];
  const differences: Record<string, PairedDifference> = {};
  for (const name of rowNames.filter((n) => n.startsWith("PPO student"))) {
    // Like with like: a PPO student's pass@K against the SFT student's pass@K.
    const suffix = name.match(/ pass@\d+$/)?.[0] ?? "";
    const base = `SFT student${suffix}`;
    const sft = results.map((r) => primaryScores(r.eval.perQuestion[base]));
    const ppo = results.map((r) => primaryScores(r.eval.perQuestion[name]));
    if (sft.every(Boolean) && ppo.every(Boolean)) {
      differences[`${name} − ${base}`] = pairedDifference(
        sft as boolean[][],
        ppo as boolean[][],
      );
    }
  }
  const klNames = [...new Set(results.flatMap((r) => Object.keys(r.eval.finalKl ?? {})))];
  const finalKl = klNames.map((n) => row(n, (e) => e.finalKl?.[n] ?? NaN));
  return { rows, differences, finalKl };
}

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : "n/a");

/** The aggregated report as Markdown. */
export function effectMarkdown(
  title: string,
  seeds: number[],
  agg: ReturnType<typeof aggregate>,
  meta: { questions: number; adapter: string; date: string },
): string {
  const lines = [
    `# ${title}`,
    "",
    `${meta.questions} held-out questions, greedy; seeds ${
      seeds.join(", ")
    }; ${meta.date}; adapter: ${meta.adapter}.`,
    "Values are percentages (AUC ×100); mean ± standard error over seeds.",
    "",
    `| row | ${seeds.map((s) => `seed ${s}`).join(" | ")} | mean ± SE |`,
    `| --- | ${seeds.map(() => "---:").join(" | ")} | ---: |`,
  ];
  for (const r of agg.rows) {
    lines.push(
      `| ${r.name} | ${r.perSeed.map(pct).join(" | ")} | ${pct(r.summary.mean)} ± ${
        pct(r.summary.se)
      } |`,
    );
  }
  lines.push("", "Paired by question (each question's difference averaged over seeds):", "");
  for (const [name, d] of Object.entries(agg.differences)) {
    lines.push(
      `- ${name}: ${d.mean >= 0 ? "+" : ""}${pct(d.mean)} ± ${pct(d.se)} points ` +
        `(n = ${d.n} questions, z = ${d.z.toFixed(2)}, p = ${d.p.toPrecision(2)}, ${d.test}).`,
    );
  }
  if (agg.finalKl.length) {
    lines.push("", "Final KL to the SFT reference (nats per response, last PPO iteration):", "");
    for (const r of agg.finalKl) {
      lines.push(
        `- ${r.name}: ${r.perSeed.map((v) => v.toFixed(3)).join(", ")} (mean ${
          r.summary.mean.toFixed(3)
        })`,
      );
    }
  }
  return lines.join("\n") + "\n";
}
