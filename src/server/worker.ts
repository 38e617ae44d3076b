/// <reference lib="deno.worker" />
/**
 * The server's worker thread: listens, serves the dashboard, the JSON API
 * and the event streams, and forwards /v1 requests to the starting thread
 * (which owns the GPU), streaming the answers back.
 */
import { createApp } from "./app.ts";
import { readCapped } from "./body.ts";
import type { FromWorker, StartOptions, ToWorker } from "./protocol.ts";
import type { ProgressSnapshot } from "./run.ts";

let snapshots: ProgressSnapshot[] = [];
let nextId = 1;
const pending = new Map<number, (r: Response) => void>();
const streams = new Map<number, ReadableStreamDefaultController<Uint8Array>>();
let server: Deno.HttpServer<Deno.NetAddr> | null = null;
let app: ReturnType<typeof createApp> | null = null;

function send(m: FromWorker): void {
  self.postMessage(m);
}

function openAiError(status: number, message: string): Response {
  return Response.json(
    { error: { message, type: "invalid_request_error", param: null, code: null } },
    { status },
  );
}

/** Sends a /v1 request to the starting thread; its answer streams back. */
function forward(maxBody: number) {
  return async (req: Request): Promise<Response> => {
    let body: Uint8Array<ArrayBuffer> | null = null;
    if (req.method !== "GET" && req.method !== "HEAD") {
      body = await readCapped(req, maxBody);
      if (body === null) return openAiError(413, `request body is larger than ${maxBody} bytes`);
    }
    const id = nextId++;
    const response = new Promise<Response>((resolve) => pending.set(id, resolve));
    send({
      type: "fetch",
      id,
      method: req.method,
      url: req.url,
      headers: [...req.headers],
      body,
    });
    return await response;
  };
}

function start(opts: StartOptions): void {
  app = createApp({
    runDir: opts.runDir,
    runsDir: opts.runsDir,
    progress: opts.live ? () => snapshots : undefined,
    maxBodyBytes: opts.maxBodyBytes,
    events: opts.events,
    v1: forward(opts.maxBodyBytes),
  });
  const serve = (port: number) =>
    Deno.serve({ hostname: opts.host, port, onListen() {} }, app!.app.fetch);
  let note = "";
  try {
    try {
      server = serve(opts.port);
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse)) throw err;
      server = serve(0);
      note = ` (port ${opts.port} is taken; using a free one)`;
    }
  } catch (err) {
    send({ type: "failed", message: (err as Error).message });
    return;
  }
  const port = server.addr.port;
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  send({ type: "listening", port, url: `http://${host}:${port}/`, note });
}

async function close(): Promise<void> {
  await app?.close();
  for (const c of streams.values()) {
    try {
      c.close();
    } catch {
      // already closed
    }
  }
  streams.clear();
  // Let the ended event streams flush their last bytes before the sockets close.
  await new Promise((r) => setTimeout(r, 20));
  await server?.shutdown();
  send({ type: "closed" });
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "start":
      start(m.opts);
      break;
    case "progress":
      snapshots = m.snapshots;
      break;
    case "head": {
      const resolve = pending.get(m.id);
      pending.delete(m.id);
      const body = new ReadableStream<Uint8Array>({
        start: (controller) => {
          streams.set(m.id, controller);
        },
        cancel: () => {
          streams.delete(m.id);
          send({ type: "cancel", id: m.id });
        },
      });
      const empty = m.status === 204 || m.status === 205 || m.status === 304;
      resolve?.(new Response(empty ? null : body, { status: m.status, headers: m.headers }));
      break;
    }
    case "chunk":
      try {
        streams.get(m.id)?.enqueue(m.bytes);
      } catch {
        streams.delete(m.id);
      }
      break;
    case "end":
      try {
        streams.get(m.id)?.close();
      } catch {
        // the client went away
      }
      streams.delete(m.id);
      break;
    case "close":
      close();
      break;
  }
};
