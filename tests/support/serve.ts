/** Test helpers for real local HTTP servers and the JSONL files runs write. */
import type { Hono } from "hono";

/** Serves `app` on 127.0.0.1 (a free port) while `fn` runs; `fn` gets the /v1 base URL. */
export async function withServer(app: Hono, fn: (base: string) => Promise<void>): Promise<void> {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  try {
    await fn(`http://127.0.0.1:${server.addr.port}/v1`);
  } finally {
    await server.shutdown();
  }
}

/** Every non-empty line of a JSONL file, parsed. */
export async function readJsonl(path: string) {
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim()).map((l) =>
    JSON.parse(l)
  );
}
