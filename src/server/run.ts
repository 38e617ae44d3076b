/**
 * One run directory as the progress server sees it: stage status (from the
 * live progress bars when the pipeline runs in this process, otherwise
 * inferred from stages.json and metrics.jsonl), metrics, samples, labels and
 * the report. Everything is read through a SafeDir, so nothing outside the
 * run directory is ever read, and nothing is ever written.
 */
import { basename, join, resolve } from "node:path";
import type { ProgressSnapshot } from "../run/progress.ts";
import type { LabelRow, ResponseRow } from "../run/rows.ts";
import {
  type ConfigJson,
  STAGE_NAMES,
  STAGE_PROGRESS,
  type StageName,
  type StageProgress,
} from "../run/stages.ts";
import { naturalCompare } from "../util/text.ts";
import { MetricsFeed } from "./metrics_feed.ts";
import { SafeDir, within } from "./safe_fs.ts";

export type { ProgressSnapshot };

export type StageState = "done" | "running" | "pending";

export interface StageStatus {
  name: string;
  status: StageState;
  /** Units done and in all, of the stage's current progress bar (or inferred). */
  done: number;
  total: number;
  unit: string;
  /** done / total in [0, 1], or null when the total is unknown. */
  fraction: number | null;
  /** Units per second (0 when unknown). */
  rate: number;
  etaSeconds: number | null;
  elapsedSeconds: number | null;
  info: Record<string, number | string>;
  /** Tokens generated + trained per second of wall time, once the stage is done. */
  tokensPerSecond: number | null;
  /** The stage's live progress bars (several for eval), if the run is in this process. */
  bars: ProgressSnapshot[];
  /** What stages.json recorded when the stage finished. */
  summary: Record<string, unknown> | null;
}

export interface RunStatus {
  name: string;
  /** Whether progress comes from the live pipeline in this process. */
  live: boolean;
  status: StageState;
  stages: StageStatus[];
  hasReport: boolean;
  /** Seconds since the epoch. */
  t: number;
}

export interface SampleSummary {
  id: string;
  prompt: string;
  pseudo_label: string | null;
  agreement: number | null;
  kept: boolean | null;
  teacher: number;
  student: number;
  /** Mean reward of the student's rollouts, or null without any. */
  studentReward: number | null;
}

export interface SampleDetail {
  id: string;
  prompt: string;
  label: LabelRow | null;
  teacher: (ResponseRow & { votes: number; positive: boolean | null })[];
  student: ResponseRow[];
}

export interface Page<T> {
  page: number;
  perPage: number;
  total: number;
  pages: number;
  items: T[];
}

const RUN_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

/** Whether `name` can name a run folder (no separators, no leading dot). */
export function validRunName(name: string): boolean {
  return RUN_NAME.test(name);
}

/** The pipeline stage a progress bar belongs to ("eval teacher-greedy" -> "eval"). */
export function stageOfBar(bar: string): string | null {
  for (const s of STAGE_NAMES) if (bar === s || bar.startsWith(`${s} `)) return s;
  return null;
}

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

export class Run {
  readonly name: string;
  readonly dir: SafeDir;
  readonly metrics: MetricsFeed;
  readonly #progress: (() => ProgressSnapshot[]) | null;
  #shardCache = new Map<string, { key: string; rows: ResponseRow[] }>();

  constructor(name: string, path: string, progress?: () => ProgressSnapshot[]) {
    this.name = name;
    this.dir = new SafeDir(path);
    this.metrics = new MetricsFeed(this.dir);
    this.#progress = progress ?? null;
  }

  get live(): boolean {
    return this.#progress !== null;
  }

  config(): Promise<unknown | null> {
    return this.dir.readJson("config.json");
  }

  async stagesDone(): Promise<Record<string, Json>> {
    const v = await this.dir.readJson("stages.json");
    return isObj(v) ? (v as Record<string, Json>) : {};
  }

  report(): Promise<unknown | null> {
    return this.dir.readJson("report.json");
  }

  reportMarkdown(): Promise<string | null> {
    return this.dir.readText("report.md");
  }

  async labels(): Promise<LabelRow[]> {
    const v = await this.dir.readJson("labels.json");
    return Array.isArray(v) ? v.filter((r) => isObj(r) && typeof r.id === "string") : [];
  }

  /** The run's status: per stage done/running/pending, progress and ETA. */
  async status(): Promise<RunStatus> {
    const done = await this.stagesDone();
    const bars = this.#progress?.() ?? [];
    const cfg = await this.config();
    const firstPending = STAGE_NAMES.find((s) => !Object.hasOwn(done, s));
    const hasReport = (await this.dir.stat("report.json")) !== null;
    // A stage with an unfinished live bar is running, even one done earlier that runs again for
    // what the config added (stages.json keeps its old summary until it ends); without live bars,
    // the first stage not done.
    const active = new Set(bars.filter((b) => !b.finished).map((b) => stageOfBar(b.stage)));
    active.delete(null);
    const stages: StageStatus[] = [];
    for (const name of STAGE_NAMES) {
      const summary = Object.hasOwn(done, name) && isObj(done[name]) ? done[name] : null;
      const status: StageState = active.has(name)
        ? "running"
        : summary
        ? "done"
        : active.size === 0 && name === firstPending
        ? "running"
        : "pending";
      const own = bars.filter((b) => stageOfBar(b.stage) === name);
      stages.push(
        own.length > 0
          ? fromBars(name, status, own, summary)
          : await this.#inferred(name, status, summary, cfg),
      );
    }
    const all = stages.every((s) => s.status === "done");
    const any = stages.some((s) => s.status !== "pending");
    return {
      name: this.name,
      live: this.live,
      status: all ? "done" : any ? "running" : "pending",
      stages,
      hasReport,
      t: Date.now() / 1000,
    };
  }

  /** Progress of a stage without live bars: from stages.json, metrics and output files. */
  async #inferred(
    name: StageName,
    status: StageState,
    summary: Json | null,
    cfg: unknown,
  ): Promise<StageStatus> {
    const s: StageStatus = {
      name,
      status,
      done: 0,
      total: 0,
      unit: "",
      fraction: status === "done" ? 1 : status === "pending" ? 0 : null,
      rate: 0,
      etaSeconds: status === "done" ? 0 : null,
      elapsedSeconds: summary ? num(summary.wallSeconds) : null,
      info: {},
      tokensPerSecond: tokensPerSecond(summary),
      bars: [],
      summary,
    };
    const p: StageProgress = STAGE_PROGRESS[name];
    const c = (isObj(cfg) ? cfg : {}) as ConfigJson;
    if (p.kind === "steps") {
      s.unit = p.unit;
      s.total = p.total(c) ?? 0;
      if (status === "done") s.done = s.total;
      else if (status === "running") {
        await this.metrics.refresh();
        const rows = this.metrics.rows.filter((r) => r.stage === name && r.name === p.metric);
        if (rows.length > 0) {
          const first = rows[0];
          const last = rows[rows.length - 1];
          s.done = last.step + 1;
          const dt = last.t - first.t;
          s.rate = dt > 0 ? (last.step - first.step) / dt : 0;
          s.info = { [p.metric]: last.value };
        }
        if (s.total > 0) {
          s.fraction = Math.min(1, s.done / s.total);
          s.etaSeconds = s.rate > 0 ? Math.max(0, s.total - s.done) / s.rate : null;
        }
      }
      return s;
    }
    if (p.kind === "responses") {
      s.unit = p.unit;
      const perQuestion = p.perQuestion(c);
      s.total = p.total === "kept-labels"
        ? (await this.labels()).filter((l) => l.kept).length
        : p.total(c) ?? 0;
      if (status !== "pending") {
        const rows = await this.responses(p.dir);
        s.done = Math.floor(rows.length / Math.max(1, perQuestion));
        if (status === "done" && s.total === 0) s.total = s.done;
      }
      if (status === "running" && s.total > 0) s.fraction = Math.min(1, s.done / s.total);
      return s;
    }
    if (status === "done") {
      s.done = 1;
      s.total = 1;
    }
    return s;
  }

  /** Every response row of `teacher/` or `student/`, in unit order (cached per file set). */
  async responses(kind: "teacher" | "student"): Promise<ResponseRow[]> {
    // Unit order as the pipeline reads it (JsonlShards.readAll): ids in natural order.
    const names = (await this.dir.list(kind, ".jsonl"))
      .sort((a, b) => naturalCompare(a.slice(0, -".jsonl".length), b.slice(0, -".jsonl".length)));
    const stats = await Promise.all(names.map((n) => this.dir.stat(`${kind}/${n}`)));
    const key = names.map((n, i) => `${n}:${stats[i]?.size}:${stats[i]?.mtime?.getTime()}`)
      .join("|");
    const hit = this.#shardCache.get(kind);
    if (hit && hit.key === key) return hit.rows;
    const rows: ResponseRow[] = [];
    for (const n of names) {
      const text = await this.dir.readText(`${kind}/${n}`);
      if (text === null) continue;
      for (const line of text.split("\n")) {
        if (line === "") continue;
        try {
          const r = JSON.parse(line);
          if (isObj(r) && typeof r.id === "string") rows.push(r as unknown as ResponseRow);
        } catch {
          // a torn line: skipped
        }
      }
    }
    this.#shardCache.set(kind, { key, rows });
    return rows;
  }

  /** A page of questions with their label and response counts, optionally filtered. */
  async samples(
    opts: { page?: number; perPage?: number; q?: string; kept?: boolean } = {},
  ): Promise<Page<SampleSummary>> {
    const [labels, teacher, student] = await Promise.all([
      this.labels(),
      this.responses("teacher"),
      this.responses("student"),
    ]);
    const byLabel = new Map(labels.map((l) => [l.id, l]));
    const tBy = group(teacher);
    const sBy = group(student);
    const ids = labels.length > 0 ? labels.map((l) => l.id) : [...tBy.keys()];
    for (const id of sBy.keys()) if (!byLabel.has(id) && !tBy.has(id)) ids.push(id);
    let items: SampleSummary[] = ids.map((id) => {
      const l = byLabel.get(id) ?? null;
      const t = tBy.get(id) ?? [];
      const s = sBy.get(id) ?? [];
      const rewards = s.map((r) => r.reward).filter((r): r is number => typeof r === "number");
      return {
        id,
        prompt: t[0]?.prompt ?? s[0]?.prompt ?? "",
        pseudo_label: l?.pseudo_label ?? null,
        agreement: l ? num(l.agreement) : null,
        kept: l ? Boolean(l.kept) : null,
        teacher: t.length,
        student: s.length,
        studentReward: rewards.length ? rewards.reduce((a, b) => a + b, 0) / rewards.length : null,
      };
    });
    if (opts.q) {
      const q = opts.q.toLowerCase();
      items = items.filter((i) =>
        i.id.toLowerCase().includes(q) || i.prompt.toLowerCase().includes(q)
      );
    }
    if (opts.kept !== undefined) items = items.filter((i) => i.kept === opts.kept);
    const perPage = Math.max(1, Math.min(100, Math.floor(opts.perPage ?? 20)));
    const pages = Math.max(1, Math.ceil(items.length / perPage));
    const page = Math.max(1, Math.min(pages, Math.floor(opts.page ?? 1)));
    return {
      page,
      perPage,
      total: items.length,
      pages,
      items: items.slice((page - 1) * perPage, page * perPage),
    };
  }

  /** One question: its label, the teacher's responses with votes, the student's with rewards. */
  async sample(id: string): Promise<SampleDetail | null> {
    const [labels, teacher, student] = await Promise.all([
      this.labels(),
      this.responses("teacher"),
      this.responses("student"),
    ]);
    const label = labels.find((l) => l.id === id) ?? null;
    const t = teacher.filter((r) => r.id === id);
    const s = student.filter((r) => r.id === id);
    if (!label && t.length === 0 && s.length === 0) return null;
    const votes = label && isObj(label.votes) ? label.votes : {};
    return {
      id,
      prompt: t[0]?.prompt ?? s[0]?.prompt ?? "",
      label,
      teacher: t.map((r) => ({
        ...r,
        votes: r.answer !== null && Object.hasOwn(votes, r.answer) ? votes[r.answer] : 0,
        positive: label?.judged
          ? label.judged[`${r.temperature}:${r.sample}`] ?? null
          : label?.pseudo_label != null
          ? r.answer === label.pseudo_label
          : null,
      })),
      student: s,
    };
  }

  /** The pseudo-label agreement histogram (10 bins over [0, 1]) from labels.json. */
  async agreement(): Promise<
    { bins: number[]; counts: number[]; questions: number; kept: number; mean: number | null }
  > {
    const labels = await this.labels();
    const counts = new Array(10).fill(0);
    let sum = 0;
    let n = 0;
    for (const l of labels) {
      const a = num(l.agreement);
      if (a === null) continue;
      counts[Math.max(0, Math.min(9, Math.floor(a * 10)))]++;
      sum += a;
      n++;
    }
    return {
      bins: counts.map((_, i) => i / 10),
      counts,
      questions: labels.length,
      kept: labels.filter((l) => l.kept).length,
      mean: n ? sum / n : null,
    };
  }

  /**
   * The checkpoint folder of one of the run's models, or null: sft, ppo (the
   * policy), student (ppo if present, else sft). Only folders inside the run.
   */
  async checkpoint(which: "sft" | "ppo" | "student"): Promise<string | null> {
    if (which === "student") return (await this.checkpoint("ppo")) ?? this.checkpoint("sft");
    const latest = await this.dir.readJson(`${which}/latest.json`);
    if (!isObj(latest) || typeof latest.dir !== "string") return null;
    const rel = which === "ppo" ? join(latest.dir, "policy") : latest.dir;
    const real = await this.dir.resolve(rel);
    if (real === null || (await this.dir.resolve(join(rel, "config.json"))) === null) return null;
    return real;
  }
}

function tokensPerSecond(summary: Json | null): number | null {
  if (!summary) return null;
  const tokens = (num(summary.tokensGenerated) ?? 0) + (num(summary.tokensTrained) ?? 0);
  const wall = num(summary.wallSeconds);
  return tokens > 0 && wall && wall > 0 ? tokens / wall : null;
}

function fromBars(
  name: string,
  status: StageState,
  bars: ProgressSnapshot[],
  summary: Json | null,
): StageStatus {
  // The current bar: the newest unfinished one, else the newest.
  const cur = [...bars].reverse().find((b) => !b.finished) ?? bars[bars.length - 1];
  const elapsed = bars.reduce((a, b) => a + b.elapsedSeconds, 0);
  return {
    name,
    status,
    done: cur.done,
    total: cur.total,
    unit: cur.unit,
    fraction: status === "done" ? 1 : cur.total > 0 ? Math.min(1, cur.done / cur.total) : null,
    rate: cur.rate,
    etaSeconds: status === "done" ? 0 : cur.etaSeconds,
    elapsedSeconds: summary ? num(summary.wallSeconds) ?? elapsed : elapsed,
    info: cur.info,
    tokensPerSecond: tokensPerSecond(summary),
    bars,
    summary,
  };
}

function group(rows: ResponseRow[]): Map<string, ResponseRow[]> {
  const m = new Map<string, ResponseRow[]>();
  for (const r of rows) {
    const list = m.get(r.id);
    if (list) list.push(r);
    else m.set(r.id, [r]);
  }
  return m;
}

/** The runs a server shows: one run directory, or every run in a runs folder. */
export class Runs {
  readonly #single: Run | null;
  readonly #root: SafeDir | null;
  readonly #cache = new Map<string, Run>();

  private constructor(single: Run | null, root: SafeDir | null) {
    this.#single = single;
    this.#root = root;
  }

  /** One run; `progress` gives its live bars when the pipeline runs in this process. */
  static single(runDir: string, progress?: () => ProgressSnapshot[]): Runs {
    const path = resolve(runDir);
    return new Runs(new Run(basename(path), path, progress), null);
  }

  /** Every folder of `runsDir` (not symlinks), each a run. */
  static folder(runsDir: string): Runs {
    return new Runs(null, new SafeDir(runsDir));
  }

  /** The single run, when there is one. */
  get single(): Run | null {
    return this.#single;
  }

  async list(): Promise<Run[]> {
    if (this.#single) return [this.#single];
    const root = await this.#root!.realRoot();
    if (root === null) return [];
    const names: string[] = [];
    for await (const e of Deno.readDir(root)) {
      if (e.isDirectory && !e.isSymlink && validRunName(e.name)) names.push(e.name);
    }
    names.sort();
    const out: Run[] = [];
    for (const n of names) {
      const r = await this.get(n);
      if (r) out.push(r);
    }
    return out;
  }

  /** The run named `name`, or null (invalid names, symlinks and escapes included). */
  async get(name: string): Promise<Run | null> {
    if (!validRunName(name)) return null;
    if (this.#single) return name === this.#single.name ? this.#single : null;
    const root = await this.#root!.realRoot();
    if (root === null) return null;
    const path = join(root, name);
    try {
      const st = await Deno.lstat(path);
      if (!st.isDirectory || st.isSymlink) return null;
      if (!within(root, await Deno.realPath(path))) return null;
    } catch {
      return null;
    }
    let run = this.#cache.get(name);
    if (!run) {
      run = new Run(name, path);
      this.#cache.set(name, run);
    }
    return run;
  }
}
