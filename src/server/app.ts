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
}

export interface App {
  app: Hono;
  runs: Runs;
  hubs: Hubs;
  models: ModelHost;
  /** Ends every event stream and frees the loaded model. */
  close(): Promise<void>;
}

export function createApp(opts: AppOptions): App {
  if (!opts.runDir === !opts.runsDir) {
    throw new Error("createApp: give exactly one of runDir and runsDir");
  }
  const runs = opts.runDir ? Runs.single(opts.runDir, opts.progress) : Runs.folder(opts.runsDir!);
  const hubs = new Hubs(opts.events);
  const models = new ModelHost({ run: runs.single, model: opts.model, quietGpu: opts.quietGpu });
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;

  const app = new Hono();
  app.route("/", staticRoutes());
  app.route("/api", apiRoutes(runs, hubs));
  app.route("/v1", openAiRoutes(models, { maxBodyBytes }));
  app.notFound((c) => c.json({ error: `not found: ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => c.json({ error: (err as Error).message.split("\n")[0] }, 500));

  return {
    app,
    runs,
    hubs,
    models,
    async close() {
      hubs.close();
      await models.close();
    },
  };
}

export interface ServerOptions extends AppOptions {
  /** 127.0.0.1 unless told otherwise. */
  host?: string;
  /** 8787 by default; 0 or a taken port: a free one is chosen. */
  port?: number;
  /** Where the start line goes (stderr). */
  log?: (message: string) => void;
}

export interface Server {
  url: string;
  port: number;
  host: string;
  app: App;
  close(): Promise<void>;
}

/** Starts the server; prints its URL. If the port is taken, a free one is chosen (and said). */
export function startServer(opts: ServerOptions): Promise<Server> {
  const host = opts.host ?? "127.0.0.1";
  const want = opts.port ?? 8787;
  const log = opts.log ?? ((m: string) => console.error(m));
  const app = createApp(opts);
  const ac = new AbortController();
  const serve = (port: number) =>
    Deno.serve({ hostname: host, port, signal: ac.signal, onListen() {} }, app.app.fetch);
  let server: Deno.HttpServer<Deno.NetAddr>;
  let note = "";
  try {
    server = serve(want);
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    server = serve(0);
    note = ` (port ${want} is taken; using a free one)`;
  }
  const port = server.addr.port;
  const shown = host.includes(":") ? `[${host}]` : host;
  const url = `http://${shown}:${port}/`;
  log(`progress server: ${url}${note}`);
  return Promise.resolve({
    url,
    port,
    host,
    app,
    async close() {
      await app.close();
      ac.abort();
      await server.finished;
    },
  });
}
