/** Every CLI answers a bad option with one line and its usage, and exits non-zero. */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;
const CLIS = ["distill", "effect", "export", "generate", "serve", "train_teacher"];

async function run(cli: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}src/cli/${cli}.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  // (The XDG_RUNTIME_DIR line is Deno's harmless warning, not ours.)
  const lines = new TextDecoder().decode(out.stderr).split("\n")
    .filter((l) => l.trim() && !l.includes("XDG_RUNTIME_DIR"));
  return { code: out.code, lines };
}

for (const cli of CLIS) {
  Deno.test(`${cli}: an unknown option is one line with the usage, exit 1`, async () => {
    const { code, lines } = await run(cli, ["--run-dir", "x"]);
    assert.equal(code, 1, lines.join("\n"));
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0], /^error: Unknown option '--run-dir'; usage: deno task /);
  });
}

Deno.test("a missing option value is one line too", async () => {
  const { code, lines } = await run("distill", ["--config"]);
  assert.equal(code, 1, lines.join("\n"));
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0], /^error: .*--config.*; usage: deno task distill/);
});
