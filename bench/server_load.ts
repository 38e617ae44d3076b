/**
 * `deno run -A bench/server_load.ts [--clients 200] [--steps 15] [--rounds 3] [--dim 128] [--json]`:
 * how much 200 live dashboards slow training. A small CausalLM trains (one
 * Trainer step, one readback per step) while the progress server runs in this
 * process, fed a progress bar and metrics.jsonl rows every step as in a real
 * run. Rounds alternate: steps with no event-stream client, then steps with
 * `--clients` Server-Sent-Events clients connected at once (a child process
 * that reads every stream). Reports median step times and the slowdown;
 * the target is at most 5%.
 */
import { parseArgs } from "node:util";
import * as E from "../mod.ts";
import { smallConfig } from "../src/model/config.ts";
import { CausalLM } from "../src/model/llama.ts";
import { Trainer } from "../src/train/trainer.ts";
import { lmLoss } from "../src/train/lm_loss.ts";
import { MetricsLog, RunDir } from "../src/run/run_dir.ts";
import { Progress } from "../src/run/progress.ts";
import { startServer } from "../src/server/app.ts";

const { values } = parseArgs({
  args: Deno.args.filter((a) => a !== "--"),
  options: {
    clients: { type: "string", default: "200" },
    steps: { type: "string", default: "15" },
    rounds: { type: "string", default: "3" },
    dim: { type: "string", default: "128" },
    json: { type: "boolean", default: false },
    // Internal: run as the client process against this events URL.
    "client-of": { type: "string" },
  },
});

if (values["client-of"]) {
  await clients(values["client-of"], Number(values.clients));
  Deno.exit(0);
}

/** Opens `n` event streams at once and reads them until stdin closes; prints what arrived. */
async function clients(url: string, n: number): Promise<void> {
  let connected = 0;
  let events = 0;
  let bytes = 0;
  const one = async () => {
    const r = await fetch(url);
    const reader = r.body!.getReader();
    let first = true;
    const dec = new TextDecoder();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        if (first) {
          first = false;
          if (++connected === n) console.log(`connected ${n}`);
        }
        bytes += value.length;
        events += (dec.decode(value).match(/\nevent: |^event: /g) ?? []).length;
      }
    } catch {
      // the server went away
    }
  };
  const all = Array.from({ length: n }, one);
  for await (const _ of Deno.stdin.readable) { /* until the parent closes stdin */ }
  // Report, then exit: the process's end closes every stream.
  console.log(JSON.stringify({ connected, events, bytes }));
  void all;
}

const STEPS = Number(values.steps);
const ROUNDS = Number(values.rounds);
const N_CLIENTS = Number(values.clients);
const D = Number(values.dim);
const SEQ = 128;
const BATCH = 16;

const gpu = await E.initGpu({ quiet: true });
const runDir = await Deno.makeTempDir({ prefix: "server_load_" });
const run = new RunDir(runDir);
await run.writeJson("config.json", { name: "load", sft: { steps: 1_000_000 } });
const metrics = new MetricsLog(run);
const bar = new Progress("sft", 1_000_000, { unit: "steps", out: () => {} });
const server = await startServer({
  runDir,
  port: 0,
  progress: () => [bar.snapshot()],
  log: () => {},
});

const model = CausalLM.init(
  smallConfig({
    vocabSize: 64,
    hiddenSize: D,
    numLayers: 4,
    numHeads: 4,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 256,
  }),
  1,
);
const trainer = new Trainer(model, { lr: 1e-3, totalSteps: 1_000_000 });
const ids = new Int32Array(BATCH * SEQ);
const labels = new Int32Array(BATCH * SEQ);
let s = 7;
for (let i = 0; i < ids.length; i++) {
  s = (s * 1103515245 + 12345) >>> 0;
  ids[i] = s % 64;
  labels[i] = (s >>> 8) % 64;
}
const batch = { ids, labels, B: BATCH, T: SEQ, tokens: BATCH * SEQ };
let step = 0;

/** One training step as the stages take it: a step, its loss read back, a metric row, a tick. */
async function trainStep(): Promise<number> {
  const t0 = performance.now();
  const loss = trainer.trainStep([() => lmLoss(model, batch)]);
  const [v] = await loss.data();
  loss.destroy();
  metrics.log("sft", step, { loss: v, lr: 1e-3 });
  bar.tick(1, { loss: +v.toFixed(4) });
  step++;
  return performance.now() - t0;
}

async function phase(): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < STEPS; i++) times.push(await trainStep());
  return times;
}

const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[a.length >> 1] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};

for (let i = 0; i < 3; i++) await trainStep(); // compile every pipeline

const base: number[] = [];
const loaded: number[] = [];
const received: { connected: number; events: number; bytes: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  base.push(...await phase());
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--client-of",
      `${server.url}api/runs/${runDir.split("/").pop()}/events`,
      "--clients",
      String(N_CLIENTS),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes(`connected ${N_CLIENTS}`)) {
    const { done, value } = await lines.read();
    if (done) throw new Error(`client process ended early: ${out}`);
    out += value;
  }
  loaded.push(...await phase());
  await child.stdin.close();
  while (true) {
    const { done, value } = await lines.read();
    if (done) break;
    out += value;
  }
  await child.status;
  received.push(JSON.parse(out.trim().split("\n").pop()!));
}

const mBase = median(base);
const mLoaded = median(loaded);
const result = {
  adapter: `${gpu.info.description} (${gpu.info.backend})`,
  model: `d${D} x4 layers, batch ${BATCH}x${SEQ}`,
  clients: N_CLIENTS,
  steps_per_phase: STEPS,
  rounds: ROUNDS,
  step_ms_without: +mBase.toFixed(1),
  step_ms_with: +mLoaded.toFixed(1),
  slowdown_percent: +((100 * (mLoaded - mBase)) / mBase).toFixed(2),
  mean_ms_without: +(base.reduce((a, b) => a + b, 0) / base.length).toFixed(1),
  mean_ms_with: +(loaded.reduce((a, b) => a + b, 0) / loaded.length).toFixed(1),
  events_received_per_round: received.map((r) => r.events),
};
if (values.json) console.log(JSON.stringify(result));
else {
  for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(26)}${JSON.stringify(v)}`);
  console.log(result.slowdown_percent <= 5 ? "within the 5% target" : "over the 5% target");
}

await metrics.flush();
await server.close();
trainer.destroy();
model.destroy();
await Deno.remove(runDir, { recursive: true });
Deno.exit(0);
