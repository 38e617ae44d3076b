/**
 * `deno task distill [STAGE] [--config FILE] [--set key.path=value ...]`:
 * runs the distillation pipeline (arXiv 2502.19557) end to end, or one stage.
 * With no --config it runs the embedded default, configs/default.json: the
 * generated task at a size that finishes within 15 minutes on 2 CPU cores.
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { EngineError, runMain } from "../errors.ts";
import { initGpu } from "../gpu/mod.ts";
import { configSchema } from "../run/config.ts";
import { describe, loadConfig } from "../util/schema.ts";
import { runPipeline, STAGES } from "../pipeline/pipeline.ts";
import { STAGE_NAMES, type StageName } from "../run/stages.ts";
import { progressRegistry } from "../stages/context.ts";
import { type Server, startServer } from "../server/app.ts";

const USAGE =
  `usage: deno task distill [STAGE] [--config FILE] [--set key.path=value ...] [--name NAME]

Runs every stage in order, skipping stages already done in runs/<name>/ (so the
same command resumes after a crash), then writes runs/<name>/report.md. A done
stage runs again when the config asks for more of it (PPO arms added to
ppo.rewards, a baseline switched on), resuming its finished parts, and eval
follows it. A done stage whose other settings changed is skipped with a line
naming them: use a new --name to redo it.
With STAGE, runs that stage alone (its inputs must exist).

stages:
${STAGE_NAMES.map((s) => `  ${s.padEnd(18)}${STAGES[s].about}`).join("\n")}

options:
  --config FILE       a JSON config (configs/*.json); any key not given takes its default
                      (without it: configs/default.json, the embedded default)
  --set key=value     override one key, e.g. --set sft.lr=3e-4 --set teacher.temperatures=[0.7,1]
  --name NAME         the run's name (same as --set name=NAME)
  --no-server         do not start the progress server
  --help              this text; STAGE --help lists that stage's keys
  --keys              every config key with its type and default (configs/default.json
                      sets some of them for the embedded default)`;

/** The embedded default's config, read when no --config is given. */
const DEFAULT_CONFIG = fileURLToPath(new URL("../../configs/default.json", import.meta.url));

await runMain(async () => {
  const { values, positionals } = parseArgs({
    args: Deno.args.filter((a) => a !== "--"),
    allowPositionals: true,
    options: {
      config: { type: "string" },
      set: { type: "string", multiple: true, default: [] },
      name: { type: "string" },
      "no-server": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      keys: { type: "boolean", default: false },
    },
  });
  const stage = positionals[0] as StageName | undefined;
  if (stage && !(stage in STAGES)) {
    throw new EngineError(`unknown stage "${stage}"; stages: ${STAGE_NAMES.join(", ")}`);
  }
  if (values.help) {
    if (!stage) return console.log(USAGE);
    const keys = describe(configSchema).filter((l) =>
      STAGES[stage].config.some((c) => l.startsWith(`${c}.`))
    );
    return console.log(
      `usage: deno task distill ${stage} [--config FILE] [--set key=value ...]\n\n${stage}: ${
        STAGES[stage].about
      }\n\nkeys:\n${keys.map((k) => `  ${k}`).join("\n")}`,
    );
  }
  if (values.keys) return console.log(describe(configSchema).join("\n"));
  const overrides = [...(values.set as string[])];
  if (values.name) overrides.push(`name=${values.name}`);
  if (values["no-server"]) overrides.push("server.enabled=false");
  const cfg = await loadConfig(configSchema, values.config ?? DEFAULT_CONFIG, overrides);
  await initGpu();
  let server: Server | null = null;
  try {
    const report = await runPipeline(cfg, {
      only: stage,
      onStart: async (ctx) => {
        if (!cfg.server.enabled) return;
        server = await startServer({
          runDir: ctx.run.path(),
          host: cfg.server.host,
          port: cfg.server.port,
          progress: () => progressRegistry.map((p) => p.snapshot()),
        });
      },
    });
    console.log(`report: ${cfg.runsDir}/${cfg.name}/report.md`);
    void report;
  } finally {
    await (server as Server | null)?.close();
  }
}, USAGE);
