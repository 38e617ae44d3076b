/**
 * The progress server: the dashboard (/), the read-only JSON API (/api) with
 * live Server-Sent Events, and OpenAI-compatible endpoints (/v1) serving the
 * run's checkpoints. `createApp` builds it (tests call `app.request()`);
 * `startServer` listens on a port.
 */
import { Hono } from "hono";
import { apiRoutes, Hubs } from "./api.ts";
import { DEFAULT_MAX_BODY } from "./body.ts";
import type { HubOptions } from "./events.ts";
import { ModelHost } from "./models.ts";
import { openAiRoutes } from "./openai.ts";
import { type ProgressSnapshot, Runs } from "./run.ts";
import { staticRoutes } from "./static.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";

export interface AppOptions {
  /** Serve this one run directory... */
  runDir?: string;
  /** ...or every run in this folder. */
  runsDir?: string;
  /** Live progress bars of the pipeline running in this process (for `runDir`). */
  progress?: () => ProgressSnapshot[];
  /** The default model of /v1: student (default), sft, ppo, teacher, or a checkpoint folder. */
  model?: string;
  /** Request bodies past this many bytes get 413 (1 MiB). */
  maxBodyBytes?: number;
  /** Server-Sent Events timing. */
  events?: HubOptions;
  /** Open the GPU quietly when /v1 first needs it. */
  quietGpu?: boolean;
  /**
   * Where /v1 requests go: by default this app serves them (loading models on
   * this thread's GPU); a function forwards them (the server's worker sends
   * them to the thread that owns the GPU).
   */
  v1?: (req: Request) => Promise<Response>;
}

export interface App {
  app: Hono;
  runs: Runs;
  hubs: Hubs;
  /** The model host, when /v1 is served here. */
  models: ModelHost | null;
  /** Ends every event stream and frees the loaded model. */
  close(): Promise<void>;
}

export function createApp(opts: AppOptions): App {
  if (!opts.runDir === !opts.runsDir) {
    throw new Error("createApp: give exactly one of runDir and runsDir");
  }
  const runs = opts.runDir ? Runs.single(opts.runDir, opts.progress) : Runs.folder(opts.runsDir!);
  const hubs = new Hubs(opts.events);
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;

  const app = new Hono();
  app.route("/", staticRoutes());
  app.route("/api", apiRoutes(runs, hubs));
  let models: ModelHost | null = null;
  if (opts.v1) {
    const forward = opts.v1;
    app.all("/v1/*", (c) => forward(c.req.raw));
  } else {
    models = new ModelHost({ run: runs.single, model: opts.model, quietGpu: opts.quietGpu });
    app.route("/v1", openAiRoutes(models, { maxBodyBytes }));
  }
  app.notFound((c) => c.json({ error: `not found: ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => c.json({ error: (err as Error).message.split("\n")[0] }, 500));

  return {
    app,
    runs,
    hubs,
    models,
    async close() {
      hubs.close();
      await models?.close();
    },
  };
}

/** Only /v1, served on this thread: what the server's worker forwards to. */
export function createV1App(
  opts: Pick<AppOptions, "runDir" | "model" | "maxBodyBytes" | "quietGpu">,
): { app: Hono; models: ModelHost } {
  const run = opts.runDir ? Runs.single(opts.runDir).single : null;
  const models = new ModelHost({ run, model: opts.model, quietGpu: opts.quietGpu });
  const app = new Hono();
  app.route("/v1", openAiRoutes(models, { maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY }));
  app.notFound((c) => c.json({ error: `not found: ${c.req.method} ${c.req.path}` }, 404));
  return { app, models };
}

export interface ServerOptions extends Omit<AppOptions, "v1"> {
  /** 127.0.0.1 unless told otherwise. */
  host?: string;
  /** 8787 by default; 0 or a taken port: a free one is chosen. */
  port?: number;
  /** Where the start line goes (stderr). */
  log?: (message: string) => void;
  /** Milliseconds between progress snapshots sent to the server thread (250). */
  progressIntervalMs?: number;
}

export interface Server {
  url: string;
  port: number;
  host: string;
  close(): Promise<void>;
}

/**
 * Starts the server; prints its URL. If the port is taken, a free one is
 * chosen (and said).
 *
 * The HTTP server runs in a worker thread: on a software GPU adapter a
 * training step can hold this thread for many seconds (queue.submit runs the
 * work), and the dashboard must stay live meanwhile. This thread sends the
 * worker progress snapshots and answers the /v1 requests it forwards, since
 * the GPU and the models live here.
 */
export function startServer(opts: ServerOptions): Promise<Server> {
  return startWorkerServer(opts);
}

async function startWorkerServer(opts: ServerOptions): Promise<Server> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const host = opts.host ?? "127.0.0.1";
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const v1 = createV1App({ ...opts, maxBodyBytes });
  const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
  const post = (m: ToWorker) => worker.postMessage(m);
  const readers = new Map<number, ReadableStreamDefaultReader<Uint8Array>>();
  let closed: () => void = () => {};
  const whenClosed = new Promise<void>((r) => closed = r);

  /** Answers a /v1 request the worker forwarded, streaming the body back. */
  const answer = async (m: Extract<FromWorker, { type: "fetch" }>) => {
    let res: Response;
    try {
      res = await v1.app.fetch(
        new Request(m.url, {
          method: m.method,
          headers: m.headers,
          body: m.body as Uint8Array<ArrayBuffer> | null,
        }),
      );
    } catch (err) {
      res = Response.json({
        error: { message: (err as Error).message, type: "server_error", param: null, code: null },
      }, { status: 500 });
    }
    post({ type: "head", id: m.id, status: res.status, headers: [...res.headers] });
    if (!res.body) return post({ type: "end", id: m.id });
    const reader = res.body.getReader();
    readers.set(m.id, reader);
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        post({ type: "chunk", id: m.id, bytes: value });
      }
    } catch {
      // cancelled: the client went away
    } finally {
      readers.delete(m.id);
      post({ type: "end", id: m.id });
    }
  };

  const listening = new Promise<Extract<FromWorker, { type: "listening" }>>(
    (resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === "listening") resolve(m);
        else if (m.type === "failed") reject(new Error(`progress server: ${m.message}`));
        else if (m.type === "fetch") answer(m);
        else if (m.type === "cancel") readers.get(m.id)?.cancel().catch(() => {});
        else if (m.type === "closed") closed();
      };
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`progress server: ${e.message}`));
        closed();
      };
    },
  );
  post({
    type: "start",
    opts: {
      runDir: opts.runDir,
      runsDir: opts.runsDir,
      host,
      port: opts.port ?? 8787,
      live: opts.progress !== undefined,
      maxBodyBytes,
      events: opts.events,
    },
  });
  let info;
  try {
    info = await listening;
  } catch (err) {
    worker.terminate();
    throw err;
  }
  const progress = opts.progress;
  const sendProgress = () => progress && post({ type: "progress", snapshots: progress() });
  sendProgress();
  const timer = progress ? setInterval(sendProgress, opts.progressIntervalMs ?? 250) : undefined;
  log(`progress server: ${info.url}${info.note}`);
  let closing: Promise<void> | null = null;
  return {
    url: info.url,
    port: info.port,
    host,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        post({ type: "close" });
        await Promise.race([whenClosed, new Promise((r) => setTimeout(r, 5000))]);
        worker.terminate();
        for (const r of readers.values()) await r.cancel().catch(() => {});
        await v1.models.close();
      })();
      return closing;
    },
  };
}
