/**
 * The committed configs, and the embedded default that `deno task distill` runs with no --config:
 * each validates against the schema and names models the repo ships, the default's student has at
 * most a quarter of its teacher's parameters (issue 12), and the CLI reads configs/default.json.
 */
import assert from "node:assert/strict";
import { configSchema } from "../src/run/config.ts";
import { loadConfig } from "../src/util/schema.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Parameters of a safetensors file, counted from its header alone (an independent count). */
async function safetensorsParams(path: string): Promise<number> {
  const bytes = await Deno.readFile(path);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<
    string,
    { shape?: number[] }
  >;
  return Object.entries(header).filter(([k]) => k !== "__metadata__")
    .reduce((sum, [, t]) => sum + t.shape!.reduce((a, b) => a * b, 1), 0);
}

const load = (name: string) => loadConfig(configSchema, `${ROOT}configs/${name}`);

/** The repo's model folders a config names (teacher, student start, reward-model start). */
function modelsNamed(cfg: Awaited<ReturnType<typeof load>>): string[] {
  const out = [cfg.student.init, cfg.reward.init];
  if (cfg.teacher.source.kind === "local") out.push(cfg.teacher.source.model);
  return out.filter((m) => m.startsWith("models/"));
}

// Real-data configs (gsm8k, mmlu-pro) name models a user downloads; the generated task's ship.
Deno.test("every committed config validates; the generated task's name models the repo ships", async () => {
  const names = [...Deno.readDirSync(`${ROOT}configs`)].map((e) => e.name)
    .filter((n) => n.endsWith(".json")).sort();
  assert.ok(names.includes("default.json"));
  for (const name of names) {
    const cfg = await load(name);
    if (cfg.task.kind !== "arithmetic") continue;
    for (const m of modelsNamed(cfg)) {
      assert.ok(
        (await Deno.stat(`${ROOT}${m}/model.safetensors`)).isFile,
        `${name}: ${m} has no model.safetensors`,
      );
    }
  }
});

Deno.test("the default's student has at most a quarter of its teacher's parameters", async () => {
  const cfg = await load("default.json");
  assert.equal(cfg.teacher.source.kind, "local");
  if (cfg.teacher.source.kind !== "local") return;
  const teacher = await safetensorsParams(`${ROOT}${cfg.teacher.source.model}/model.safetensors`);
  const student = await safetensorsParams(`${ROOT}${cfg.student.init}/model.safetensors`);
  assert.ok(student > 0 && student <= teacher / 4, `student ${student}, teacher ${teacher}`);
});

Deno.test("distill with no --config runs configs/default.json", async () => {
  const runs = await Deno.makeTempDir();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}src/cli/distill.ts`,
      "teacher-generate",
      "--no-server",
      `--set`,
      `runsDir=${runs}`,
      "--set",
      "task.arithmetic.trainCount=3",
      "--set",
      "teacher.samplesPerTemperature=1",
      "--set",
      "teacher.temperatures=[1]",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const want = JSON.parse(await Deno.readTextFile(`${ROOT}configs/default.json`));
  const got = JSON.parse(await Deno.readTextFile(`${runs}/${want.name}/config.json`));
  assert.equal(got.task.arithmetic.maxNumber, want.task.arithmetic.maxNumber);
  assert.equal(got.teacher.source.model, want.teacher.source.model);
  assert.deepEqual(got.sft, { ...got.sft, ...want.sft });
  assert.deepEqual(got.reward, { ...got.reward, ...want.reward });
  assert.deepEqual(got.ppo, { ...got.ppo, ...want.ppo });
  assert.deepEqual(got.eval, { ...got.eval, ...want.eval });
  const rows = (await Array.fromAsync(Deno.readDir(`${runs}/${want.name}/teacher`)))
    .filter((e) => e.name.endsWith(".jsonl"));
  assert.ok(rows.length > 0, "no teacher responses written");
  await Deno.remove(runs, { recursive: true });
});
