/**
 * The run directory `runs/<name>/`: atomic JSON/text files, resumable JSONL
 * output in units of work, stage bookkeeping and an append-only metrics log.
 *
 * Every file except metrics.jsonl is written atomically (temp file in the same
 * folder, fsync, rename, fsync of the folder), so a kill -9 at any point leaves
 * either the old file or the new one, never a partial one.
 */
import { dirname, join } from "node:path";
import { EngineError } from "../errors.ts";
import { writeAll, writeAtomic } from "../util/fs.ts";
import { firstLine, naturalCompare } from "../util/text.ts";

/** A run-directory file is unreadable or corrupt; the message is one line. */
export class RunDirError extends EngineError {}

const encoder = new TextEncoder();

/**
 * Writes `data` to `path` atomically (src/util/fs.ts: temp file beside it, fsync, rename, fsync
 * of the folder), creating the folder first if need be.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await writeAtomic(path, data);
}

/** A run directory. Paths given to its methods are relative to `root`. */
export class RunDir {
  readonly root: string;
  #stageLock: Promise<unknown> = Promise.resolve();
  #clock: { stage: string; prior: number; start: number } | null = null;
  #arm: { key: string; prior: number; start: number } | null = null;

  constructor(root: string) {
    this.root = root;
  }

  /** The path of `parts` inside the run directory (`root` joined with them). */
  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  /** Writes `value` as pretty JSON, atomically. */
  async writeJson(rel: string, value: unknown): Promise<void> {
    await this.saveStageClock();
    await writeFileAtomic(this.path(rel), JSON.stringify(value, null, 2) + "\n");
  }

  /**
   * Starts timing `stage`, continuing from the seconds an interrupted attempt
   * spent on it (stage_time.json), and returns those seconds.
   */
  async startStageClock(stage: string): Promise<number> {
    const prior = (await this.#stageTimes())[stage] ?? 0;
    this.#clock = { stage, prior, start: performance.now() };
    return prior;
  }

  stopStageClock(): void {
    this.#clock = null;
  }

  /** Seconds of the running stage so far, its interrupted attempts included. */
  stageSeconds(): number {
    const c = this.#clock;
    return c ? c.prior + (performance.now() - c.start) / 1000 : 0;
  }

  /**
   * Records the running stage's seconds so far. Every unit and checkpoint write
   * calls it first, so a kill -9 loses only the time since the last one and a
   * resumed stage's wall time counts its interrupted attempts.
   */
  async saveStageClock(): Promise<void> {
    const c = this.#clock;
    if (c) {
      const times = await this.#stageTimes();
      times[c.stage] = c.prior + (performance.now() - c.start) / 1000;
      await writeFileAtomic(this.path("stage_time.json"), JSON.stringify(times) + "\n");
    }
    const a = this.#arm;
    if (a) {
      const times = await this.#stageTimes("arm_time.json");
      times[a.key] = this.armSeconds();
      await writeFileAtomic(this.path("arm_time.json"), JSON.stringify(times) + "\n");
    }
  }

  /**
   * Times one part of a stage (a PPO arm, one SFT run) the way startStageClock times a stage:
   * from the seconds its interrupted attempts spent (arm_time.json, saved with every checkpoint),
   * so that each method's compute counts its interrupted attempts too.
   */
  async startArmClock(key: string): Promise<void> {
    const prior = (await this.#stageTimes("arm_time.json"))[key] ?? 0;
    this.#arm = { key, prior, start: performance.now() };
  }

  /** Seconds of the running arm so far, its interrupted attempts included. */
  armSeconds(): number {
    const a = this.#arm;
    return a ? a.prior + (performance.now() - a.start) / 1000 : 0;
  }

  /** Saves the arm's seconds one last time and stops its clock; returns them. */
  async stopArmClock(): Promise<number> {
    const a = this.#arm;
    if (!a) return 0;
    const seconds = this.armSeconds();
    this.#arm = null;
    const times = await this.#stageTimes("arm_time.json");
    times[a.key] = seconds;
    await writeFileAtomic(this.path("arm_time.json"), JSON.stringify(times) + "\n");
    return seconds;
  }

  async #stageTimes(file = "stage_time.json"): Promise<Record<string, number>> {
    const v = await this.readJson(file);
    return v !== null && typeof v === "object" && !Array.isArray(v)
      ? v as Record<string, number>
      : {};
  }

  /** The parsed JSON at `rel`, or null if the file does not exist. */
  async readJson(rel: string): Promise<unknown | null> {
    const text = await this.readText(rel);
    if (text === null) return null;
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new RunDirError(`${this.path(rel)}: invalid JSON (${firstLine(err)})`);
    }
  }

  /** Writes `text`, atomically. */
  async writeText(rel: string, text: string): Promise<void> {
    await this.saveStageClock();
    await writeFileAtomic(this.path(rel), text);
  }

  /** The text at `rel`, or null if the file does not exist. */
  async readText(rel: string): Promise<string | null> {
    try {
      return await Deno.readTextFile(this.path(rel));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw new RunDirError(`${this.path(rel)}: cannot read (${firstLine(err)})`);
    }
  }

  /** Whether `rel` exists (file or folder). */
  async exists(rel: string): Promise<boolean> {
    try {
      await Deno.stat(this.path(rel));
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }

  /** Records that `stage` finished, with its summary, in stages.json (atomically). */
  markStageDone(stage: string, summary: object): Promise<void> {
    return this.#updateStages((stages) => {
      stages[stage] = summary;
      return undefined;
    });
  }

  /**
   * Forgets that `stage` finished (its outputs stay), so that the next run redoes it; whether it
   * had finished.
   */
  markStageUndone(stage: string): Promise<boolean> {
    return this.#updateStages((stages) => {
      const had = Object.hasOwn(stages, stage);
      delete stages[stage];
      return had;
    });
  }

  /** Edits stages.json under the stage lock; writes it back only when `edit` changed it. */
  #updateStages<T>(edit: (stages: Record<string, object>) => T): Promise<T> {
    const next = this.#stageLock.then(async () => {
      const stages = await this.#stages();
      const before = JSON.stringify(stages);
      const result = edit(stages);
      if (JSON.stringify(stages) !== before) await this.writeJson("stages.json", stages);
      return result;
    });
    this.#stageLock = next.catch(() => {});
    return next;
  }

  /** The summary recorded when `stage` finished, or null if it has not. */
  async stageDone(stage: string): Promise<object | null> {
    await this.#stageLock;
    const stages = await this.#stages();
    return Object.hasOwn(stages, stage) ? stages[stage] : null;
  }

  async #stages(): Promise<Record<string, object>> {
    const v = await this.readJson("stages.json");
    if (v === null) return {};
    if (typeof v !== "object" || Array.isArray(v)) {
      throw new RunDirError(`${this.path("stages.json")}: expected an object of stages`);
    }
    return v as Record<string, object>;
  }
}

const UNIT_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/**
 * Resumable JSONL output, one file per unit of work: `<rel>/<unitId>.jsonl`.
 * A unit is complete iff its file exists (files are written atomically), so
 * after a crash `done()` lists exactly the finished units and nothing is lost.
 */
export class JsonlShards {
  readonly dir: RunDir;
  readonly rel: string;

  constructor(dir: RunDir, rel: string) {
    this.dir = dir;
    this.rel = rel;
  }

  /** The ids of the units already completed. */
  async done(): Promise<Set<string>> {
    const ids = new Set<string>();
    try {
      for await (const e of Deno.readDir(this.dir.path(this.rel))) {
        if (e.isFile && e.name.endsWith(".jsonl") && !e.name.startsWith(".")) {
          ids.add(e.name.slice(0, -".jsonl".length));
        }
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return ids;
      throw err;
    }
    return ids;
  }

  /** Writes all rows of a unit at once, atomically; rewriting a unit replaces it. */
  async writeUnit(unitId: string, rows: object[]): Promise<void> {
    checkUnitId(unitId);
    const text = rows.map((r) => JSON.stringify(r) + "\n").join("");
    await this.dir.saveStageClock();
    await writeFileAtomic(this.#file(unitId), text);
  }

  /** The rows of one unit, or null if it is not complete. */
  async readUnit(unitId: string): Promise<object[] | null> {
    checkUnitId(unitId);
    let text: string;
    try {
      text = await Deno.readTextFile(this.#file(unitId));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
    const rows: object[] = [];
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] === "") continue;
      try {
        rows.push(JSON.parse(lines[i]));
      } catch (err) {
        throw new RunDirError(`${this.#file(unitId)}:${i + 1}: invalid JSON (${firstLine(err)})`);
      }
    }
    return rows;
  }

  /**
   * All rows, units in sorted id order (digit runs compare as numbers, so "2"
   * comes before "10"): the result does not depend on the order units finished.
   */
  async readAll(): Promise<object[]> {
    const ids = [...await this.done()].sort(compareUnitIds);
    const out: object[] = [];
    for (const id of ids) out.push(...(await this.readUnit(id))!);
    return out;
  }

  #file(unitId: string): string {
    return this.dir.path(this.rel, `${unitId}.jsonl`);
  }
}

function checkUnitId(unitId: string): void {
  if (!UNIT_ID.test(unitId)) {
    throw new RunDirError(
      `unit id ${JSON.stringify(unitId)} must be letters, digits, "_", "-" or "." ` +
        `and not start with "." or "-"`,
    );
  }
}

/** Natural order of unit ids: digit runs compare by value, the rest by code unit. */
export const compareUnitIds: (a: string, b: string) => number = naturalCompare;

/** One metrics.jsonl line. `t` is seconds since the Unix epoch. */
export interface MetricRow {
  stage: string;
  step: number;
  name: string;
  value: number;
  t: number;
}

/**
 * Appends `{stage, step, name, value, t}` lines to `metrics.jsonl`. Buffered:
 * written at most a second after `log`, and on `flush()`. Call `flush()` before
 * the process ends. A crash may leave a torn last line; `readMetrics` skips it,
 * and the next append starts on a fresh line.
 */
export class MetricsLog {
  readonly file: string;
  #buf: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #chain: Promise<void> = Promise.resolve();
  #checkedTail = false;
  #error: unknown = null;

  constructor(dir: RunDir) {
    this.file = dir.path("metrics.jsonl");
  }

  /** Queues one line per value. Non-finite values are written as null. */
  log(stage: string, step: number, values: Record<string, number>): void {
    const t = Date.now() / 1000;
    for (const [name, value] of Object.entries(values)) {
      this.#buf.push(JSON.stringify({ stage, step, name, value, t }) + "\n");
    }
    if (this.#timer === undefined && this.#buf.length > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush().catch((err) => this.#error ??= err);
      }, 1000);
    }
  }

  /** Writes everything queued so far; rethrows a failure of an earlier background write. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const lines = this.#buf;
    this.#buf = [];
    const next = this.#chain.then(async () => {
      if (this.#error !== null) {
        const err = this.#error;
        this.#error = null;
        throw err;
      }
      if (lines.length > 0) await this.#append(lines.join(""));
    });
    this.#chain = next.catch(() => {});
    return next;
  }

  async #append(text: string): Promise<void> {
    await Deno.mkdir(dirname(this.file), { recursive: true });
    const f = await Deno.open(this.file, { read: true, append: true, create: true });
    try {
      if (!this.#checkedTail) {
        this.#checkedTail = true;
        const size = (await f.stat()).size;
        if (size > 0) {
          // A torn line from a crash has no newline: start ours on a fresh line.
          const last = new Uint8Array(1);
          await f.seek(size - 1, Deno.SeekMode.Start);
          await f.read(last);
          if (last[0] !== 0x0a) text = "\n" + text;
        }
      }
      await writeAll(f, encoder.encode(text));
    } finally {
      f.close();
    }
  }
}

/**
 * Reads a metrics.jsonl, skipping a truncated final line (and any torn line a
 * crash left mid-file, which a later append moved off the end). Returns [] if
 * the file does not exist.
 */
export async function readMetrics(path: string): Promise<MetricRow[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return parseMetricLines(text);
}

/**
 * Parses metrics.jsonl text: one row per well-formed line; a line torn by a
 * crash, or not a metric row, is skipped. A null value (NaN in JSON) reads
 * back as NaN.
 */
export function parseMetricLines(text: string): MetricRow[] {
  const rows: MetricRow[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      continue; // torn by a crash
    }
    if (isMetricRow(r)) rows.push({ ...r, value: r.value ?? NaN });
  }
  return rows;
}

function isMetricRow(r: unknown): r is MetricRow {
  if (typeof r !== "object" || r === null) return false;
  const o = r as Record<string, unknown>;
  return typeof o.stage === "string" && typeof o.step === "number" &&
    typeof o.name === "string" && (typeof o.value === "number" || o.value === null) &&
    typeof o.t === "number";
}
