/**
 * The effect study: the whole pipeline once per seed (sharing the teacher's
 * responses), PPO with each reward source, and one aggregated report with
 * every row per seed and as mean ± standard error, plus the PPO student's
 * difference from the SFT student paired by question.
 */
import type { EvalResult } from "../stages/eval.ts";
import type { Compute } from "../stages/compute.ts";
import { type MeanSe, meanSe, type PairedDifference, ppoDifferences } from "../stages/paired.ts";
import { styleAccount } from "../stages/styles.ts";

export { meanSe, normalCdf, pairedDifference } from "../stages/paired.ts";

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

/** Every row of the report, per seed and aggregated. */
export function aggregate(results: SeedResult[]): {
  rows: EffectRow[];
  differences: Record<string, PairedDifference>;
  finalKl: EffectRow[];
  /** Each method row's compute beyond the SFT student, mean over seeds. */
  compute: Record<string, Compute>;
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
    row(
      "reward model held-out AUC within a question (gold)",
      (e) => e.rewardModel?.aucWithinQuestion ?? NaN,
    ),
  ];
  if (results.some((r) => r.eval.rewardModel?.aucWithinQuestionByStyle)) {
    rows.push(
      row(
        "reward model held-out AUC within a question, worked answers (gold)",
        (e) => e.rewardModel?.aucWithinQuestionByStyle?.worked ?? NaN,
      ),
      row(
        "reward model held-out AUC within a question, answer-only (gold)",
        (e) => e.rewardModel?.aucWithinQuestionByStyle?.answerOnly ?? NaN,
      ),
    );
  }
  if (results.some((r) => r.eval.pseudoLabels.fresh)) {
    rows.push(
      row(
        "pseudo-labels right (PPO's fresh prompts, kept)",
        (e) => e.pseudoLabels.fresh?.kept ?? NaN,
      ),
      row("PPO's fresh prompts kept", (e) => e.pseudoLabels.fresh?.keptFraction ?? NaN),
    );
  }
  if (results.some((r) => r.eval.pseudoLabels.paidByStyle)) {
    // The share of the SFT student's wrong answers the pseudo-label match pays, by style.
    rows.push(
      row(
        "pseudo-label match pays wrong worked answers (student-generate)",
        (e) => e.pseudoLabels.paidByStyle?.worked.wrong ?? NaN,
      ),
      row(
        "pseudo-label match pays wrong answer-only answers (student-generate)",
        (e) => e.pseudoLabels.paidByStyle?.answerOnly.wrong ?? NaN,
      ),
    );
  }
  if (results.some((r) => r.eval.rewardModelTeacherOnly)) {
    rows.push(
      row(
        "teacher-only reward model held-out AUC (gold)",
        (e) => e.rewardModelTeacherOnly?.auc ?? NaN,
      ),
    );
  }
  rows.push(...styleRows(results, row));
  const differences = ppoDifferences(results.map((r) => r.eval));
  const klNames = [...new Set(results.flatMap((r) => Object.keys(r.eval.finalKl ?? {})))];
  const finalKl = klNames.map((n) => row(n, (e) => e.finalKl?.[n] ?? NaN));
  const compute: Record<string, Compute> = {};
  const computeNames = [...new Set(results.flatMap((r) => Object.keys(r.eval.compute ?? {})))];
  for (const n of computeNames) {
    const mean = (k: keyof Compute) =>
      results.reduce((s, r) => s + (r.eval.compute?.[n]?.[k] ?? NaN), 0) / results.length;
    compute[n] = {
      tokensGenerated: mean("tokensGenerated"),
      tokensTrained: mean("tokensTrained"),
      wallSeconds: mean("wallSeconds"),
    };
  }
  return { rows, differences, finalKl, compute };
}

/**
 * The SFT student's accuracy by style, and the points of each student's difference that came
 * from questions it switched from answer-only to worked (styles.ts); runs without styles: none.
 */
function styleRows(
  results: SeedResult[],
  row: (name: string, f: (e: EvalResult) => number) => EffectRow,
): EffectRow[] {
  const accounts = new Map(
    results.map((r) => [r.eval, styleAccount(r.eval.perQuestion, r.eval.perQuestionWorked)]),
  );
  if ([...accounts.values()].some((a) => !a)) return [];
  const at = (e: EvalResult) => accounts.get(e)!;
  const sft = (e: EvalResult) => at(e).gaps["SFT student"];
  const out = [
    row("SFT student: greedy answers worked", (e) => {
      const g = sft(e);
      return g.worked.n / (g.worked.n + g.answerOnly.n);
    }),
    row("SFT student: worked answers right", (e) => sft(e).worked.accuracy),
    row("SFT student: answer-only answers right", (e) => sft(e).answerOnly.accuracy),
  ];
  const names = [...new Set([...accounts.values()].flatMap((a) => Object.keys(a!.switches)))];
  for (const n of names) {
    out.push(
      row(
        `${n}: points from answer-only → worked`,
        (e) =>
          at(e).switches[n]?.find((c) => c.from === "answer-only" && c.to === "worked")
            ?.contribution ?? NaN,
      ),
    );
  }
  return out;
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
  const computeRows = Object.entries(agg.compute ?? {});
  if (computeRows.length) {
    lines.push(
      "",
      "What each row cost beyond the SFT student (mean over seeds; the teacher's samples, labels and SFT are shared):",
      "",
      "| row | tokens generated | tokens trained | wall time |",
      "| --- | ---: | ---: | ---: |",
    );
    for (const [name, c] of computeRows) {
      lines.push(
        `| ${name} | ${Math.round(c.tokensGenerated).toLocaleString("en")} | ${
          Math.round(c.tokensTrained).toLocaleString("en")
        } | ${c.wallSeconds.toFixed(0)} s |`,
      );
    }
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
