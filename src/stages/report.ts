/**
 * The report: the eval table and a compute account per stage (tokens
 * generated, tokens trained, wall time), as report.json and report.md.
 */
import { gpu } from "../gpu/mod.ts";
import type { StageContext } from "./context.ts";
import { type EvalResult, PPO_ROWS } from "./eval.ts";
import { ppoDifferences } from "./paired.ts";
import { styleAccount } from "./styles.ts";
import { readMetrics } from "../run/run_dir.ts";
import { ppoDir, type RewardSource } from "./ppo.ts";

export interface StageAccount {
  stage: string;
  tokensGenerated: number;
  tokensTrained: number;
  wallSeconds: number;
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : "n/a");
/** An AUC or a mean reward to 3 places; NaN (nothing to count) comes back from JSON as null. */
const fixed3 = (x: number | null) => (x ?? NaN).toFixed(3);

/** One PPO arm's test-split score after each `ppo.evalEvery` iterations. */
interface PpoCurve {
  metric: string;
  /** [iterations done, share right] */
  points: [number, number][];
}

/**
 * Each PPO arm's curve from metrics.jsonl: the task's first score (arithmetic: strict), and for
 * each iteration the last value logged, as a resumed run may log one twice.
 */
async function ppoCurves(ctx: StageContext): Promise<Record<string, PpoCurve>> {
  const rows = await readMetrics(ctx.run.path("metrics.jsonl"));
  const out: Record<string, PpoCurve> = {};
  for (const reward of ctx.cfg.ppo.rewards as RewardSource[]) {
    const mine = rows.filter((r) =>
      r.stage === ppoDir(reward) && r.name.startsWith("eval_") && r.name !== "eval_worked_share"
    );
    if (mine.length === 0) continue;
    const metric = mine[0].name;
    const byStep = new Map<number, number>();
    for (const r of mine) if (r.name === metric) byStep.set(r.step, r.value);
    const points = [...byStep].sort((a, b) => a[0] - b[0])
      .map(([s, v]): [number, number] => [s + 1, v]);
    out[PPO_ROWS[reward]] = { metric: metric.slice("eval_".length), points };
  }
  return out;
}

/** "worked answers right 0.812, wrong 0.092; answer-only right 0.689, wrong 0.396." */
const paidLine = (p: NonNullable<EvalResult["pseudoLabels"]["paidByStyle"]>) =>
  `worked answers right ${fixed3(p.worked.right)}, wrong ${fixed3(p.worked.wrong)}; ` +
  `answer-only right ${fixed3(p.answerOnly.right)}, wrong ${fixed3(p.answerOnly.wrong)}.`;

export async function writeReport(
  ctx: StageContext,
  stages: string[],
): Promise<Record<string, unknown>> {
  const result = (await ctx.run.readJson("eval/results.json")) as EvalResult | null;
  const accounts: StageAccount[] = [];
  for (const stage of stages) {
    const s = (await ctx.run.stageDone(stage)) as Record<string, number> | null;
    if (!s) continue;
    accounts.push({
      stage,
      tokensGenerated: s.tokensGenerated ?? 0,
      tokensTrained: s.tokensTrained ?? 0,
      wallSeconds: s.wallSeconds ?? 0,
    });
  }
  const label = (await ctx.run.stageDone("label")) as { positivesWorked?: number } | null;
  const report = {
    name: ctx.cfg.name,
    task: ctx.cfg.task.kind,
    seed: ctx.cfg.seed,
    date: new Date().toISOString().slice(0, 10),
    adapter: gpu().info.description,
    params: result?.params ?? null,
    eval: result ? { questions: result.questions, rows: result.rows } : null,
    differences: result ? ppoDifferences([result]) : null,
    workedShare: result?.workedShare ?? null,
    equationAccuracy: result?.equationAccuracy ?? null,
    styles: result ? styleAccount(result.perQuestion, result.perQuestionWorked) : null,
    positivesWorked: label?.positivesWorked ?? null,
    pseudoLabels: result?.pseudoLabels ?? null,
    rewardModel: result?.rewardModel ?? null,
    rewardModelTeacherOnly: result?.rewardModelTeacherOnly ?? null,
    ppoCurves: await ppoCurves(ctx),
    compute: accounts,
    methodCompute: result?.compute ?? null,
  };
  await ctx.run.writeJson("report.json", report);

  const lines = [`# Distillation report: ${ctx.cfg.name}`, ""];
  lines.push(
    `Task ${ctx.cfg.task.kind}, seed ${ctx.cfg.seed}, ${report.date}, adapter: ${report.adapter}.`,
    "",
  );
  if (result) {
    const metrics = [...new Set(Object.values(result.rows).flatMap((r) => Object.keys(r)))];
    lines.push(`Held-out accuracy on ${result.questions} questions:`, "");
    lines.push(
      `| model | ${metrics.join(" | ")} |`,
      `| --- | ${metrics.map(() => "---").join(" | ")} |`,
    );
    for (const [name, r] of Object.entries(result.rows)) {
      lines.push(`| ${name} | ${metrics.map((m) => (m in r ? pct(r[m]) : "")).join(" | ")} |`);
    }
    lines.push("", "Paired by question, against the SFT student (± one standard error):", "");
    for (const [name, d] of Object.entries(report.differences ?? {})) {
      lines.push(
        `- ${name}: ${d.mean >= 0 ? "+" : ""}${(100 * d.mean).toFixed(1)} ± ${
          (100 * d.se).toFixed(1)
        } points (z = ${d.z.toFixed(2)}, p = ${d.p.toPrecision(2)}).`,
      );
    }
    const share = Object.entries(result.workedShare ?? {});
    if (share.length) {
      lines.push(
        "",
        `Greedy answers that work a calculation: ${
          share.map(([n, v]) => `${n} ${pct(v)}`).join(", ")
        }.`,
      );
    }
    const eqs = Object.entries(result.equationAccuracy ?? {});
    if (eqs.length) {
      lines.push(
        `Calculations in those answers that are right (each "a+b=c" checked): ${
          eqs.map(([n, v]) => `${n} ${pct(v)}`).join(", ")
        }.`,
      );
    }
    lines.push(...styleLines(report.styles));
    const params = result.params;
    if (params) {
      lines.push(
        `Parameters: teacher ${params.teacher?.toLocaleString("en") ?? "n/a (served)"}, ` +
          `student ${params.student.toLocaleString("en")}.`,
      );
    }
    const p = result.pseudoLabels;
    lines.push(
      "",
      `Pseudo-labels on the training questions: ${pct(p.all)} right overall, ${
        pct(p.kept)
      } on the ` +
        `${pct(p.keptFraction)} kept.` +
        (report.positivesWorked === null
          ? ""
          : ` Of the teacher's positive responses, ${pct(report.positivesWorked)} are worked.`),
    );
    // "them": the training questions of the line above, before the fresh prompts' line.
    if (p.paidByStyle) {
      lines.push(
        `The pseudo-label match pays the SFT student's samples of them (student-generate): ` +
          paidLine(p.paidByStyle),
      );
    }
    if (p.fresh) {
      lines.push(
        `On PPO's fresh prompts (label.voters ${ctx.cfg.label.voters}): ${
          pct(p.fresh.all)
        } right overall, ${pct(p.fresh.kept)} on the ${pct(p.fresh.keptFraction)} kept.`,
      );
    }
    for (const [name, kl] of Object.entries(result.finalKl ?? {})) {
      lines.push(
        `${name}: KL to the SFT reference ${
          kl.toFixed(3)
        } nats per response at its last iteration.`,
      );
    }
    for (const [name, c] of Object.entries(report.ppoCurves)) {
      const sft = result.rows["SFT student"]?.[c.metric];
      const start = sft === undefined ? "" : `0 (SFT) ${pct(sft)}, `;
      lines.push(
        `${name}, ${c.metric} on the test questions by iterations done (ppo.evalEvery): ${start}` +
          c.points.map(([n, v]) => `${n} ${pct(v)}`).join(", ") + ".",
      );
    }
    const models = [
      ["Reward model", result.rewardModel],
      ["Reward model trained on teacher responses only", result.rewardModelTeacherOnly],
    ] as const;
    for (const [what, m] of models) {
      if (!m) continue;
      lines.push(
        `${what} on held-out responses, against gold correctness: accuracy ${pct(m.accuracy)}, ` +
          `AUC ${m.auc.toFixed(3)} (${m.n} responses), ` +
          `within a question's answers ${fixed3(m.aucWithinQuestion)}` +
          (m.aucWithinQuestionByStyle
            ? ` (within one style: worked ${fixed3(m.aucWithinQuestionByStyle.worked)}, ` +
              `answer-only ${fixed3(m.aucWithinQuestionByStyle.answerOnly)})`
            : "") +
          "." +
          (m.paidByStyle ? ` Mean reward paid: ${paidLine(m.paidByStyle)}` : ""),
      );
    }
  }
  if (result?.compute) {
    lines.push(
      "",
      "What each row cost beyond the SFT student (the teacher's samples, labels and SFT are shared):",
      "",
      "| row | tokens generated | tokens trained | wall time |",
      "| --- | ---: | ---: | ---: |",
    );
    for (const [name, c] of Object.entries(result.compute)) {
      lines.push(
        `| ${name} | ${Math.round(c.tokensGenerated).toLocaleString("en")} | ${
          Math.round(c.tokensTrained).toLocaleString("en")
        } | ${c.wallSeconds.toFixed(1)} s |`,
      );
    }
  }
  const total = accounts.reduce((s, a) => s + a.wallSeconds, 0);
  lines.push(
    "",
    "Compute:",
    "",
    "| stage | tokens generated | tokens trained | wall time | share |",
    "| --- | ---: | ---: | ---: | ---: |",
  );
  for (const a of accounts) {
    lines.push(
      `| ${a.stage} | ${a.tokensGenerated.toLocaleString("en")} | ${
        a.tokensTrained.toLocaleString("en")
      } | ` +
        `${a.wallSeconds.toFixed(1)} s | ${pct(a.wallSeconds / Math.max(total, 1e-9))} |`,
    );
  }
  await ctx.run.writeText("report.md", lines.join("\n") + "\n");
  return report;
}

const signed = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;

/** Accuracy by style, and where each student's difference from SFT came from. */
function styleLines(styles: ReturnType<typeof styleAccount>): string[] {
  if (!styles) return [];
  const lines = [
    "",
    "Greedy answers by style (worked: a calculation before the answer):",
    "",
    "| model | worked | right | answer-only | right |",
    "| --- | ---: | ---: | ---: | ---: |",
  ];
  for (const [name, g] of Object.entries(styles.gaps)) {
    lines.push(
      `| ${name} | ${g.worked.n} | ${pct(g.worked.accuracy)} | ${g.answerOnly.n} | ${
        pct(g.answerOnly.accuracy)
      } |`,
    );
  }
  const sft = styles.gaps["SFT student"];
  if (sft && sft.worked.n && sft.answerOnly.n) {
    const n = sft.worked.n + sft.answerOnly.n;
    lines.push(
      "",
      `Switching every answer-only greedy answer of the SFT student to a worked one, at its worked ` +
        `answers' accuracy, would move it by ${
          signed((sft.answerOnly.n / n) * (sft.worked.accuracy - sft.answerOnly.accuracy))
        } points: what choosing a style alone can gain.`,
    );
  }
  for (const [name, cells] of Object.entries(styles.switches)) {
    lines.push(
      "",
      `${name} against the SFT student, by how each question's greedy answer changed style:`,
      "",
      "| SFT → this row | questions | right before | right after | points of the difference |",
      "| --- | ---: | ---: | ---: | ---: |",
    );
    for (const c of cells) {
      lines.push(
        `| ${c.from} → ${c.to} | ${c.n} | ${pct(c.before)} | ${pct(c.after)} | ${
          signed(c.contribution)
        } |`,
      );
    }
  }
  lines.push("");
  return lines;
}
