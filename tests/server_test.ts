/**
 * The progress server through `app.request()`: every route of the dashboard,
 * the JSON API (with its Server-Sent Events) and the OpenAI-compatible /v1,
 * against a small run directory written here (its SFT checkpoint is the
 * stories260K fixture); path safety, body caps and error shapes; and a real
 * listening server that falls back to a free port.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import "./support/gpu.ts";
import { createApp, startServer } from "../src/server/app.ts";
import { configSchema } from "../src/run/config.ts";
import { validate } from "../src/util/schema.ts";
import type { ProgressSnapshot } from "../src/run/progress.ts";

const FIXTURE = new URL("./fixtures/stories260K/", import.meta.url).pathname;
const SECRET = "TOP-SECRET-OUTSIDE-THE-RUN";
const T0 = 1_700_000_000;

const root = await Deno.makeTempDir({ prefix: "server_test_" });
const runsDir = join(root, "runs");
const runDir = join(runsDir, "r1");
const outside = join(root, "outside");

async function writeJson(path: string, v: unknown) {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(v, null, 2));
}

function metricLine(stage: string, step: number, name: string, value: number | null, t: number) {
  return JSON.stringify({ stage, step, name, value, t }) + "\n";
}

const prompts: Record<string, string> = {
  q1: "Question: 1+1?\nAnswer:",
  q2: "Question: 2+2?\nAnswer:",
  q3: "Question: 3+3?\nAnswer:",
};

/** A run with four stages done and reward-train under way; an escape attempt beside it. */
async function writeRun() {
  await Deno.mkdir(outside, { recursive: true });
  await Deno.writeTextFile(join(outside, "secret.txt"), SECRET);
  await Deno.writeTextFile(
    join(outside, "u00001.jsonl"),
    JSON.stringify({ id: "secret-id", prompt: SECRET, text: SECRET }) + "\n",
  );
  const cfg = validate(configSchema, {
    name: "r1",
    runsDir,
    task: { arithmetic: { trainCount: 3, testCount: 2 } },
    teacher: { temperatures: [0.6, 1], samplesPerTemperature: 1 },
    sft: { steps: 10 },
    reward: { steps: 10 },
    ppo: { iterations: 2 },
    server: { enabled: false },
  }, "test");
  await writeJson(join(runDir, "config.json"), cfg);
  await writeJson(join(runDir, "stages.json"), {
    "teacher-generate": { responses: 18, tokensGenerated: 300, wallSeconds: 3 },
    label: { questions: 3, kept: 2, wallSeconds: 0.01 },
    sft: { examples: 12, tokensTrained: 5000, wallSeconds: 10 },
    "student-generate": { responses: 8, tokensGenerated: 100, wallSeconds: 2 },
  });
  let m = "";
  for (let s = 0; s < 10; s++) {
    m += metricLine("sft", s, "loss", 4 - s * 0.3, T0 + s);
    m += metricLine("sft", s, "lr", 0.001, T0 + s);
  }
  m += '{"stage":"sft","step":10,"name":"lo\n'; // torn by a crash
  for (let s = 0; s < 3; s++) {
    m += metricLine("reward-train", s, "loss", 0.7 - s * 0.1, T0 + 20 + s);
  }
  m += metricLine("reward-train", 3, "nan_metric", null, T0 + 23);
  await Deno.writeTextFile(join(runDir, "metrics.jsonl"), m);
  await writeJson(join(runDir, "labels.json"), [
    { id: "q1", pseudo_label: "2", agreement: 1, kept: true, votes: { "2": 6 } },
    { id: "q2", pseudo_label: "4", agreement: 0.5, kept: true, votes: { "4": 3, "5": 3 } },
    {
      id: "q3",
      pseudo_label: "6",
      agreement: 0.33,
      kept: false,
      votes: { "6": 2, "7": 2, "1": 2 },
    },
  ]);
  const teacher = Object.keys(prompts).flatMap((id, i) =>
    [0.6, 1].map((temperature, k) => ({
      id,
      prompt: prompts[id],
      temperature,
      sample: 0,
      text: ` ${i + 1}+${i + 1}=${k === 0 ? 2 * (i + 1) : 5}\n#### ${k === 0 ? 2 * (i + 1) : 5}`,
      answer: String(k === 0 ? 2 * (i + 1) : 5),
      finish: "eos",
      tokens: 12,
    }))
  );
  await Deno.mkdir(join(runDir, "teacher"), { recursive: true });
  await Deno.writeTextFile(
    join(runDir, "teacher/u00000.jsonl"),
    teacher.map((r) => JSON.stringify(r) + "\n").join(""),
  );
  // A shard that is a symlink to a file outside the run: never read.
  await Deno.symlink(join(outside, "u00001.jsonl"), join(runDir, "teacher/u00001.jsonl"));
  const student = ["q1", "q2"].flatMap((id) =>
    [0, 1].map((sample) => ({
      id,
      prompt: prompts[id],
      temperature: 1,
      sample,
      text: sample ? " 9" : id === "q1" ? " 2" : " 4",
      answer: sample ? "9" : id === "q1" ? "2" : "4",
      finish: "eos",
      tokens: 3,
      reward: sample ? 0 : 1,
    }))
  );
  await Deno.mkdir(join(runDir, "student"), { recursive: true });
  await Deno.writeTextFile(
    join(runDir, "student/u00000.jsonl"),
    student.map((r) => JSON.stringify(r) + "\n").join(""),
  );
  // The SFT checkpoint: a copy of the stories260K fixture.
  const ckpt = join(runDir, "sft/ckpt-000010");
  await Deno.mkdir(ckpt, { recursive: true });
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(join(FIXTURE, f), join(ckpt, f));
  }
  await writeJson(join(runDir, "sft/latest.json"), { step: 10, dir: "sft/ckpt-000010" });
  // A latest.json that points outside the run: the ppo model must not be offered.
  await Deno.mkdir(join(outside, "policy"), { recursive: true });
  await Deno.copyFile(join(FIXTURE, "config.json"), join(outside, "policy/config.json"));
  await writeJson(join(runDir, "ppo/latest.json"), { step: 2, dir: "../../outside" });
  // A second run, and a symlinked "run" that leads outside.
  await writeJson(join(runsDir, "r2/config.json"), { name: "r2" });
  await Deno.symlink(outside, join(runsDir, "evil"));
}

await writeRun();

const single = createApp({ runDir, events: { intervalMs: 50 }, quietGpu: true });
const folder = createApp({ runsDir, events: { intervalMs: 50 } });
const app = single.app;

async function getJson(path: string, a = app, status = 200): Promise<Record<string, unknown>> {
  const r = await a.request(path);
  const text = await r.text();
  assert.equal(r.status, status, `${path}: ${text}`);
  return JSON.parse(text);
}

function post(path: string, body: unknown, a = app): Promise<Response> {
  return Promise.resolve(a.request(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  }));
}

type Stage = { name: string; status: string; done: number; total: number; [k: string]: unknown };

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("GET / serves the dashboard page, with a CSP that keeps it on this origin", async () => {
  for (const path of ["/", "/index.html"]) {
    const r = await app.request(path);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type")!, /text\/html/);
    assert.match(r.headers.get("content-security-policy")!, /default-src 'self'/);
    const html = await r.text();
    assert.match(html, /\/static\/app\.js/);
    assert.match(html, /\/static\/uplot\.min\.js/);
    // Offline: no asset is fetched from anywhere else.
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
  }
});

Deno.test("GET /static/:file serves the dashboard's scripts and styles, uPlot from npm", async () => {
  const want: Record<string, RegExp> = {
    "app.js": /javascript/,
    "style.css": /css/,
    "uplot.min.js": /javascript/,
    "uplot.min.css": /css/,
  };
  for (const [file, type] of Object.entries(want)) {
    const r = await app.request(`/static/${file}`);
    assert.equal(r.status, 200, file);
    assert.match(r.headers.get("content-type")!, type);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    const body = await r.text();
    assert.ok(body.length > 100, file);
    if (file === "uplot.min.js") assert.match(body, /uPlot/);
    if (file === "app.js") assert.doesNotMatch(body, /https?:\/\//);
  }
  assert.equal((await app.request("/static/nope.js")).status, 404);
});

Deno.test("no path outside the run directory is ever served", async () => {
  const attempts = [
    "/static/../../deno.json",
    "/static/..%2f..%2fdeno.json",
    "/static/%2e%2e%2f%2e%2e%2fdeno.json",
    "/static/%252e%252e%252fdeno.json",
    "/static/%2fetc%2fpasswd",
    "/static/..%5c..%5cdeno.json",
    "/api/runs/..%2f..%2foutside/config",
    "/api/runs/%2e%2e/config",
    "/api/runs/%2e%2e%2foutside/report",
    "/api/runs/%252e%252e%252foutside/config",
    "/api/runs/%2Fetc%2Fpasswd/config",
    `/api/runs/${encodeURIComponent(outside)}/config`,
    "/api/runs/../outside/config",
    "/api/runs/r1/samples/..%2f..%2f..%2foutside%2fsecret.txt",
    "/api/runs/r1/../../outside/secret.txt",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/%2e%2e/%2e%2e/etc/passwd",
    `/${outside}/secret.txt`,
  ];
  for (const a of [single.app, folder.app]) {
    for (const path of attempts) {
      const r = await a.request(path);
      const body = await r.text();
      assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
      assert.ok(!body.includes(SECRET) && !body.includes("root:x:"), `${path} leaked`);
    }
  }
  // A symlinked run folder leading outside is neither listed nor served.
  const list = await getJson("/api/runs", folder.app);
  const names = (list.runs as { name: string }[]).map((r) => r.name);
  assert.deepEqual(names, ["r1", "r2"]);
  assert.equal((await folder.app.request("/api/runs/evil/config")).status, 404);
  assert.equal((await folder.app.request("/api/runs/evil/events")).status, 404);
  // A shard symlinked to a file outside the run is not read.
  const page = await getJson("/api/runs/r1/samples?per_page=100");
  assert.ok(!JSON.stringify(page).includes(SECRET));
  assert.equal((await app.request("/api/runs/r1/samples/secret-id")).status, 404);
  // A checkpoint named outside the run (ppo/latest.json -> ../../outside) is not offered.
  const models = await getJson("/v1/models");
  const ids = (models.data as { id: string }[]).map((m) => m.id);
  assert.ok(!ids.includes("ppo"), ids.join(","));
});

Deno.test("the API is read-only: other methods are refused and nothing changes", async () => {
  const before = await Deno.readTextFile(join(runDir, "stages.json"));
  for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
    for (const path of ["/api/runs", "/api/runs/r1", "/api/runs/r1/metrics", "/"]) {
      const r = await app.request(path, { method, body: method === "DELETE" ? undefined : "{}" });
      assert.ok(r.status === 404 || r.status === 405, `${method} ${path}: ${r.status}`);
      await r.body?.cancel();
    }
  }
  assert.equal(await Deno.readTextFile(join(runDir, "stages.json")), before);
});

Deno.test("GET /api/runs lists the one run, or every run of a runs folder", async () => {
  const one = await getJson("/api/runs");
  const runs = one.runs as { name: string; status: string; stages: Stage[] }[];
  assert.equal(runs.length, 1);
  assert.equal(runs[0].name, "r1");
  assert.equal(runs[0].status, "running");
  assert.deepEqual(
    runs[0].stages.map((s) => s.status),
    ["done", "done", "done", "done", "running", "pending", "pending", "pending", "pending"],
  );
  const r2 = await getJson("/api/runs/r2", folder.app);
  assert.equal(r2.status, "running"); // nothing done: its first stage is inferred running
  assert.equal((await folder.app.request("/api/runs/r3")).status, 404);
});

Deno.test("GET /api/runs/:run infers stage progress and ETA from stages.json and metrics", async () => {
  const s = await getJson("/api/runs/r1");
  assert.equal(s.live, false);
  const stages = s.stages as Stage[];
  const byName = Object.fromEntries(stages.map((x) => [x.name, x]));
  assert.equal(byName.sft.status, "done");
  assert.equal(byName.sft.done, 10);
  assert.equal(byName.sft.tokensPerSecond, 500);
  assert.equal(byName["teacher-generate"].done, 3); // 6 rows / (2 temperatures x 1 sample)
  const rt = byName["reward-train"];
  assert.equal(rt.status, "running");
  assert.equal(rt.done, 3);
  assert.equal(rt.total, 10);
  assert.equal(rt.fraction, 0.3);
  assert.equal(rt.rate, 1);
  assert.equal(rt.etaSeconds, 7);
  assert.equal(byName.ppo.status, "pending");
  assert.equal((await app.request("/api/runs/nope")).status, 404);
});

Deno.test("live progress bars of an in-process pipeline drive the stage status", async () => {
  const snap = (
    stage: string,
    done: number,
    total: number,
    finished = false,
  ): ProgressSnapshot => ({
    stage,
    done,
    total,
    unit: "steps",
    rate: 2,
    etaSeconds: (total - done) / 2,
    elapsedSeconds: done / 2,
    finished,
    info: { loss: 0.5 },
  });
  const live = createApp({
    runDir,
    progress:
      () => [snap("sft", 10, 10, true), snap("reward-train", 4, 10), snap("eval x", 5, 5, true)],
  });
  const s = await getJson("/api/runs/r1", live.app);
  assert.equal(s.live, true);
  const byName = Object.fromEntries((s.stages as Stage[]).map((x) => [x.name, x]));
  const rt = byName["reward-train"];
  assert.equal(rt.status, "running");
  assert.equal(rt.done, 4);
  assert.equal(rt.etaSeconds, 3);
  assert.deepEqual(rt.info, { loss: 0.5 });
  assert.equal((rt.bars as unknown[]).length, 1);
  assert.equal(byName.eval.done, 5); // "eval x" belongs to eval
  assert.equal(byName.eval.status, "pending"); // its bar finished; reward-train's runs
  await live.close();
});

Deno.test("a done stage that runs again (PPO arms added) shows as running while its bar is live", async () => {
  const live = createApp({
    runDir,
    progress: () => [{
      stage: "sft",
      done: 3,
      total: 10,
      unit: "steps",
      rate: 1,
      etaSeconds: 7,
      elapsedSeconds: 3,
      finished: false,
      info: {},
    }],
  });
  const s = await getJson("/api/runs/r1", live.app);
  const byName = Object.fromEntries((s.stages as Stage[]).map((x) => [x.name, x]));
  assert.equal(byName.sft.status, "running"); // stages.json still holds its earlier summary
  assert.equal(byName.sft.done, 3);
  assert.equal(byName["teacher-generate"].status, "done");
  assert.equal(byName["reward-train"].status, "pending"); // a live bar elsewhere: not inferred
  await live.close();
});

Deno.test("GET /api/runs/:run/config returns config.json", async () => {
  const c = await getJson("/api/runs/r1/config");
  assert.equal(c.name, "r1");
  assert.equal((await folder.app.request("/api/runs/r2/config")).status, 200);
});

Deno.test("GET /api/runs/:run/metrics filters by stage, name and since; skips torn lines", async () => {
  const all = (await getJson("/api/runs/r1/metrics")).rows as { value: number | null }[];
  assert.equal(all.length, 24);
  const loss = (await getJson("/api/runs/r1/metrics?stage=sft&name=loss")).rows as {
    step: number;
    value: number;
  }[];
  assert.deepEqual(loss.map((r) => r.step), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(loss[0].value, 4);
  const since = (await getJson(`/api/runs/r1/metrics?since=${T0 + 20}`)).rows as unknown[];
  assert.equal(since.length, 3); // reward-train steps 1, 2 and the null metric
  assert.equal(all[all.length - 1].value, null); // NaN travels as null
  const bad = await getJson("/api/runs/r1/metrics?since=yesterday", app, 400);
  assert.match(String(bad.error), /since/);
});

Deno.test("GET /api/runs/:run/metrics/names lists the series", async () => {
  const { series } = await getJson("/api/runs/r1/metrics/names") as {
    series: { stage: string; name: string; count: number }[];
  };
  assert.deepEqual(
    series.map((s) => `${s.stage}/${s.name}:${s.count}`),
    ["sft/loss:10", "sft/lr:10", "reward-train/loss:3", "reward-train/nan_metric:1"],
  );
});

Deno.test("GET /api/runs/:run/labels gives the agreement histogram", async () => {
  const h = await getJson("/api/runs/r1/labels");
  assert.deepEqual(h.counts, [0, 0, 0, 1, 0, 1, 0, 0, 0, 1]);
  assert.equal(h.questions, 3);
  assert.equal(h.kept, 2);
});

Deno.test("GET /api/runs/:run/samples pages, filters and summarizes questions", async () => {
  const p1 = await getJson("/api/runs/r1/samples?page=1&per_page=2");
  assert.equal(p1.total, 3);
  assert.equal(p1.pages, 2);
  const items = p1.items as {
    id: string;
    teacher: number;
    student: number;
    studentReward: number;
  }[];
  assert.deepEqual(items.map((i) => i.id), ["q1", "q2"]);
  assert.equal(items[0].teacher, 2);
  assert.equal(items[0].student, 2);
  assert.equal(items[0].studentReward, 0.5);
  const p2 = await getJson("/api/runs/r1/samples?page=2&per_page=2");
  assert.deepEqual((p2.items as { id: string }[]).map((i) => i.id), ["q3"]);
  const q = await getJson("/api/runs/r1/samples?q=3%2B3");
  assert.deepEqual((q.items as { id: string }[]).map((i) => i.id), ["q3"]);
  const dropped = await getJson("/api/runs/r1/samples?kept=false");
  assert.deepEqual((dropped.items as { id: string }[]).map((i) => i.id), ["q3"]);
  await getJson("/api/runs/r1/samples?per_page=lots", app, 400);
  await getJson("/api/runs/r1/samples?kept=maybe", app, 400);
});

Deno.test("GET /api/runs/:run/samples/:id shows teacher votes and student rewards", async () => {
  const d = await getJson("/api/runs/r1/samples/q2") as {
    prompt: string;
    label: { pseudo_label: string };
    teacher: { answer: string; votes: number; positive: boolean }[];
    student: { reward: number }[];
  };
  assert.equal(d.prompt, prompts.q2);
  assert.equal(d.label.pseudo_label, "4");
  assert.deepEqual(d.teacher.map((t) => [t.answer, t.votes, t.positive]), [
    ["4", 3, true],
    ["5", 3, false],
  ]);
  assert.deepEqual(d.student.map((s) => s.reward), [1, 0]);
  const missing = await getJson("/api/runs/r1/samples/nope", app, 404);
  assert.match(String(missing.error), /nope/);
});

Deno.test("GET /api/runs/:run/report and report.md: 404 until written", async () => {
  await getJson("/api/runs/r1/report", app, 404);
  assert.equal((await app.request("/api/runs/r1/report.md")).status, 404);
  const report = {
    name: "r1",
    task: "arithmetic",
    seed: 0,
    eval: { questions: 2, rows: { "SFT student": { strict: 0.5 } } },
  };
  await writeJson(join(runDir, "report.json"), report);
  await Deno.writeTextFile(join(runDir, "report.md"), "# Distillation report: r1\n");
  try {
    assert.deepEqual(await getJson("/api/runs/r1/report"), report);
    const md = await app.request("/api/runs/r1/report.md");
    assert.equal(md.status, 200);
    assert.match(md.headers.get("content-type")!, /markdown/);
    assert.match(await md.text(), /Distillation report/);
    assert.equal((await getJson("/api/runs/r1")).hasReport, true);
  } finally {
    await Deno.remove(join(runDir, "report.json"));
    await Deno.remove(join(runDir, "report.md"));
  }
});

/** Reads SSE events from a response until `until` says stop (or a timeout). */
async function readEvents(
  r: Response,
  until: (events: { event: string; data: unknown }[]) => boolean,
  timeoutMs = 5000,
): Promise<{ event: string; data: unknown }[]> {
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: { event: string; data: unknown }[] = [];
  let buf = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!until(events)) {
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(events)}`);
      const { done, value } = await reader.read();
      if (done) break;
      buf += value;
      let at;
      while ((at = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, at);
        buf = buf.slice(at + 2);
        const ev = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
      }
    }
  } finally {
    await reader.cancel();
  }
  return events;
}

Deno.test(
  "GET /api/runs/:run/events streams progress and each new metric row once",
  opts,
  async () => {
    const r = await app.request("/api/runs/r1/events");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type")!, /text\/event-stream/);
    let appended = false;
    const rowsOf = (evs: { event: string; data: unknown }[]) =>
      evs.filter((e) => e.event === "metrics").flatMap((e) =>
        (e.data as { rows: { stage: string; step: number; name: string }[] }).rows
      );
    const events = await readEvents(r, (evs) => {
      const rows = rowsOf(evs);
      if (!appended && rows.length >= 24 && evs.some((e) => e.event === "progress")) {
        appended = true;
        Deno.writeTextFileSync(
          join(runDir, "metrics.jsonl"),
          metricLine("reward-train", 3, "loss", 0.3, T0 + 24),
          { append: true },
        );
      }
      return rows.length >= 25;
    });
    const rows = rowsOf(events);
    assert.equal(rows.length, 25);
    const keys = rows.map((x) => `${x.stage}/${x.name}/${x.step}`);
    assert.equal(new Set(keys).size, keys.length, "no row twice");
    assert.equal(keys[keys.length - 1], "reward-train/loss/3");
    const progress = events.find((e) => e.event === "progress")!.data as { stages: Stage[] };
    assert.equal(progress.stages.length, 9);
    // `since` limits the first batch.
    const r2 = await app.request(`/api/runs/r1/events?since=${T0 + 22}`);
    const evs2 = await readEvents(r2, (evs) => rowsOf(evs).length >= 2 && evs.length >= 2);
    assert.ok(rowsOf(evs2).every((x) => (x as unknown as { t: number }).t > T0 + 22));
    assert.equal((await app.request("/api/runs/r1/events?since=x")).status, 400);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(single.hubs.clients, 0, "clients that left are dropped");
  },
);

Deno.test("GET /v1/models and /v1/models/:id list the run's models in OpenAI's shape", async () => {
  const m = await getJson("/v1/models");
  assert.equal(m.object, "list");
  const ids = (m.data as { id: string; object: string }[]).map((x) => x.id);
  assert.ok(ids.includes("student") && ids.includes("sft") && ids.includes("teacher"), ids.join());
  assert.equal((await getJson("/v1/models/sft")).id, "sft");
  const e = await getJson("/v1/models/gpt-9", app, 404);
  assert.equal((e.error as { code: string }).code, "model_not_found");
});

Deno.test("POST /v1/completions: plain, n, stop, seed and usage", opts, async () => {
  const prompt = "Once upon a time";
  const r = await post("/v1/completions", { model: "sft", prompt, max_tokens: 12, temperature: 0 });
  const j = await r.json();
  assert.equal(r.status, 200, JSON.stringify(j));
  assert.equal(j.object, "text_completion");
  assert.match(j.id, /^cmpl-/);
  assert.equal(j.model, "sft");
  assert.equal(j.choices.length, 1);
  assert.equal(typeof j.choices[0].text, "string");
  assert.ok(["stop", "length"].includes(j.choices[0].finish_reason));
  assert.equal(j.usage.completion_tokens, 12);
  assert.equal(j.usage.total_tokens, j.usage.prompt_tokens + 12);
  // n and seed: two draws; the same seed replays them.
  const body = { prompt, max_tokens: 10, temperature: 1, seed: 7, n: 2 };
  const a = await (await post("/v1/completions", body)).json();
  const b = await (await post("/v1/completions", body)).json();
  assert.equal(a.model, "student"); // the default: PPO if present, else SFT
  assert.equal(a.choices.length, 2);
  assert.deepEqual(
    a.choices.map((c: { text: string }) => c.text),
    b.choices.map((c: { text: string }) => c.text),
  );
  assert.equal(a.usage.prompt_tokens, j.usage.prompt_tokens);
  // stop cuts the text before the stop string.
  const full = j.choices[0].text as string;
  const word = full.trim().split(/\s+/)[1];
  if (word) {
    const s = await (await post("/v1/completions", {
      model: "sft",
      prompt,
      max_tokens: 12,
      temperature: 0,
      stop: [word],
    })).json();
    assert.equal(s.choices[0].finish_reason, "stop");
    assert.equal(s.choices[0].text, full.slice(0, full.indexOf(word)));
  }
});

/** The `data:` payloads of an OpenAI stream, [DONE] included. */
async function chunks(r: Response): Promise<string[]> {
  const text = await r.text();
  assert.ok(text.endsWith("data: [DONE]\n\n"), text.slice(-200));
  return text.split("\n\n").filter((b) => b.startsWith("data: ")).map((b) => b.slice(6));
}

Deno.test(
  "POST /v1/chat/completions: plain and streamed agree at temperature 0",
  opts,
  async () => {
    const body = {
      model: "sft",
      messages: [{ role: "system", content: "Tell a story." }, { role: "user", content: "Lily" }],
      max_tokens: 16,
      temperature: 0,
    };
    const plain = await (await post("/v1/chat/completions", body)).json();
    assert.equal(plain.object, "chat.completion");
    assert.match(plain.id, /^chatcmpl-/);
    assert.equal(plain.choices[0].message.role, "assistant");
    const text = plain.choices[0].message.content as string;
    assert.ok(plain.usage.prompt_tokens > 0);

    const r = await post("/v1/chat/completions", {
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type")!, /text\/event-stream/);
    const data = await chunks(r);
    assert.equal(data[data.length - 1], "[DONE]");
    const parsed = data.slice(0, -1).map((d) => JSON.parse(d));
    for (const p of parsed) {
      assert.equal(p.object, "chat.completion.chunk");
      assert.equal(p.id, parsed[0].id);
      assert.equal(typeof p.created, "number");
      assert.equal(p.model, "sft");
    }
    assert.deepEqual(parsed[0].choices[0].delta, { role: "assistant", content: "" });
    const streamed = parsed.flatMap((p) => p.choices).map((c) => c.delta?.content ?? "").join("");
    assert.equal(streamed, text);
    const last = parsed[parsed.length - 1];
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, plain.usage);
    const fin = parsed[parsed.length - 2].choices[0];
    assert.equal(fin.finish_reason, plain.choices[0].finish_reason);
    assert.deepEqual(fin.delta, {});
  },
);

Deno.test("POST /v1/completions streamed: text_completion chunks, n choices", opts, async () => {
  const body = { model: "sft", prompt: "The cat", max_tokens: 10, temperature: 0 };
  const plain = await (await post("/v1/completions", body)).json();
  const data = await chunks(await post("/v1/completions", { ...body, stream: true, n: 2 }));
  const parsed = data.slice(0, -1).map((d) => JSON.parse(d));
  assert.ok(parsed.every((p) => p.object === "text_completion" && !("usage" in p)));
  for (const i of [0, 1]) {
    const mine = parsed.flatMap((p) => p.choices).filter((c) => c.index === i);
    assert.equal(mine.map((c) => c.text).join(""), plain.choices[0].text);
    assert.equal(mine[mine.length - 1].finish_reason, plain.choices[0].finish_reason);
  }
});

Deno.test("/v1 errors: unknown model 404, bad JSON 400, big body 413, bad params 400", async () => {
  const shape = async (r: Response, status: number) => {
    const j = await r.json();
    assert.equal(r.status, status, JSON.stringify(j));
    assert.equal(typeof j.error.message, "string");
    assert.ok("type" in j.error && "param" in j.error && "code" in j.error);
    return j.error;
  };
  const msg = [{ role: "user", content: "hi" }];
  const nf = await shape(
    await post("/v1/chat/completions", { model: "gpt-4o", messages: msg }),
    404,
  );
  assert.equal(nf.code, "model_not_found");
  await shape(await post("/v1/completions", { model: "gpt-4o", prompt: "x", stream: true }), 404);
  const bad = await shape(await post("/v1/chat/completions", "{not json"), 400);
  assert.match(bad.message, /JSON/);
  await shape(await post("/v1/chat/completions", "[1, 2]"), 400);
  await shape(await post("/v1/chat/completions", ""), 400);
  const big = JSON.stringify({ messages: [{ role: "user", content: "x".repeat(1 << 20) }] });
  const tooBig = await shape(await post("/v1/chat/completions", big), 413);
  assert.match(tooBig.message, /larger than/);
  // Without a Content-Length (streamed body) the cap holds too.
  const streamed = new ReadableStream({
    start(c) {
      for (let i = 0; i < 20; i++) c.enqueue(new TextEncoder().encode("x".repeat(100_000)));
      c.close();
    },
  });
  await shape(await app.request("/v1/completions", { method: "POST", body: streamed }), 413);
  await shape(await post("/v1/chat/completions", { messages: [] }), 400);
  await shape(await post("/v1/chat/completions", { messages: msg, temperature: 5 }), 400);
  await shape(await post("/v1/chat/completions", { messages: msg, n: 0 }), 400);
  await shape(await post("/v1/chat/completions", { messages: msg, max_tokens: 1.5 }), 400);
  await shape(await post("/v1/chat/completions", { messages: msg, stop: [1] }), 400);
  await shape(await post("/v1/completions", { prompt: 42 }), 400);
  await shape(await post("/v1/completions", { prompt: [999999] }), 400);
  await shape(await app.request("/v1/embeddings", { method: "POST", body: "{}" }), 404);
});

Deno.test(
  "startServer prints its URL, takes a free port when asked for a taken one",
  opts,
  async () => {
    const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const taken = (blocker.addr as Deno.NetAddr).port;
    const lines: string[] = [];
    const s = await startServer({ runDir, port: taken, log: (m) => lines.push(m) });
    try {
      assert.notEqual(s.port, taken);
      assert.equal(s.url, `http://127.0.0.1:${s.port}/`);
      assert.equal(lines.length, 1);
      assert.match(
        lines[0],
        new RegExp(`http://127\\.0\\.0\\.1:${s.port}/ \\(port ${taken} is taken`),
      );
      const r = await fetch(`${s.url}api/runs`);
      assert.equal(r.status, 200);
      assert.equal(((await r.json()).runs as unknown[]).length, 1);
      // A live event stream does not hold up close().
      const ev = await fetch(`${s.url}api/runs/r1/events`);
      const reader = ev.body!.getReader();
      await reader.read();
      await s.close();
      while (!(await reader.read()).done) { /* drain until the server ends the stream */ }
    } finally {
      blocker.close();
    }
  },
);

Deno.test("cleanup", opts, async () => {
  await single.close();
  await folder.close();
  await Deno.remove(root, { recursive: true });
});
