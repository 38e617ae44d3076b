/**
 * Chains the stages. Each stage reads what earlier ones wrote in the run
 * directory and writes its own outputs there; a stage marked done is
 * skipped, so re-running the same command resumes after a crash. A done stage
 * whose config now asks for more (PPO arms added, a baseline switched on) runs
 * again, and eval after it. One done under other settings is skipped with a line naming them.
 */
import { currentGpu } from "../gpu/mod.ts";
import type { Config } from "../run/config.ts";
import { STAGE_NAMES, type StageName } from "../run/stages.ts";
import { makeContext, type StageContext, type StageSummary } from "../stages/context.ts";
import { teacherGenerate } from "../stages/teacher_generate.ts";
import { labelStage } from "../stages/label.ts";
import { sftStage } from "../stages/sft.ts";
import { studentGenerate } from "../stages/student_generate.ts";
import { rewardTrain } from "../stages/reward_train.ts";
import { gkdStage } from "../stages/gkd.ts";
import { sftBaselinesStage } from "../stages/sft_baselines.ts";
import { ppoStage } from "../stages/ppo.ts";
import { evalStage } from "../stages/eval.ts";
import { writeReport } from "../stages/report.ts";
import { changedSettings, type Settings, stageSettings } from "./stage_settings.ts";

export interface StageInfo {
  run: (ctx: StageContext) => Promise<StageSummary>;
  /** Config sections the stage reads, for its --help. */
  config: string[];
  about: string;
  /**
   * What the config now asks of a stage done earlier that its summary lacks (null: nothing); the
   * stage then runs again, its finished parts resuming from their checkpoints.
   */
  missing?: (cfg: Config, done: Record<string, unknown>) => string | null;
}

/** The baselines switched on (`baselines`) that a done sft-baselines stage has no summary of. */
function missingBaselines(cfg: Config, done: Record<string, unknown>): string | null {
  const missing = [
    cfg.baselines.teacherSftSteps > 0 && !("teacherSft" in done) && "the fine-tuned teacher",
    cfg.baselines.equalComputeSft && !("equalComputeSft" in done) && "equal-compute SFT",
  ].filter(Boolean);
  return missing.length ? missing.join(" and ") : null;
}

/** The PPO arms (`ppo.rewards`) a done ppo stage has no summary of. */
function missingArms(cfg: Config, done: Record<string, unknown>): string | null {
  const arms = cfg.ppo.rewards.filter((r) => !(r in done));
  return arms.length ? `the PPO arms ${arms.join(", ")}` : null;
}

/** What each stage of src/run/stages.ts runs (in the order given there). */
export const STAGES = {
  "teacher-generate": {
    run: teacherGenerate,
    config: ["task", "teacher"],
    about: "the teacher answers every training question at several temperatures",
  },
  label: {
    run: labelStage,
    config: ["label"],
    about: "majority vote per question: pseudo-labels and agreement, or an LLM judge's scores",
  },
  sft: {
    run: sftStage,
    config: ["student", "sft"],
    about: "the student learns the pseudo-positive teacher responses",
  },
  "student-generate": {
    run: studentGenerate,
    config: ["studentGenerate"],
    about:
      "the SFT student answers the kept questions; responses are labelled by the pseudo-labels",
  },
  "reward-train": {
    run: rewardTrain,
    config: ["reward"],
    about: "a scalar-head reward model learns from labelled teacher and student responses",
    missing: (cfg, done) =>
      cfg.ppo.rewards.includes("model-teacher") && !("teacherOnly" in done)
        ? "the teacher-only reward model (ppo.rewards model-teacher)"
        : null,
  },
  ppo: {
    run: ppoStage,
    config: ["ppo"],
    about:
      "PPO against the reward model, with a value model, GAE and a KL penalty to the SFT student",
    missing: missingArms,
  },
  "sft-baselines": {
    run: sftBaselinesStage,
    config: ["baselines"],
    about: "baselines: the teacher fine-tuned on the SFT data, and equal-compute SFT " +
      "(each off unless its key asks)",
    missing: missingBaselines,
  },
  gkd: {
    run: gkdStage,
    config: ["gkd"],
    about: "a baseline: on-policy distillation (GKD) from the SFT student, the teacher scoring " +
      "every token (skipped when gkd.steps is 0)",
    missing: (cfg, done) =>
      cfg.gkd.steps > 0 && done.steps === 0 ? "on-policy distillation (gkd.steps)" : null,
  },
  eval: {
    run: evalStage,
    config: ["eval"],
    about: "held-out accuracy (gold labels are read only here) and the report",
  },
} satisfies Record<StageName, StageInfo>;

/**
 * Each stage's buffers go back to the pool when it ends, in sizes the next
 * stage rarely asks for; on a software adapter they are host memory, and an
 * effect study of 3 seeds held 17 GB of them. Freeing the pooled (not live)
 * ones between stages keeps a run to one stage's peak.
 */
function releasePooledBuffers(ctx: StageContext, stage: string): void {
  const pool = currentGpu()?.pool;
  if (!pool) return;
  const mb = (b: number) => (b / 2 ** 20).toFixed(0);
  ctx.log(`${stage}: freed ${mb(pool.allocatedBytes - pool.liveBytes)} MB of pooled GPU buffers`);
  pool.trim();
}

/** Each done stage's config sections as they were when it ran. */
const SETTINGS_FILE = "stage_settings.json";

export interface RunOptions {
  /** Run only this stage (its inputs must exist). */
  only?: StageName;
  log?: (m: string) => void;
  /** Called with the context before the first stage (e.g. to start a server). */
  onStart?: (ctx: StageContext) => Promise<void> | void;
}

export async function runPipeline(
  cfg: Config,
  opts: RunOptions = {},
): Promise<Record<string, unknown>> {
  const ctx = await makeContext(cfg, opts.log);
  await ctx.run.writeJson("config.json", cfg);
  await opts.onStart?.(ctx);
  // Eval reads every stage's outputs: once any stage has run again, it runs again too.
  let evalUndone = false;
  const settings = ((await ctx.run.readJson(SETTINGS_FILE)) ?? {}) as Record<string, Settings>;
  for (const name of opts.only ? [opts.only] : STAGE_NAMES) {
    const done = opts.only ? null : await ctx.run.stageDone(name);
    if (done) {
      const info: StageInfo = STAGES[name];
      const missing = info.missing?.(cfg, done as Record<string, unknown>);
      if (missing) {
        ctx.log(`${name}: done earlier without ${missing}; running it again (done parts resume)`);
      } else {
        const changed = name in settings
          ? changedSettings(settings[name], stageSettings(cfg, info.config))
          : [];
        ctx.log(
          changed.length
            ? `${name}: done earlier with other settings (${changed.join("; ")}), skipped: ` +
              `its outputs are those of the earlier settings; run under a new --name to redo it`
            : `${name}: done earlier, skipped`,
        );
        continue;
      }
    }
    // Eval read the outputs this stage replaces: until it runs again it is not done, even if this
    // process stops first (a crash, or this stage run alone).
    if (name !== "eval" && await ctx.run.markStageUndone("eval")) evalUndone = true;
    if (name === "eval" && evalUndone) {
      ctx.log("eval: an earlier stage ran again; evaluating again");
    }
    await ctx.run.startStageClock(name);
    let summary;
    let seconds;
    try {
      summary = await STAGES[name].run(ctx);
      seconds = ctx.run.stageSeconds();
    } finally {
      ctx.run.stopStageClock();
    }
    // A resumed stage's wall time includes its interrupted attempts (its arms' do too, by their
    // own clocks: arm_time.json).
    if (summary.wallSeconds !== undefined) summary = { ...summary, wallSeconds: seconds };
    await ctx.metrics.flush();
    await ctx.run.markStageDone(name, summary);
    settings[name] = stageSettings(cfg, STAGES[name].config);
    await ctx.run.writeJson(SETTINGS_FILE, settings);
    releasePooledBuffers(ctx, name);
  }
  const report = await writeReport(ctx, STAGE_NAMES);
  await ctx.metrics.flush();
  return report;
}
