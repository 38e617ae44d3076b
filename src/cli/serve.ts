/**
 * `deno task serve [--run runs/NAME | --runs DIR] [--port N] [--host H] [--model M]`:
 * the progress server (dashboard, JSON API, OpenAI-compatible /v1) for a
 * finished or running run, or for every run in a folder.
 */
import { parseArgs } from "node:util";
import { EngineError, runMain } from "../errors.ts";
import { startServer } from "../server/app.ts";

const USAGE =
  `usage: deno task serve [--run runs/NAME | --runs DIR] [--port N] [--host H] [--model M]

Serves the dashboard, the JSON API (/api) and OpenAI-compatible endpoints (/v1)
for one run directory, or for every run in a folder (default: runs). A running
run's progress is read from its stages.json and metrics.jsonl.

options:
  --run DIR      one run directory, e.g. runs/default
  --runs DIR     every run in this folder (default: runs, when --run is not given)
  --port N       port (default 8787; a taken port falls back to a free one)
  --host H       address to bind (default 127.0.0.1)
  --model M      what /v1 serves by default: student (PPO policy if present, else SFT),
                 sft, ppo, teacher, or a checkpoint folder (HF layout)
  --help         this text`;

await runMain(async () => {
  const { values } = parseArgs({
    args: Deno.args.filter((a) => a !== "--"),
    options: {
      run: { type: "string" },
      runs: { type: "string" },
      port: { type: "string", default: "8787" },
      host: { type: "string", default: "127.0.0.1" },
      model: { type: "string", default: "student" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return console.log(USAGE);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new EngineError(`--port must be an integer in [0, 65535] (got ${values.port})`);
  }
  if (values.run && values.runs) throw new EngineError("give --run or --runs, not both");
  const dir = values.run ?? values.runs ?? "runs";
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw new EngineError(`${dir} is not a folder`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new EngineError(`${dir}: no such folder`);
    throw err;
  }
  const server = await startServer({
    ...(values.run ? { runDir: values.run } : { runsDir: dir }),
    host: values.host,
    port,
    model: values.model,
  });
  const stop = async () => {
    await server.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
}, USAGE);
