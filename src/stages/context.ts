/**
 * What every stage gets: the config, the run directory, the task and its
 * questions, metrics, progress bars, and helpers to load the run's models.
 */
import { EngineError } from "../errors.ts";
import { exists } from "../model/files.ts";
import type { Config } from "../run/config.ts";
import { MetricsLog, RunDir } from "../run/run_dir.ts";
import { Progress } from "../run/progress.ts";
import type { ArithmeticConfig, ArithmeticOp } from "../tasks/arithmetic.ts";
import { loadTask } from "../tasks/task.ts";
import type { Question, Task } from "../tasks/types.ts";
import { mulberry32 } from "../util/rng.ts";
import type { Sample } from "./sampler.ts";

/**
 * The training questions kept out of SFT as PPO's prompts: the last
 * ppo.promptShare of them (0: none, and PPO samples every training question).
 * RL gains most on questions the SFT student has not been fitted to.
 */
export function rlQuestionIds(ctx: Pick<StageContext, "cfg" | "train">): Set<string> {
  const n = Math.floor(ctx.train.length * ctx.cfg.ppo.promptShare);
  return new Set(ctx.train.slice(ctx.train.length - n).map((q) => q.id));
}

/** What a stage reports when it finishes, for the report's compute account. */
export interface StageSummary {
  tokensGenerated?: number;
  tokensTrained?: number;
  wallSeconds?: number;
  [key: string]: unknown;
}

export interface StageContext {
  cfg: Config;
  run: RunDir;
  metrics: MetricsLog;
  task: Task;
  train: Question[];
  /** Held-out questions: only eval reads their gold labels. */
  test: Question[];
  /** A progress bar that the progress server can see too. */
  progress(stage: string, total: number, unit: string): Progress;
  log(message: string): void;
}

/** The generator settings of the configured arithmetic task, at one seed and count. */
export function arithmeticSettings(cfg: Config, seed: number, count: number): ArithmeticConfig {
  const a = cfg.task.arithmetic;
  return {
    seed,
    count,
    minNumber: a.minNumber,
    maxNumber: a.maxNumber,
    minSteps: a.minSteps,
    maxSteps: a.maxSteps,
    ops: a.ops as ArithmeticOp[],
    nonNegative: true,
  };
}

export const progressRegistry: Progress[] = [];

export async function makeContext(
  cfg: Config,
  log = (m: string) => console.error(m),
): Promise<StageContext> {
  const t = cfg.task;
  const arithmetic = (seed: number, count: number) => arithmeticSettings(cfg, seed, count);
  const load = (path: string, limit: number, offset: number, seed: number, count: number) =>
    loadTask(t.kind, {
      path: path || undefined,
      limit: limit || undefined,
      offset: offset || undefined,
      validationPath: t.validation || undefined,
      shots: t.shots,
      arithmetic: arithmetic(seed, count),
    });
  if (t.kind !== "arithmetic" && (!t.train || !t.test)) {
    throw new EngineError(
      `config: task.train and task.test must name data files for task ${t.kind}`,
    );
  }
  if (cfg.label.voters === "worked" && t.kind === "mmlu-pro") {
    throw new EngineError(
      `config: label.voters "worked" counts answers that write a calculation before the answer; MMLU-Pro answers a choice, so use "all"`,
    );
  }
  await checkTeacherWeights(cfg);
  const train = await load(
    t.train,
    t.trainLimit,
    t.trainOffset,
    t.arithmetic.trainSeed,
    t.arithmetic.trainCount,
  );
  const test = await load(
    t.test,
    t.testLimit,
    t.testOffset,
    t.arithmetic.testSeed,
    t.arithmetic.testCount,
  );
  const run = new RunDir(`${cfg.runsDir}/${cfg.name}`);
  await Deno.mkdir(run.path(), { recursive: true });
  return {
    cfg,
    run,
    metrics: new MetricsLog(run),
    task: train.task,
    train: train.questions,
    test: test.questions,
    progress(stage, total, unit) {
      const p = new Progress(stage, total, { unit });
      progressRegistry.push(p);
      return p;
    },
    log,
  };
}

/**
 * The teacher's weights as a local checkpoint folder: teacher.source's model when local, else
 * teacher.checkpoint (the endpoint's model); `who` names the stage that needs them.
 */
export function teacherWeights(cfg: Config, who: string): string {
  const { source, checkpoint } = cfg.teacher;
  if (source.kind === "local") return source.model;
  if (checkpoint) return checkpoint;
  throw new EngineError(
    `config: ${who} needs the teacher's weights, and teacher.source is an endpoint; ` +
      `set teacher.checkpoint to a local copy of ${source.model}`,
  );
}

/** Before any stage: a setting that will need the teacher's weights finds them. */
async function checkTeacherWeights(cfg: Config) {
  const { checkpoint } = cfg.teacher;
  if (checkpoint && cfg.teacher.source.kind === "local") {
    throw new EngineError(
      "config: teacher.checkpoint is for an endpoint teacher; a local teacher.source.model is its own checkpoint",
    );
  }
  if (checkpoint && !(await exists(`${checkpoint}/config.json`))) {
    throw new EngineError(
      `config: teacher.checkpoint ${checkpoint} has no config.json (a Hugging Face checkpoint folder)`,
    );
  }
  if (cfg.gkd.steps > 0) teacherWeights(cfg, "gkd.steps");
  if (cfg.baselines.teacherSftSteps > 0) teacherWeights(cfg, "baselines.teacherSftSteps");
}

/** The answer a response gives, as the labelling sees it. */
export function answerOf(ctx: StageContext, s: Sample): string | null {
  return ctx.task.extract(s.text);
}

/** A deterministic PRNG (mulberry32) from a seed and a stream, for resumable choices. */
export function rng(seed: number, stream = 0): () => number {
  return mulberry32(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35));
}

/** A stable 32-bit hash of a string (FNV-1a), e.g. to split questions by id. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

/** Groups rows by question id, keeping first-seen order. */
export function byId<T extends { id: string }>(rows: T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const r of rows) {
    const list = m.get(r.id);
    if (list) list.push(r);
    else m.set(r.id, [r]);
  }
  return m;
}

export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function unitId(i: number): string {
  return `u${String(i).padStart(5, "0")}`;
}
