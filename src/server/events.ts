/**
 * Server-Sent Events for one run: `progress` (the run's status, when it
 * changes) and `metrics` (new metrics.jsonl rows). One timer per run does the
 * reading, whatever the number of clients; each event is encoded once and the
 * same bytes go to every client, so hundreds of dashboards cost little.
 *
 * On connect a client gets every metric row read so far (or those after
 * `since`), then exactly the rows read after that: no row twice, none lost.
 */
import type { MetricRow } from "./metrics_feed.ts";
import type { Run } from "./run.ts";

const encoder = new TextEncoder();

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** Rows of the feed this client has (an index into run.metrics.rows). */
  seen: number;
  since: number | undefined;
  gotProgress: boolean;
  closed: boolean;
}

export interface HubOptions {
  /** Milliseconds between reads of the run (1000). */
  intervalMs?: number;
  /** Milliseconds between keep-alive comments (15000). */
  heartbeatMs?: number;
  /** A client whose unread bytes pass this is dropped (4 MiB). */
  maxBufferedBytes?: number;
}

function event(name: string, data: unknown): Uint8Array {
  return encoder.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
}

export class EventHub {
  readonly run: Run;
  readonly #clients = new Set<Client>();
  readonly #interval: number;
  readonly #heartbeat: number;
  readonly #maxBuffered: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ticking = false;
  #sent = 0;
  #lastProgress = "";
  #lastProgressBytes: Uint8Array | null = null;
  #lastBeat = Date.now();
  #closed = false;

  constructor(run: Run, opts: HubOptions = {}) {
    this.run = run;
    this.#interval = opts.intervalMs ?? 1000;
    this.#heartbeat = opts.heartbeatMs ?? 15000;
    this.#maxBuffered = opts.maxBufferedBytes ?? 4 << 20;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** A text/event-stream response that follows the run until the client goes or close(). */
  connect(opts: { since?: number } = {}): Response {
    let client: Client;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        client = {
          controller,
          seen: this.#sent,
          since: opts.since,
          gotProgress: false,
          closed: false,
        };
        if (this.#closed) {
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode("retry: 2000\n\n"));
        const rows = this.run.metrics.rows.slice(0, this.#sent);
        controller.enqueue(event("metrics", { reset: true, rows: this.#filter(rows, opts.since) }));
        if (this.#lastProgressBytes) {
          controller.enqueue(this.#lastProgressBytes);
          client.gotProgress = true;
        }
        this.#clients.add(client);
        this.#schedule(true);
      },
      cancel: () => this.#drop(client),
    }, { highWaterMark: 0, size: (chunk) => chunk.byteLength });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
      },
    });
  }

  /** Ends every stream and stops the timer. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const c of [...this.#clients]) {
      this.#drop(c);
      try {
        c.controller.close();
      } catch {
        // already closed by the client
      }
    }
  }

  #filter(rows: MetricRow[], since: number | undefined): MetricRow[] {
    return since === undefined ? rows : rows.filter((r) => r.t > since);
  }

  #drop(c: Client): void {
    c.closed = true;
    this.#clients.delete(c);
  }

  #schedule(now = false): void {
    if (this.#closed || this.#clients.size === 0) return;
    if (now) {
      if (this.#ticking) return;
      clearTimeout(this.#timer);
      this.#timer = undefined;
      queueMicrotask(() => this.#tick());
      return;
    }
    if (this.#timer === undefined && !this.#ticking) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#tick();
      }, this.#interval);
    }
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#closed) return;
    this.#ticking = true;
    try {
      await this.#publish();
    } catch (err) {
      console.error(`progress server: ${this.run.name}: ${(err as Error).message ?? err}`);
    } finally {
      this.#ticking = false;
      this.#schedule();
    }
  }

  async #publish(): Promise<void> {
    await this.run.metrics.refresh();
    const rows = this.run.metrics.rows;
    if (rows.length < this.#sent) {
      // metrics.jsonl was replaced: everyone starts over.
      this.#sent = 0;
      for (const c of this.#clients) c.seen = -1;
    }
    const fresh = rows.slice(this.#sent, rows.length);
    const from = this.#sent;
    this.#sent = rows.length;
    const status = await this.run.status();
    const { t: _t, ...stable } = status;
    const key = JSON.stringify(stable);
    const changed = key !== this.#lastProgress;
    if (changed) {
      this.#lastProgress = key;
      this.#lastProgressBytes = event("progress", status);
    }
    const shared = fresh.length > 0 ? event("metrics", { rows: fresh }) : null;
    const beat = Date.now() - this.#lastBeat >= this.#heartbeat;
    if (beat) this.#lastBeat = Date.now();
    for (const c of this.#clients) {
      if (c.seen === -1) {
        this.#send(c, event("metrics", { reset: true, rows: this.#filter([...rows], c.since) }));
      } else if (shared && c.seen === from) {
        this.#send(
          c,
          c.since === undefined ? shared : event("metrics", {
            rows: this.#filter(fresh, c.since),
          }),
        );
      } else if (fresh.length > 0) {
        this.#send(c, event("metrics", { rows: this.#filter(rows.slice(c.seen), c.since) }));
      }
      c.seen = this.#sent;
      if (changed || !c.gotProgress) {
        this.#send(c, this.#lastProgressBytes!);
        c.gotProgress = true;
      } else if (beat) {
        this.#send(c, encoder.encode(": ping\n\n"));
      }
    }
  }

  #send(c: Client, bytes: Uint8Array): void {
    if (c.closed) return;
    try {
      if ((c.controller.desiredSize ?? 0) < -this.#maxBuffered) {
        // Too slow to keep up: drop it; EventSource reconnects and starts afresh.
        this.#drop(c);
        c.controller.close();
        return;
      }
      c.controller.enqueue(bytes);
    } catch {
      this.#drop(c);
    }
  }
}
