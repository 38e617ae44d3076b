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

/**
 * `deno task serve ARGS` in its own process, on a free port; `fn` gets its base URL
 * (http://127.0.0.1:PORT, read from the address it prints on stderr).
 */
export async function withServeProcess(
  root: string,
  args: string[],
  fn: (url: string) => Promise<void>,
): Promise<void> {
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}src/cli/serve.ts`, ...args, "--port", "0"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = server.stderr.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let seen = "";
    let url = "";
    while (!url) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server exited: ${seen}`);
      seen += value;
      url = seen.match(/(http:\/\/127\.0\.0\.1:\d+)\//)?.[1] ?? "";
    }
    await fn(url);
  } finally {
    await reader.cancel().catch(() => {});
    server.kill("SIGTERM");
    await server.status;
    await server.stdout.cancel().catch(() => {});
  }
}
