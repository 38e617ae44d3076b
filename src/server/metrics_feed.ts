/**
 * Follows a run's metrics.jsonl: each refresh reads only the bytes appended
 * since the last one, keeps every parsed row in memory, and returns the new
 * rows. A torn or partial last line waits for its newline; a torn line left
 * mid-file by a crash is skipped, as readMetrics does.
 */
import { type MetricRow, parseMetricLines } from "../run/run_dir.ts";
import type { SafeDir } from "./safe_fs.ts";

export type { MetricRow };

export interface MetricQuery {
  stage?: string;
  name?: string;
  /** Rows with t strictly greater (seconds since the epoch). */
  since?: number;
}

const decoder = new TextDecoder();

export class MetricsFeed {
  readonly #dir: SafeDir;
  readonly #rel: string;
  #rows: MetricRow[] = [];
  #offset = 0;
  #file: { dev: number | null; ino: number | null } | null = null;
  #busy: Promise<MetricRow[]> | null = null;

  constructor(dir: SafeDir, rel = "metrics.jsonl") {
    this.#dir = dir;
    this.#rel = rel;
  }

  /** Every row read so far. */
  get rows(): readonly MetricRow[] {
    return this.#rows;
  }

  /** Reads what was appended since the last call; returns the new rows. Calls are serialized. */
  refresh(): Promise<MetricRow[]> {
    if (this.#busy) return this.#busy.then(() => this.refresh());
    this.#busy = this.#read().finally(() => this.#busy = null);
    return this.#busy;
  }

  /** Rows matching `q`, after a refresh. */
  async query(q: MetricQuery = {}): Promise<MetricRow[]> {
    await this.refresh();
    return filterRows(this.#rows, q);
  }

  async #read(): Promise<MetricRow[]> {
    const path = await this.#dir.resolve(this.#rel);
    if (path === null) {
      this.#reset();
      return [];
    }
    let f: Deno.FsFile;
    try {
      f = await Deno.open(path, { read: true });
    } catch {
      return [];
    }
    try {
      const st = await f.stat();
      const id = { dev: st.dev, ino: st.ino };
      // A different file, or a shorter one: it was replaced; read from the start.
      if (
        this.#file !== null && (this.#file.ino !== id.ino || this.#file.dev !== id.dev) ||
        st.size < this.#offset
      ) this.#reset();
      this.#file = id;
      if (st.size === this.#offset) return [];
      await f.seek(this.#offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(st.size - this.#offset);
      let got = 0;
      while (got < buf.length) {
        const n = await f.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      const end = buf.subarray(0, got).lastIndexOf(0x0a);
      if (end < 0) return [];
      this.#offset += end + 1;
      const fresh = parseMetricLines(decoder.decode(buf.subarray(0, end)));
      for (const r of fresh) this.#rows.push(r);
      return fresh;
    } finally {
      f.close();
    }
  }

  #reset(): void {
    this.#rows = [];
    this.#offset = 0;
    this.#file = null;
  }
}

export function filterRows(rows: readonly MetricRow[], q: MetricQuery): MetricRow[] {
  return rows.filter((r) =>
    (q.stage === undefined || r.stage === q.stage) &&
    (q.name === undefined || r.name === q.name) &&
    (q.since === undefined || r.t > q.since)
  );
}
