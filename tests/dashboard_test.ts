/// <reference lib="dom" />
/**
 * The dashboard in a real headless Chromium (Debian's /usr/bin/chromium,
 * driven by playwright-core), opened DURING a short real pipeline run in this
 * process: it must see a stage's progress value change and the SFT loss chart
 * draw, then the final report; it saves a screenshot (to docs/dashboard.png
 * with UPDATE_SCREENSHOT=1, else to a temporary file, so tests leave the tree clean).
 * Skipped (not failed) when /usr/bin/chromium is missing; .ci/run installs it.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import "./support/gpu.ts";
import { configSchema } from "../src/run/config.ts";
import { runPipeline } from "../src/pipeline/pipeline.ts";
import { validate } from "../src/util/schema.ts";
import { progressRegistry } from "../src/stages/context.ts";
import { type Server, startServer } from "../src/server/app.ts";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = await Deno.stat(CHROMIUM).then((s) => s.isFile, () => false);
const SCREENSHOT = Deno.env.get("UPDATE_SCREENSHOT") === "1"
  ? new URL("../docs/dashboard.png", import.meta.url).pathname
  : await Deno.makeTempFile({ suffix: ".png" });

/** What the page shows for each stage: status and units done. */
function stagesShown(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const li of document.querySelectorAll<HTMLElement>("#timeline li[data-stage]")) {
    out[li.dataset.stage!] = `${li.dataset.status}:${li.dataset.done}/${li.dataset.total}`;
  }
  return out;
}

/** Points of the SFT loss series, and the chart canvas's pixels in the series colour. */
function sftChart(minPoints = 0): { points: number; colored: number } | null {
  // deno-lint-ignore no-explicit-any
  const d = (globalThis as any).dashboard;
  const c = d?.charts?.["sft-loss"];
  if (!c) return minPoints ? null : { points: 0, colored: 0 };
  const canvas = c.box.querySelector("canvas") as HTMLCanvasElement | null;
  let colored = 0;
  if (canvas && canvas.width > 0) {
    const px = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < px.length; i += 4) {
      // #2563eb, the series stroke (antialiased edges count too)
      if (
        px[i + 3] > 128 && Math.abs(px[i] - 37) < 40 && Math.abs(px[i + 1] - 99) < 40 &&
        Math.abs(px[i + 2] - 235) < 40
      ) colored++;
    }
  }
  const points = c.chart.data[0].length;
  // Not ready yet (for waitForFunction): too few points, or the line not drawn.
  if (minPoints && (points < minPoints || colored <= 20)) return null;
  return { points, colored };
}

Deno.test({
  name: "the dashboard follows a real run in headless Chromium: progress moves, charts draw",
  ignore: !haveChromium,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const runsDir = await Deno.makeTempDir({ prefix: "dashboard_test_" });
  const userDataDir = await Deno.makeTempDir({ prefix: "chromium_profile_" });
  const cfg = validate(configSchema, {
    name: "dash",
    runsDir,
    task: { arithmetic: { trainCount: 32, testCount: 16 } },
    teacher: { samplesPerTemperature: 1 },
    sft: { steps: 30 },
    studentGenerate: { samples: 2 },
    reward: { steps: 10 },
    ppo: { iterations: 2, promptsPerIteration: 16, miniBatch: 8 },
    eval: { majK: 2 },
    server: { enabled: false },
  }, "test");

  let server: Server | null = null;
  let started!: () => void;
  const serverUp = new Promise<void>((r) => started = r);
  const run = runPipeline(cfg, {
    log: () => {},
    onStart: async (ctx) => {
      server = await startServer({
        runDir: ctx.run.path(),
        port: 0,
        progress: () => progressRegistry.map((p) => p.snapshot()),
        events: { intervalMs: 250 },
        log: () => {},
      });
      started();
    },
  });
  let runError: unknown = null;
  const finished = run.then(() => true, (err) => {
    runError = err;
    return true;
  });
  await Promise.race([serverUp, finished]);
  if (runError) throw runError;

  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1400, height: 1000 },
  });
  try {
    // This thread also runs the pipeline, whose GPU submits on a software adapter hold it for
    // seconds at a time: playwright's answers can wait that long.
    context.setDefaultTimeout(240_000);
    const page = context.pages()[0] ?? await context.newPage();
    const external: string[] = [];
    page.on("request", (req) => {
      if (!req.url().startsWith(server!.url)) external.push(req.url());
    });
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    await page.goto(server!.url);
    // Polling on a timer throughout: a renderer starved by the run may hold frames back.
    await page.waitForSelector("#timeline li[data-stage]", { state: "attached" });

    // A progress value changes while we watch (the run is going on).
    const before = await page.evaluate(stagesShown);
    assert.ok(Object.keys(before).length === 9, JSON.stringify(before));
    await page.waitForFunction(
      (b) => {
        const now: Record<string, string> = {};
        for (const li of document.querySelectorAll<HTMLElement>("#timeline li[data-stage]")) {
          now[li.dataset.stage!] = `${li.dataset.status}:${li.dataset.done}/${li.dataset.total}`;
        }
        return Object.keys(b).some((k) => now[k] !== b[k]);
      },
      before,
      { polling: 200 },
    );
    const after = await page.evaluate(stagesShown);
    assert.notDeepEqual(after, before);

    // The SFT loss chart draws: points in the series and its colour on the canvas.
    await page.waitForFunction(sftChart, 2, { polling: 250 });
    const chart = (await page.evaluate(sftChart, 0))!;
    assert.ok(chart.points >= 2, JSON.stringify(chart));
    assert.ok(chart.colored > 20, `the loss line is not on the canvas: ${JSON.stringify(chart)}`);
    assert.equal(
      await page.evaluate(() => typeof (globalThis as { uPlot?: unknown }).uPlot),
      "function",
    );

    // The run ends: every stage done, the report table and PPO charts on the page.
    await finished;
    if (runError) throw runError;
    await page.waitForSelector("#report-table", { state: "attached" });
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll<HTMLElement>("#timeline li[data-stage]")].every((li) =>
          li.dataset.status === "done"
        ),
      undefined,
      { polling: 200 },
    );
    const ppoPoints = await page.evaluate(() =>
      // deno-lint-ignore no-explicit-any
      (globalThis as any).dashboard.charts["ppo-reward"].chart.data[0].length
    );
    assert.equal(ppoPoints, 2);
    await page.waitForSelector("#sample-table tbody tr", { state: "attached" });
    await page.waitForSelector("#sample-detail h3", { state: "attached" });
    await Deno.mkdir(new URL("../docs/", import.meta.url), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = await Deno.stat(SCREENSHOT);
    assert.ok(png.size > 10_000, `screenshot is ${png.size} bytes`);
    assert.deepEqual(external, [], "the page fetched something from elsewhere");
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await finished;
    await (server as Server | null)?.close();
    await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    await Deno.remove(runsDir, { recursive: true }).catch(() => {});
  }
});
