/**
 * The pipeline's stages by name, in run order, and how each one's progress
 * is counted. The pipeline runs the stages in this order (src/pipeline/
 * pipeline.ts maps each name to its code, checked at compile time), and the
 * progress server reads this table, importing no stage, to show a stage's
 * progress from the run directory when no live progress bar is at hand. The
 * units are those the stages give their own bars, and the totals come from
 * the same config keys.
 */
import type { Config } from "./config.ts";

/**
 * A run's config.json as read back without validation: any key may be
 * missing (or hold another type), so every read below is checked.
 */
export type ConfigJson = Loose<Config>;

type Loose<T> = T extends readonly unknown[] ? T
  : T extends object ? { [K in keyof T]?: Loose<T[K]> }
  : T;

export type StageProgress =
  /** A training stage: one metrics row named `metric` per step; done = last step + 1. */
  | { kind: "steps"; unit: string; metric: string; total: (cfg: ConfigJson) => number | null }
  /**
   * A generate stage: `perQuestion` response rows per question in the run's
   * `dir`/ folder; its total is a function of the config, or the number of
   * questions labels.json keeps.
   */
  | {
    kind: "responses";
    unit: string;
    dir: "teacher" | "student";
    perQuestion: (cfg: ConfigJson) => number;
    total: ((cfg: ConfigJson) => number | null) | "kept-labels";
  }
  /** Measured only as done or not. */
  | { kind: "once" };

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Every stage, in run order, with how its progress is counted. */
export const STAGE_PROGRESS = {
  "teacher-generate": {
    kind: "responses",
    unit: "questions",
    dir: "teacher",
    perQuestion: (c) =>
      (c.teacher?.temperatures?.length ?? 1) * (num(c.teacher?.samplesPerTemperature) ?? 1),
    total: (c) =>
      c.task?.kind === "arithmetic" ? num(c.task?.arithmetic?.trainCount) : num(c.task?.trainLimit),
  },
  label: { kind: "once" },
  sft: { kind: "steps", unit: "steps", metric: "loss", total: (c) => num(c.sft?.steps) },
  "student-generate": {
    kind: "responses",
    unit: "questions",
    dir: "student",
    perQuestion: (c) => num(c.studentGenerate?.samples) ?? 1,
    total: "kept-labels",
  },
  "reward-train": {
    kind: "steps",
    unit: "steps",
    metric: "loss",
    total: (c) => num(c.reward?.steps),
  },
  ppo: {
    kind: "steps",
    unit: "iterations",
    metric: "reward",
    total: (c) => num(c.ppo?.iterations),
  },
  "sft-baselines": { kind: "once" },
  gkd: { kind: "steps", unit: "steps", metric: "loss", total: (c) => num(c.gkd?.steps) },
  eval: { kind: "once" },
} satisfies Record<string, StageProgress>;

export type StageName = keyof typeof STAGE_PROGRESS;

/** The stage names in run order. */
export const STAGE_NAMES = Object.keys(STAGE_PROGRESS) as StageName[];
