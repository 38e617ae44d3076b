/** Config schema, run directory (atomic files, resumable shards, stages, metrics), progress. */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  applyOverrides,
  arr,
  bool,
  ConfigError,
  describe,
  type Infer,
  int,
  loadConfig,
  num,
  obj,
  oneOf,
  optional,
  str,
  validate,
  variant,
} from "../src/util/schema.ts";
import {
  compareUnitIds,
  JsonlShards,
  MetricsLog,
  readMetrics,
  RunDir,
  RunDirError,
} from "../src/run/run_dir.ts";
import { Progress } from "../src/run/progress.ts";
import { EngineError } from "../src/errors.ts";
import { unitRows } from "./support/shard_writer.ts";

const S = obj({
  seed: int({ default: 0, doc: "random seed" }),
  sft: obj({
    lr: num({ default: 1e-4, min: 0, doc: "learning rate" }),
    steps: int({ default: 100, min: 0 }),
    schedule: oneOf(["cosine", "linear", "constant"], { default: "cosine" }),
    packing: bool({ default: true }),
  }),
  data: obj({ train: str({ default: "" }) }),
  temperatures: arr(num({ min: 0 }), { default: [0.6, 0.8, 1.0] }),
  tags: arr(str(), { default: [] }),
  note: optional(str()),
  teacher: variant("kind", {
    local: obj({ path: str({ default: "" }) }),
    http: obj({ baseUrl: str(), model: str({ default: "teacher" }) }),
  }, { default: "local", doc: "where samples come from" }),
});
type Config = Infer<typeof S>;

const DEFAULTS: Config = {
  seed: 0,
  sft: { lr: 1e-4, steps: 100, schedule: "cosine", packing: true },
  data: { train: "" },
  temperatures: [0.6, 0.8, 1.0],
  tags: [],
  teacher: { kind: "local", path: "" },
};

function assertConfigError(fn: () => unknown, message: string) {
  assert.throws(fn, (err: Error) => {
    assert.ok(
      err instanceof ConfigError && err instanceof EngineError,
      `${err.name}: ${err.message}`,
    );
    assert.equal(err.message, message);
    return true;
  });
}

Deno.test("schema: defaults fill in, and the inferred type matches", () => {
  const c: Config = validate(S, {}, "config.json");
  assert.deepEqual(c, DEFAULTS);
  // Type-level checks: these lines only compile if Infer is right.
  const lr: number = c.sft.lr;
  const schedule: "cosine" | "linear" | "constant" = c.sft.schedule;
  const note: string | undefined = c.note;
  const url: string | null = c.teacher.kind === "http" ? c.teacher.baseUrl : null;
  assert.deepEqual([lr, schedule, note, url], [1e-4, "cosine", undefined, null]);

  const given = validate(S, {
    sft: { lr: 0.5 },
    note: "x",
    teacher: { kind: "http", baseUrl: "u" },
  }, "c");
  assert.equal(given.sft.lr, 0.5);
  assert.equal(given.sft.steps, 100);
  assert.equal(given.note, "x");
  assert.deepEqual(given.teacher, { kind: "http", baseUrl: "u", model: "teacher" });
  // Defaults are copies: changing one config does not change the next.
  c.temperatures.push(2);
  assert.deepEqual(validate(S, {}, "c").temperatures, [0.6, 0.8, 1.0]);
  // null leaves an optional key unset.
  assert.equal(validate(S, { note: null }, "c").note, undefined);
});

Deno.test("schema: every ConfigError kind, one line each", () => {
  const v = (x: unknown) => () => validate(S, x, "config.json");
  assertConfigError(v({ sft: { lr: "abc" } }), 'config.json: sft.lr must be a number, got "abc"');
  assertConfigError(
    v({ sft: { lrr: 1 } }),
    "config.json: unknown key sft.lrr (did you mean sft.lr?)",
  );
  assertConfigError(v({ sedd: 1 }), "config.json: unknown key sedd (did you mean seed?)");
  assertConfigError(v({ zzzzzzzz: 1 }), "config.json: unknown key zzzzzzzz");
  assertConfigError(v({ sft: { lr: -1 } }), "config.json: sft.lr must be >= 0, got -1");
  assertConfigError(
    v({ sft: { steps: 1.5 } }),
    "config.json: sft.steps must be an integer, got 1.5",
  );
  assertConfigError(
    v({ sft: { schedule: "cosin" } }),
    'config.json: sft.schedule must be one of "cosine", "linear", "constant", got "cosin" ' +
      '(did you mean "cosine"?)',
  );
  assertConfigError(
    v({ sft: { schedule: "step" } }),
    'config.json: sft.schedule must be one of "cosine", "linear", "constant", got "step"',
  );
  assertConfigError(
    v({ sft: { packing: "yes" } }),
    'config.json: sft.packing must be true or false, got "yes"',
  );
  assertConfigError(v({ temperatures: 0.5 }), "config.json: temperatures must be a list, got 0.5");
  assertConfigError(
    v({ temperatures: [0.5, "x"] }),
    'config.json: temperatures[1] must be a number, got "x"',
  );
  assertConfigError(v({ temperatures: [-1] }), "config.json: temperatures[0] must be >= 0, got -1");
  assertConfigError(v({ sft: [] }), "config.json: sft must be an object, got []");
  assertConfigError(v([1]), "config.json: the config must be an object, got [1]");
  assertConfigError(v({ teacher: { kind: "http" } }), "config.json: teacher.baseUrl is required");
  assertConfigError(
    v({ teacher: { kind: "htp" } }),
    'config.json: teacher.kind must be one of "local", "http", got "htp" (did you mean "http"?)',
  );
  assertConfigError(
    v({ teacher: { kind: "http", baseUrl: "u", path: "/m" } }),
    'config.json: unknown key teacher.path for teacher.kind "http"',
  );
  assertConfigError(
    v({ teacher: { kind: "http", baseUrl: "u", modle: "m" } }),
    'config.json: unknown key teacher.modle for teacher.kind "http" (did you mean teacher.model?)',
  );
});

Deno.test("schema: overrides are coerced by the type at their path", () => {
  const raw = applyOverrides(S, { sft: { steps: 5 }, teacher: { kind: "local", path: "/m" } }, [
    "sft.lr=3e-4",
    "seed=7",
    "sft.packing=false",
    "sft.schedule=linear",
    "temperatures=[0.5,1]",
    "tags=[a, b]",
    "data.train=data/train.jsonl?x=1",
    "teacher.kind=http",
    "teacher.baseUrl=http://127.0.0.1:8000/v1",
    "note=null",
  ]);
  const c = validate(S, raw, "config.json");
  assert.deepEqual(c, {
    seed: 7,
    sft: { lr: 3e-4, steps: 5, schedule: "linear", packing: false },
    data: { train: "data/train.jsonl?x=1" },
    temperatures: [0.5, 1],
    tags: ["a", "b"],
    teacher: { kind: "http", baseUrl: "http://127.0.0.1:8000/v1", model: "teacher" },
  });
  // Comma lists without brackets; the input value is not modified.
  const input = { temperatures: [2] };
  const more = applyOverrides(S, input, ["temperatures=0.2, 0.4", "teacher.model=m"]);
  assert.deepEqual(input, { temperatures: [2] });
  assert.deepEqual((more as Config).temperatures, [0.2, 0.4]);
  // A key of another variant case may come before the tag that selects it.
  const early = applyOverrides(S, {}, ["teacher.baseUrl=u", "teacher.kind=http"]);
  assert.deepEqual(validate(S, early, "c").teacher, {
    kind: "http",
    baseUrl: "u",
    model: "teacher",
  });
  assert.deepEqual(validate(S, applyOverrides(S, {}, ["temperatures=[]"]), "c").temperatures, []);
});

Deno.test("schema: bad overrides name the override", () => {
  const o = (...ov: string[]) => () => applyOverrides(S, {}, ov);
  assertConfigError(o("sft.lr=abc"), 'override "sft.lr=abc": sft.lr must be a number, got "abc"');
  assertConfigError(
    o("sft.lrr=1"),
    'override "sft.lrr=1": unknown key sft.lrr (did you mean sft.lr?)',
  );
  assertConfigError(o("sft.steps=-3"), 'override "sft.steps=-3": sft.steps must be >= 0, got -3');
  assertConfigError(
    o("sft.steps=2.5"),
    'override "sft.steps=2.5": sft.steps must be an integer, got 2.5',
  );
  assertConfigError(o("sft"), 'override "sft": expected key.path=value');
  assertConfigError(o("=1"), 'override "=1": expected key.path=value');
  assertConfigError(o("sft..lr=1"), 'override "sft..lr=1": expected key.path=value');
  assertConfigError(
    o("sft.lr.x=1"),
    'override "sft.lr.x=1": unknown key sft.lr.x (sft.lr is a number >= 0)',
  );
  assertConfigError(
    o("sft.packing=maybe"),
    'override "sft.packing=maybe": sft.packing must be true or false, got "maybe"',
  );
  assertConfigError(
    o("sft.schedule=cos"),
    'override "sft.schedule=cos": sft.schedule must be one of "cosine", "linear", "constant", got "cos"',
  );
  assertConfigError(
    o("temperatures=[0.5,x]"),
    'override "temperatures=[0.5,x]": temperatures[1] must be a number, got "x"',
  );
  assertConfigError(
    o("teacher.kind=grpc"),
    'override "teacher.kind=grpc": teacher.kind must be one of "local", "http", got "grpc"',
  );
  assertConfigError(o("teacher.url=u"), 'override "teacher.url=u": unknown key teacher.url');
  assertConfigError(
    () => applyOverrides(S, { sft: 3 }, ["sft.lr=1"]),
    'override "sft.lr=1": cannot set sft.lr: sft is 3, not an object',
  );
});

Deno.test("schema: loadConfig reads JSON, applies overrides, names the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "config.json");
    await Deno.writeTextFile(file, JSON.stringify({ sft: { lr: 0.01 }, seed: 3 }));
    const c = await loadConfig(S, file, ["sft.steps=9"]);
    assert.deepEqual(c.sft, { lr: 0.01, steps: 9, schedule: "cosine", packing: true });
    assert.equal(c.seed, 3);
    assert.deepEqual(await loadConfig(S, null, []), DEFAULTS);

    await Deno.writeTextFile(file, JSON.stringify({ sft: { lr: "fast" } }));
    await assert.rejects(loadConfig(S, file, []), {
      name: "ConfigError",
      message: `${file}: sft.lr must be a number, got "fast"`,
    });
    const missing = join(dir, "nope.json");
    await assert.rejects(loadConfig(S, missing, []), {
      name: "ConfigError",
      message: `${missing}: config file not found`,
    });
    await Deno.writeTextFile(file, '{\n  "seed": 1,\n  "sft": {\n}');
    await assert.rejects(loadConfig(S, file, []), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.message.startsWith(`${file}: invalid JSON (`), err.message);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("schema: describe lists key, type, default and doc", () => {
  const rows = describe(S).map((l) => l.split(/ {2,}/));
  const byKey = new Map(rows.map((r) => [r[0], r.slice(1)]));
  assert.deepEqual(byKey.get("seed"), ["int", "0", "random seed"]);
  assert.deepEqual(byKey.get("sft.lr"), ["number >= 0", "0.0001", "learning rate"]);
  assert.deepEqual(byKey.get("sft.schedule"), ["cosine|linear|constant", "cosine"]);
  assert.deepEqual(byKey.get("temperatures"), ["number >= 0[]", "[0.6,0.8,1]"]);
  assert.deepEqual(byKey.get("data.train"), ["string", '""']);
  assert.deepEqual(byKey.get("note"), ["string", "-"]);
  assert.deepEqual(byKey.get("teacher.kind"), ["local|http", "local", "where samples come from"]);
  assert.deepEqual(byKey.get("teacher.baseUrl"), ["string", "required", "[teacher.kind=http]"]);
  // Columns line up.
  const lines = describe(S);
  const col = lines[0].indexOf(rows[0][1]);
  for (const [i, l] of lines.entries()) {
    assert.equal(l.indexOf(rows[i][1], rows[i][0].length), col, l);
  }
});

// ---------------------------------------------------------------------------

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "run_infra_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("run dir: atomic json and text files", () =>
  withTempDir(async (root) => {
    const run = new RunDir(join(root, "runs", "a"));
    assert.equal(run.path("x", "y.json"), join(root, "runs", "a", "x", "y.json"));
    assert.equal(await run.readJson("config.json"), null);
    assert.equal(await run.exists("config.json"), false);
    await run.writeJson("config.json", { a: 1 });
    await run.writeJson("config.json", { a: 2, b: [1] });
    assert.deepEqual(await run.readJson("config.json"), { a: 2, b: [1] });
    await run.writeText("sub/notes.txt", "hello\n");
    assert.equal(await run.readText("sub/notes.txt"), "hello\n");
    assert.equal(await run.exists("sub"), true);
    assert.deepEqual(await listDir(run.root), ["config.json", "sub"]); // no temp files left
    await Deno.writeTextFile(run.path("bad.json"), "{");
    await assert.rejects(run.readJson("bad.json"), RunDirError);
  }));

Deno.test("run dir: stage bookkeeping persists", () =>
  withTempDir(async (root) => {
    const run = new RunDir(root);
    assert.equal(await run.stageDone("teacher"), null);
    await Promise.all([
      run.markStageDone("teacher", { samples: 10 }),
      run.markStageDone("sft", { loss: 0.5 }),
    ]);
    const again = new RunDir(root);
    assert.deepEqual(await again.stageDone("teacher"), { samples: 10 });
    assert.deepEqual(await again.stageDone("sft"), { loss: 0.5 });
    assert.equal(await again.stageDone("toString"), null);
    assert.deepEqual(await again.readJson("stages.json"), {
      teacher: { samples: 10 },
      sft: { loss: 0.5 },
    });
  }));

Deno.test("shards: resume skips done units, readAll is in unit order", () =>
  withTempDir(async (root) => {
    const shards = new JsonlShards(new RunDir(root), "teacher");
    assert.deepEqual(await shards.done(), new Set());
    assert.deepEqual(await shards.readAll(), []);
    await shards.writeUnit("10", [{ u: 10 }]);
    await shards.writeUnit("2", [{ u: 2, j: 0 }, { u: 2, j: 1 }]);
    await shards.writeUnit("0", []);
    // A temp file a crash left mid-write is not a completed unit.
    await Deno.writeTextFile(join(root, "teacher", ".5.jsonl.999-abcd.tmp"), '{"u":5}\n{"u"');
    assert.deepEqual(await shards.done(), new Set(["0", "2", "10"]));
    assert.deepEqual(await shards.readAll(), [{ u: 2, j: 0 }, { u: 2, j: 1 }, { u: 10 }]);
    assert.deepEqual(await shards.readUnit("0"), []);
    assert.equal(await shards.readUnit("5"), null);
    await assert.rejects(shards.writeUnit("../x", []), RunDirError);
    await assert.rejects(shards.writeUnit(".hidden", []), RunDirError);
    assert.deepEqual(
      ["b10", "a", "b2", "b02", "10", "9", "b1"].sort(compareUnitIds),
      ["9", "10", "a", "b1", "b2", "b02", "b10"],
    );
  }));

Deno.test("shards: a writer killed with SIGKILL resumes and loses nothing", () =>
  withTempDir(async (root) => {
    const UNITS = 12;
    const writer = join(import.meta.dirname!, "support", "shard_writer.ts");
    const run = (dir: string, delayMs: number) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", writer, dir, String(UNITS), String(delayMs)],
        stdout: "piped",
        stderr: "inherit",
      });

    // Reference: an uninterrupted run.
    const ref = await run(join(root, "ref"), 0).output();
    assert.equal(ref.code, 0);
    const expected = await new JsonlShards(new RunDir(join(root, "ref")), "teacher").readAll();
    assert.deepEqual(expected, Array.from({ length: UNITS }, (_, i) => unitRows(i)).flat());

    // Crash: kill -9 after a few units, at a random moment within the next unit.
    const crashDir = join(root, "crash");
    const child = run(crashDir, 40).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while ((seen.match(/wrote/g) ?? []).length < 4) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    await new Promise((r) => setTimeout(r, Math.random() * 45));
    child.kill("SIGKILL");
    const status = await child.status;
    assert.equal(status.success, false);
    await reader.cancel();

    const shards = new JsonlShards(new RunDir(crashDir), "teacher");
    const partial = await shards.done();
    assert.ok(partial.size >= 4 && partial.size < UNITS, `${partial.size} units done after kill`);
    for (const id of partial) assert.deepEqual(await shards.readUnit(id), unitRows(Number(id)));

    // Resume: only the missing units are written.
    const rest = await run(crashDir, 0).output();
    assert.equal(rest.code, 0);
    const wrote = new TextDecoder().decode(rest.stdout).trim().split("\n");
    assert.equal(wrote.length, UNITS - partial.size);
    for (const line of wrote) assert.ok(!partial.has(line.split(" ")[1]), line);
    assert.deepEqual(await shards.readAll(), expected);
  }));

Deno.test("metrics: buffered lines, flushed on time and on flush(); a torn line is skipped", () =>
  withTempDir(async (root) => {
    const run = new RunDir(root);
    const file = run.path("metrics.jsonl");
    const log = new MetricsLog(run);
    log.log("sft", 1, { loss: 2.5, lr: 1e-4 });
    assert.deepEqual(await readMetrics(file), []); // buffered
    await log.flush();
    log.log("sft", 2, { loss: 2.0 });
    await new Promise((r) => setTimeout(r, 1300)); // the timer flushes within a second
    let rows = await readMetrics(file);
    assert.deepEqual(rows.map((r) => [r.stage, r.step, r.name, r.value]), [
      ["sft", 1, "loss", 2.5],
      ["sft", 1, "lr", 1e-4],
      ["sft", 2, "loss", 2.0],
    ]);
    assert.ok(rows.every((r) => Math.abs(r.t - Date.now() / 1000) < 60));

    // A crash mid-append leaves a torn last line.
    await Deno.writeTextFile(file, '{"stage":"sft","step":3,"na', { append: true });
    rows = await readMetrics(file);
    assert.equal(rows.length, 3);

    // A new process appends after it; the torn line stays skipped.
    const log2 = new MetricsLog(new RunDir(root));
    log2.log("sft", 3, { loss: 1.5 });
    log2.log("dpo", 1, { reward: NaN });
    await log2.flush();
    rows = await readMetrics(file);
    assert.deepEqual(rows.map((r) => [r.stage, r.step, r.name]), [
      ["sft", 1, "loss"],
      ["sft", 1, "lr"],
      ["sft", 2, "loss"],
      ["sft", 3, "loss"],
      ["dpo", 1, "reward"],
    ]);
    assert.ok(Number.isNaN(rows[4].value));
    assert.deepEqual(await readMetrics(join(root, "none.jsonl")), []);
  }));

// ---------------------------------------------------------------------------

Deno.test("progress: without a TTY, a line at most every 5 s and at the end", () => {
  let now = 0;
  const out: string[] = [];
  const p = new Progress("train", 100, { out: (s) => out.push(s), tty: false, now: () => now });
  for (let i = 1; i <= 10; i++) {
    now = 1000 * i;
    p.tick(1, { loss: 0.5 / i });
  }
  assert.deepEqual(p.snapshot(), {
    stage: "train",
    done: 10,
    total: 100,
    unit: "units",
    rate: 1,
    etaSeconds: 90,
    elapsedSeconds: 10,
    finished: false,
    info: { loss: 0.05 },
  });
  p.done();
  p.done();
  assert.deepEqual(out, [
    "train [#...................] 5/100 units  1.0 units/s  ETA 1:35  loss=0.1\n",
    "train [##..................] 10/100 units  1.0 units/s  ETA 1:30  loss=0.05\n",
    "train [##..................] 10/100 units  1.0 units/s  in 0:10  loss=0.05\n",
  ]);
});

Deno.test("progress: the rate skips startup before the first tick; TTY redraws one line", () => {
  let now = 0;
  const out: string[] = [];
  const p = new Progress("teacher", 50, {
    unit: "prompts",
    out: (s) => out.push(s),
    tty: true,
    now: () => now,
  });
  now = 60_000; // a minute of startup
  p.tick(2);
  assert.equal(p.snapshot().rate, 2 / 60); // one tick: rate since start
  now = 62_000;
  p.tick(24, { acc: "0.9" });
  const s = p.snapshot();
  assert.equal(s.rate, 12);
  assert.equal(s.etaSeconds, 2);
  now = 64_000;
  p.tick(24);
  p.done();
  assert.deepEqual(out, [
    "\rteacher [....................] 2/50 prompts  0.033 prompts/s  ETA 24:00",
    "\rteacher [##########..........] 26/50 prompts  12.0 prompts/s  ETA 0:02  acc=0.9",
    "\rteacher [####################] 50/50 prompts  12.0 prompts/s  ETA 0:00  acc=0.9",
    // Padded over the longer previous line.
    "\rteacher [####################] 50/50 prompts  12.0 prompts/s  in 1:04  acc=0.9 \n",
  ]);
});
