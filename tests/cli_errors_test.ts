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

Deno.test("train_teacher: a --save-at step outside the run is one line", async () => {
  const { code, lines } = await run("train_teacher", ["--steps", "30", "--save-at", "10,30"]);
  assert.equal(code, 1, lines.join("\n"));
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0], /^error: --save-at: each step must be an integer in 1\.\.29 .*got "30"/);
});

Deno.test("train_teacher: a --config of another task is one line", async () => {
  const { code, lines } = await run("train_teacher", ["--config", "configs/gsm8k.json"]);
  assert.equal(code, 1, lines.join("\n"));
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(
    lines[0],
    /^error: --config: train-teacher needs task.kind "arithmetic", got "gsm8k"/,
  );
});

Deno.test("train_teacher saves a snapshot at any --save-at step, not only at its 20-step readbacks", async () => {
  const out = `${await Deno.makeTempDir()}/t`;
  const args = [
    "--steps",
    "7",
    "--save-at",
    "3",
    "--batch",
    "4",
    "--hidden",
    "16",
    "--layers",
    "1",
  ];
  const small = ["--heads", "2", "--questions", "300", "--eval-questions", "4", "--out", out];
  const { code, lines } = await run("train_teacher", [...args, ...small]);
  assert.equal(code, 0, lines.join("\n"));
  const state = JSON.parse(await Deno.readTextFile(`${out}-3/trainer_state.json`));
  assert.equal(state.steps, 3);
  assert.equal(JSON.parse(await Deno.readTextFile(`${out}/trainer_state.json`)).steps, 7);
});
