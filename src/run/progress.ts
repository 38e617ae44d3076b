/**
 * A progress line per stage:
 * `stage [#########...........] 45/100 units  12.3 units/s  ETA 0:04  loss=0.31`.
 * On a terminal it redraws one line with "\r" (at most 10 times a second);
 * elsewhere (CI, pipes) it prints a line at most every 5 s, and at the end.
 */

/** What a progress bar shows, for the progress server. */
export interface ProgressSnapshot {
  stage: string;
  done: number;
  total: number;
  unit: string;
  /** Units per second since the first tick (0 before there is a rate). */
  rate: number;
  /** Seconds left at `rate`, or null when unknown. */
  etaSeconds: number | null;
  elapsedSeconds: number;
  finished: boolean;
  info: Record<string, number | string>;
}

export interface ProgressOptions {
  /** The unit of work, "units" by default. */
  unit?: string;
  /** Where text goes; stderr by default. */
  out?: (s: string) => void;
  /** Redraw one line in place; by default, whether stderr is a terminal. */
  tty?: boolean;
  /** Seconds between lines when not a terminal (5). */
  intervalSeconds?: number;
  /** Bar width in characters (20). */
  width?: number;
  /** Clock in milliseconds, for tests (performance.now). */
  now?: () => number;
}

const encoder = new TextEncoder();

function writeStderr(s: string): void {
  const bytes = encoder.encode(s);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}

function stderrIsTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

export class Progress {
  readonly stage: string;
  readonly total: number;
  readonly unit: string;
  #done = 0;
  #info: Record<string, number | string> = {};
  #out: (s: string) => void;
  #tty: boolean;
  #intervalMs: number;
  #width: number;
  #now: () => number;
  #start: number;
  /** Time and count at the first tick: the rate is measured from there, skipping startup. */
  #first: { t: number; done: number } | null = null;
  #lastT: number;
  #lastPrint: number;
  #finished = false;
  #lastLen = 0;

  constructor(stage: string, total: number, opts: ProgressOptions = {}) {
    this.stage = stage;
    this.total = Math.max(0, total);
    this.unit = opts.unit ?? "units";
    this.#out = opts.out ?? writeStderr;
    this.#tty = opts.tty ?? stderrIsTerminal();
    this.#intervalMs = (opts.intervalSeconds ?? 5) * 1000;
    this.#width = opts.width ?? 20;
    this.#now = opts.now ?? (() => performance.now());
    this.#start = this.#now();
    this.#lastT = this.#start;
    this.#lastPrint = this.#start;
  }

  /** `n` more units done; `info` values (loss=...) are shown until replaced. */
  tick(n = 1, info?: Record<string, number | string>): void {
    if (this.#finished) return;
    const t = this.#now();
    if (this.#first === null) this.#first = { t, done: this.#done + n };
    this.#done += n;
    this.#lastT = t;
    if (info) Object.assign(this.#info, info);
    const every = this.#tty ? 100 : this.#intervalMs;
    if (t - this.#lastPrint >= every) {
      this.#lastPrint = t;
      this.#print(false);
    }
  }

  /** Prints the final line (ending the redrawn line on a terminal). Idempotent. */
  done(): void {
    if (this.#finished) return;
    this.#lastT = this.#now();
    this.#finished = true;
    this.#print(true);
  }

  snapshot(): ProgressSnapshot {
    const rate = this.#rate();
    const left = Math.max(0, this.total - this.#done);
    return {
      stage: this.stage,
      done: this.#done,
      total: this.total,
      unit: this.unit,
      rate,
      etaSeconds: left === 0 ? 0 : rate > 0 ? left / rate : null,
      elapsedSeconds: (this.#lastT - this.#start) / 1000,
      finished: this.#finished,
      info: { ...this.#info },
    };
  }

  /** The current line, without "\r" or newline. */
  line(): string {
    const s = this.snapshot();
    const frac = s.total > 0 ? Math.min(1, s.done / s.total) : 1;
    const fill = Math.floor(frac * this.#width);
    const bar = "#".repeat(fill) + ".".repeat(this.#width - fill);
    const parts = [`${s.stage} [${bar}] ${s.done}/${s.total} ${s.unit}`];
    if (s.rate > 0) parts.push(`${formatRate(s.rate)} ${s.unit}/s`);
    if (s.finished) parts.push(`in ${formatDuration(s.elapsedSeconds)}`);
    else parts.push(`ETA ${s.etaSeconds === null ? "?" : formatDuration(s.etaSeconds)}`);
    const info = Object.entries(s.info).map(([k, v]) => `${k}=${formatValue(v)}`).join(" ");
    if (info) parts.push(info);
    return parts.join("  ");
  }

  #rate(): number {
    const f = this.#first;
    if (f === null) return 0;
    // With at least two ticks apart in time, measure from the first tick (skipping
    // startup); otherwise fall back to the whole time since construction.
    const dt = this.#lastT - f.t;
    if (dt > 0 && this.#done > f.done) return (this.#done - f.done) / (dt / 1000);
    const all = this.#lastT - this.#start;
    return all > 0 ? this.#done / (all / 1000) : 0;
  }

  #print(final: boolean): void {
    const line = this.line();
    if (this.#tty) {
      const pad = Math.max(0, this.#lastLen - line.length);
      this.#lastLen = line.length;
      this.#out("\r" + line + " ".repeat(pad) + (final ? "\n" : ""));
    } else {
      this.#out(line + "\n");
    }
  }
}

function formatRate(r: number): string {
  if (r >= 100) return r.toFixed(0);
  if (r >= 1) return r.toFixed(1);
  return r.toPrecision(2);
}

/** m:ss, or h:mm:ss from an hour on. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function formatValue(v: number | string): string {
  if (typeof v === "string") return v;
  if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}
