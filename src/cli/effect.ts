/**
 * `deno task effect [--config configs/effect.json] [--set key=value ...]`:
 * the effect study. Runs the whole pipeline once per seed in
 * `effect.seeds` (runs/<name>-seed<S>/; the teacher's responses are
 * generated once and shared, since a seed covers everything downstream of
 * the teacher), then writes runs/<name>/report.md and report.json with every
 * row per seed and as mean ± standard error, and the PPO students'
 * differences from the SFT student paired by question.
 */
import { parseArgs } from "node:util";
import { cp } from "node:fs/promises";
import { runMain } from "../errors.ts";
import { gpu, initGpu } from "../gpu/mod.ts";
import { configSchema } from "../run/config.ts";
import { loadConfig } from "../util/schema.ts";
import { runPipeline } from "../pipeline/pipeline.ts";
import { aggregate, effectMarkdown, type SeedResult } from "../pipeline/effect.ts";
import type { EvalResult } from "../stages/eval.ts";
import { RunDir } from "../run/run_dir.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

const USAGE = "usage: deno task effect [--config configs/effect.json] [--set key=value ...]";

await runMain(async () => {
  const { values } = parseArgs({
    args: Deno.args.filter((a) => a !== "--"),
    options: {
      config: { type: "string", default: "configs/effect.json" },
      set: { type: "string", multiple: true, default: [] },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    return console.log(USAGE);
  }
  const base = await loadConfig(configSchema, values.config!, [
    ...(values.set as string[]),
    "server.enabled=false",
  ]);
  await initGpu();
  const seeds = base.effect.seeds;
  const results: SeedResult[] = [];
  const first = `${base.runsDir}/${base.name}-seed${seeds[0]}`;
  for (const seed of seeds) {
    const name = `${base.name}-seed${seed}`;
    const dir = `${base.runsDir}/${name}`;
    if (seed !== seeds[0]) {
      // The teacher's responses (to the training questions, and to PPO's fresh prompts for the
      // pseudo reward) do not depend on the seed: reuse them.
      for (const sub of ["teacher", "teacher-rl"]) {
        if (!(await exists(`${first}/${sub}`))) continue;
        await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
        await cp(`${first}/${sub}`, `${dir}/${sub}`, {
          recursive: true,
          force: false,
          errorOnExist: false,
        });
        console.error(`effect: seed ${seed} reuses ${first}/${sub}`);
      }
    }
    console.error(`effect: seed ${seed} (${dir})`);
    await runPipeline({ ...base, seed, name });
    const evalResult = JSON.parse(
      await Deno.readTextFile(`${dir}/eval/results.json`),
    ) as EvalResult;
    results.push({ seed, eval: evalResult });
  }
  const agg = aggregate(results);
  const out = new RunDir(`${base.runsDir}/${base.name}`);
  await Deno.mkdir(out.path(), { recursive: true });
  const meta = {
    questions: results[0].eval.questions,
    adapter: gpu().info.description,
    date: new Date().toISOString().slice(0, 10),
  };
  await out.writeJson("report.json", { ...meta, seeds, ...agg });
  await out.writeText("report.md", effectMarkdown(`Effect study: ${base.name}`, seeds, agg, meta));
  console.log(`report: ${out.path("report.md")}`);
}, USAGE);
