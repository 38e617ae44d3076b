/**
 * The layers of src/, checked over the import graph: a folder imports only
 * folders of lower layers (and itself), never one of its own layer unless
 * LAYERS says so, nothing outside src/ (src/cli/ imports the modules it
 * uses, not the root mod.ts), and no file imports itself back through a
 * cycle. Type-only imports count: they tie the layers as much as values do.
 * `deno test -A tests/layers_test.ts` prints one line per offending import.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Lowest first. A name is a folder of src/ or a file directly in src/. Names
 * in one entry share a layer: they may not import each other, except as
 * `allow` says ([importer, imported] pairs).
 */
export const LAYERS: { names: string[]; allow?: [string, string][] }[] = [
  { names: ["errors.ts", "util"], allow: [["util", "errors.ts"]] }, // shared utilities
  { names: ["gpu"] },
  { names: ["tensor"] },
  { names: ["autograd"] },
  { names: ["optim"] },
  { names: ["model"] },
  { names: ["generate", "train"] },
  { names: ["tasks", "teacher"] },
  { names: ["run"] }, // a run: its config, directory, progress and stage table
  // The server reads runs (src/run/), never the stages it shows.
  { names: ["stages", "server"] },
  { names: ["pipeline"] },
  { names: ["cli"] },
];

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Static imports and re-exports (type-only too), and dynamic imports. */
const IMPORTS = [
  /^\s*(?:import|export)\s(?:[^;]*?\sfrom\s*)?["']([^"']+)["']/gm,
  /\bimport\(\s*["']([^"']+)["']\s*\)/g,
];
/** Modules started by URL (`new Worker(new URL("./worker.ts", import.meta.url))`). */
const URLS = /\bnew URL\(\s*["']([^"']+\.ts)["']\s*,\s*import\.meta\.url\s*\)/g;

/**
 * The relative specifiers a module's text names: its imports, and with
 * `urls` the modules it starts by URL (a worker loads another module graph
 * but is no import cycle).
 */
export function specifiers(text: string, urls = true): string[] {
  const out: string[] = [];
  for (const re of urls ? [...IMPORTS, URLS] : IMPORTS) {
    for (const m of text.matchAll(re)) if (m[1].startsWith(".")) out.push(m[1]);
  }
  return out;
}

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await tsFiles(p));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

/**
 * Every .ts file under src/ (paths relative to the repository) and what it
 * imports (with `urls`, what it starts by URL too).
 */
export async function importGraph(urls = true, root = ROOT): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const file of await tsFiles(join(root, "src"))) {
    const text = await Deno.readTextFile(file);
    const targets = specifiers(text, urls).map((s) => relative(root, resolve(dirname(file), s)));
    graph.set(relative(root, file), [...new Set(targets)]);
  }
  return graph;
}

/** The layer name of a path under src/ ("src/run/config.ts" -> "run"), or null outside src/. */
export function unitOf(path: string): string | null {
  const parts = path.split(/[\\/]/);
  return parts[0] === "src" && parts.length >= 2 ? parts[1] : null;
}

/** One line per import that breaks the layers (or names a file that does not exist). */
export function layerViolations(
  graph: Map<string, string[]>,
  layers = LAYERS,
  exists: (path: string) => boolean = (p) => graph.has(p),
): string[] {
  const rank = new Map<string, number>();
  layers.forEach((l, i) => l.names.forEach((n) => rank.set(n, i)));
  const allowed = new Set(layers.flatMap((l) => l.allow ?? []).map(([a, b]) => `${a} ${b}`));
  const out: string[] = [];
  for (const [file, targets] of graph) {
    const from = unitOf(file)!;
    if (!rank.has(from)) {
      out.push(`${file}: src/${from} is not in the layer table (tests/layers_test.ts)`);
      continue;
    }
    for (const target of targets) {
      const to = unitOf(target);
      if (to === null) {
        out.push(`${file} imports ${target}: outside src/`);
      } else if (!exists(target)) {
        out.push(`${file} imports ${target}: no such file`);
      } else if (to === from) {
        continue;
      } else if (!rank.has(to)) {
        out.push(`${file} imports ${target}: src/${to} is not in the layer table`);
      } else if (rank.get(to)! > rank.get(from)!) {
        out.push(`${file} imports ${target}: ${to} is above ${from}`);
      } else if (rank.get(to) === rank.get(from) && !allowed.has(`${from} ${to}`)) {
        out.push(`${file} imports ${target}: ${to} and ${from} are the same layer`);
      }
    }
  }
  return out;
}

/** One line per import cycle between files ("a.ts -> b.ts -> a.ts"), from Tarjan's SCCs. */
export function importCycles(graph: Map<string, string[]>): string[] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      on.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(cyclePath(graph, scc));
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/** A shortest cycle through the first file (sorted) of a strongly connected set, as a line. */
function cyclePath(graph: Map<string, string[]>, scc: string[]): string {
  const inside = new Set(scc);
  const start = [...scc].sort()[0];
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = prev.get(u)!) path.splice(1, 0, u);
        return `import cycle: ${[...path, start].join(" -> ")}`;
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return `import cycle: ${scc.join(", ")}`;
}

Deno.test("layers: no import in src/ climbs a layer or leaves src/", async () => {
  const exists = (p: string) => {
    try {
      return Deno.statSync(join(ROOT, p)).isFile;
    } catch {
      return false;
    }
  };
  const bad = layerViolations(await importGraph(), LAYERS, exists);
  if (bad.length > 0) console.error(bad.join("\n"));
  assert.deepEqual(bad, []);
});

Deno.test("layers: no import cycles between files of src/", async () => {
  const bad = importCycles(await importGraph(false));
  if (bad.length > 0) console.error(bad.join("\n"));
  assert.deepEqual(bad, []);
});

Deno.test("layers: every folder of src/ is in the table, once", async () => {
  const names = LAYERS.flatMap((l) => l.names);
  assert.deepEqual(new Set(names).size, names.length);
  const units = new Set([...(await importGraph()).keys()].map((f) => unitOf(f)!));
  assert.deepEqual([...units].filter((u) => !names.includes(u)), []);
});

Deno.test("layers: the check names each offending import", () => {
  const graph = new Map([
    ["src/tasks/a.ts", ["src/stages/b.ts", "src/util/c.ts", "src/tasks/d.ts"]],
    ["src/stages/b.ts", ["src/server/e.ts", "src/run/f.ts"]],
    ["src/tasks/d.ts", ["src/tasks/a.ts"]],
    ["src/server/e.ts", []],
    ["src/cli/g.ts", ["mod.ts"]],
    ["src/util/c.ts", ["src/errors.ts"]],
    ["src/errors.ts", ["src/util/c.ts"]],
    ["src/lib/h.ts", []],
  ]);
  assert.deepEqual(layerViolations(graph), [
    "src/tasks/a.ts imports src/stages/b.ts: stages is above tasks",
    "src/stages/b.ts imports src/server/e.ts: server and stages are the same layer",
    "src/stages/b.ts imports src/run/f.ts: no such file",
    "src/cli/g.ts imports mod.ts: outside src/",
    "src/errors.ts imports src/util/c.ts: util and errors.ts are the same layer",
    "src/lib/h.ts: src/lib is not in the layer table (tests/layers_test.ts)",
  ]);
  assert.deepEqual(importCycles(graph), [
    "import cycle: src/errors.ts -> src/util/c.ts -> src/errors.ts",
    "import cycle: src/tasks/a.ts -> src/tasks/d.ts -> src/tasks/a.ts",
  ]);
  assert.deepEqual(
    specifiers(
      'import type {\n  A,\n  B,\n} from "./a.ts";\nexport * from "../b.ts";\nimport "./c.ts";\n' +
        'const w = new URL("./w.ts", import.meta.url);\nawait import("./d.ts");\n' +
        'import { x } from "node:path";\n',
    ),
    ["./a.ts", "../b.ts", "./c.ts", "./d.ts", "./w.ts"],
  );
});
