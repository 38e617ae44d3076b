/**
 * The dashboard's files: its own HTML, JS and CSS, and uPlot from npm, all
 * embedded in the module graph at build time. Served by exact name from a
 * fixed table, so no request path ever reaches the file system; the page's
 * Content-Security-Policy allows only this origin (it works offline).
 */
import { Hono } from "hono";
import indexHtml from "./static/index.html" with { type: "text" };
import appJs from "./static/app.js" with { type: "text" };
import styleCss from "./static/style.css" with { type: "text" };
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

export const ASSETS: Record<string, { body: string; type: string }> = {
  "app.js": { body: appJs, type: JS },
  "style.css": { body: styleCss, type: CSS },
  "uplot.min.js": { body: uplotJs, type: JS },
  "uplot.min.css": { body: uplotCss, type: CSS },
};

const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const common = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

export function staticRoutes(): Hono {
  const app = new Hono();
  const page = () =>
    new Response(indexHtml, {
      headers: {
        ...common,
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": CSP,
        "cache-control": "no-cache",
      },
    });
  app.get("/", page);
  app.get("/index.html", page);
  app.get("/favicon.ico", () => new Response(null, { status: 204, headers: common }));
  app.get("/static/:file", (c) => {
    const file = c.req.param("file");
    const a = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
    if (!a) return c.json({ error: "not found" }, 404);
    return new Response(a.body, {
      headers: { ...common, "content-type": a.type, "cache-control": "no-cache" },
    });
  });
  return app;
}
