/**
 * The read-only JSON API under /api:
 *
 *   GET /api/runs                         runs with their stage status
 *   GET /api/runs/:run                    one run: status, progress and ETA per stage
 *   GET /api/runs/:run/config             config.json
 *   GET /api/runs/:run/metrics            rows, ?stage=&name=&since=<epoch seconds>
 *   GET /api/runs/:run/metrics/names      the (stage, name) series and their lengths
 *   GET /api/runs/:run/labels             pseudo-label agreement histogram
 *   GET /api/runs/:run/samples            questions, ?page=&per_page=&q=&kept=
 *   GET /api/runs/:run/samples/:id        a question, teacher responses with votes, student rollouts
 *   GET /api/runs/:run/report             report.json
 *   GET /api/runs/:run/report.md          report.md
 *   GET /api/runs/:run/events             Server-Sent Events: progress and new metric rows
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { EventHub, type HubOptions } from "./events.ts";
import type { Run, Runs } from "./run.ts";

export interface ApiOptions {
  hub?: HubOptions;
}

export class Hubs {
  readonly #hubs = new Map<Run, EventHub>();
  readonly #opts: HubOptions;

  constructor(opts: HubOptions = {}) {
    this.#opts = opts;
  }

  get(run: Run): EventHub {
    let h = this.#hubs.get(run);
    if (!h) {
      h = new EventHub(run, this.#opts);
      this.#hubs.set(run, h);
    }
    return h;
  }

  /** Clients connected, over every run. */
  get clients(): number {
    let n = 0;
    for (const h of this.#hubs.values()) n += h.clients;
    return n;
  }

  close(): void {
    for (const h of this.#hubs.values()) h.close();
  }
}

function notFound(c: Context, message: string): Response {
  return c.json({ error: message }, 404);
}

function badRequest(c: Context, message: string): Response {
  return c.json({ error: message }, 400);
}

/** A query parameter holding a number ("" counts as absent). */
const numberParam = z.preprocess(
  (v) => (v === "" ? undefined : v),
  z.coerce.number().refine(Number.isFinite, "must be a number").optional(),
);
const textParam = z.preprocess((v) => (v === "" ? undefined : v), z.string().optional());

const metricsQuery = z.object({ since: numberParam, stage: textParam, name: textParam });
const samplesQuery = z.object({
  page: numberParam,
  per_page: numberParam,
  q: textParam,
  kept: z.enum(["true", "false"]).optional(),
});
const eventsQuery = z.object({ since: numberParam });

/** The query, parsed; or the 400 naming the first bad parameter. */
function query<S extends z.ZodType>(c: Context, schema: S):
  | { ok: true; q: z.output<S> }
  | { ok: false; res: Response } {
  const r = schema.safeParse(c.req.query());
  if (r.success) return { ok: true, q: r.data };
  const key = String(r.error.issues[0].path[0]);
  const want = key === "kept" ? "true or false" : "a number";
  return { ok: false, res: badRequest(c, `${key} must be ${want}`) };
}

export function apiRoutes(runs: Runs, hubs: Hubs): Hono {
  const app = new Hono();

  app.get("/runs", async (c) => {
    const list = await runs.list();
    return c.json({
      runs: await Promise.all(list.map(async (r) => {
        const s = await r.status();
        return {
          name: s.name,
          live: s.live,
          status: s.status,
          hasReport: s.hasReport,
          stages: s.stages.map((x) => ({
            name: x.name,
            status: x.status,
            fraction: x.fraction,
            etaSeconds: x.etaSeconds,
          })),
        };
      })),
    });
  });

  // Every route below names a run; an unknown or invalid name is a 404.
  const withRun = (fn: (c: Context, run: Run) => Promise<Response> | Response) => {
    return async (c: Context) => {
      const name = c.req.param("run") ?? "";
      const run = await runs.get(name);
      if (!run) return notFound(c, `no run named ${JSON.stringify(name)}`);
      return await fn(c, run);
    };
  };

  app.get("/runs/:run", withRun(async (c, run) => c.json(await run.status())));

  app.get(
    "/runs/:run/config",
    withRun(async (c, run) => {
      const cfg = await run.config();
      return cfg === null ? notFound(c, "config.json not written yet") : c.json(cfg);
    }),
  );

  app.get(
    "/runs/:run/metrics",
    withRun(async (c, run) => {
      const p = query(c, metricsQuery);
      if (!p.ok) return p.res;
      const rows = await run.metrics.query(p.q);
      return c.json({ rows });
    }),
  );

  app.get(
    "/runs/:run/metrics/names",
    withRun(async (c, run) => {
      await run.metrics.refresh();
      const series = new Map<
        string,
        { stage: string; name: string; count: number; last: number }
      >();
      for (const r of run.metrics.rows) {
        const key = `${r.stage}\0${r.name}`;
        const s = series.get(key);
        if (s) {
          s.count++;
          s.last = r.t;
        } else series.set(key, { stage: r.stage, name: r.name, count: 1, last: r.t });
      }
      return c.json({ series: [...series.values()] });
    }),
  );

  app.get("/runs/:run/labels", withRun(async (c, run) => c.json(await run.agreement())));

  app.get(
    "/runs/:run/samples",
    withRun(async (c, run) => {
      const p = query(c, samplesQuery);
      if (!p.ok) return p.res;
      const { page, per_page: perPage, q, kept } = p.q;
      return c.json(
        await run.samples({
          page,
          perPage,
          q,
          kept: kept === undefined ? undefined : kept === "true",
        }),
      );
    }),
  );

  app.get(
    "/runs/:run/samples/:id",
    withRun(async (c, run) => {
      const id = c.req.param("id") ?? "";
      const s = await run.sample(id);
      return s ? c.json(s) : notFound(c, `no question ${JSON.stringify(id)}`);
    }),
  );

  app.get(
    "/runs/:run/report",
    withRun(async (c, run) => {
      const r = await run.report();
      return r === null ? notFound(c, "no report yet (the run has not finished)") : c.json(r);
    }),
  );

  app.get(
    "/runs/:run/report.md",
    withRun(async (c, run) => {
      const r = await run.reportMarkdown();
      if (r === null) return notFound(c, "no report yet (the run has not finished)");
      return c.body(r, 200, { "content-type": "text/markdown; charset=utf-8" });
    }),
  );

  app.get(
    "/runs/:run/events",
    withRun((c, run) => {
      const p = query(c, eventsQuery);
      if (!p.ok) return p.res;
      return hubs.get(run).connect({ since: p.q.since });
    }),
  );

  app.notFound((c) => notFound(c, `unknown endpoint ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => c.json({ error: (err as Error).message.split("\n")[0] }, 500));
  return app;
}
