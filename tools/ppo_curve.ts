/**
 * Draws a PPO run's per-iteration metric (the sampled reward by default) from
 * a run's metrics.jsonl as an SVG line chart with a moving average, so that
 * docs/ can show whether RL moved the reward:
 *
 *   deno run -A tools/ppo_curve.ts runs/my-run ppo-gold docs/ppo-gold-curve.svg [reward]
 */
import { readMetrics } from "../src/run/run_dir.ts";

const [runDir, stage, out, metric = "reward"] = Deno.args;
if (!runDir || !stage || !out) {
  console.error("usage: ppo_curve.ts <run dir> <stage, e.g. ppo or ppo-gold> <out.svg> [metric]");
  Deno.exit(2);
}

const points = (await readMetrics(`${runDir}/metrics.jsonl`))
  .filter((m) => m.stage === stage && m.name === metric && m.value !== null)
  .map((m) => [m.step, m.value as number] as const)
  .sort((a, b) => a[0] - b[0]);
if (points.length === 0) {
  console.error(`${runDir}/metrics.jsonl: no "${metric}" values for stage ${stage}`);
  Deno.exit(1);
}

/** Trailing mean over `k` iterations: single iterations are noisy at 64-256 rollouts. */
const smooth = (k: number) =>
  points.map((_, i) => {
    const w = points.slice(Math.max(0, i - k + 1), i + 1);
    return w.reduce((s, p) => s + p[1], 0) / w.length;
  });

const W = 640, H = 320, pad = 48;
const xs = points.map((p) => p[0]);
const ys = points.map((p) => p[1]);
const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
const [y0, y1] = [Math.min(0, ...ys), Math.max(...ys, 1e-9)];
const sx = (x: number) => pad + ((x - x0) / (x1 - x0)) * (W - 2 * pad);
const sy = (y: number) => H - pad - ((y - y0) / (y1 - y0)) * (H - 2 * pad);
const line = (vals: number[]) =>
  vals.map((v, i) => `${i ? "L" : "M"}${sx(xs[i]).toFixed(1)},${sy(v).toFixed(1)}`).join(" ");
const ticks = [y0, (y0 + y1) / 2, y1].map((y) =>
  `<text x="${pad - 6}" y="${sy(y) + 4}" text-anchor="end">${y.toFixed(2)}</text>`
);
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" ` +
  `font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="20" text-anchor="middle">${stage}: ${metric} per iteration (run ${
    runDir.split("/").filter(Boolean).pop()
  })</text>
<path d="M${pad},${pad} V${H - pad} H${W - pad}" stroke="black" fill="none"/>
${ticks.join("\n")}
<text x="${pad}" y="${H - pad + 18}">${x0}</text>
<text x="${W - pad}" y="${H - pad + 18}" text-anchor="end">${x1}</text>
<text x="${W / 2}" y="${H - 10}" text-anchor="middle">iteration</text>
<path d="${line(ys)}" stroke="#9ab" fill="none"/>
<path d="${line(smooth(10))}" stroke="#c33" stroke-width="2" fill="none"/>
<text x="${W - pad}" y="${pad - 6}" text-anchor="end" fill="#c33">mean of the last 10</text>
</svg>
`;
await Deno.writeTextFile(out, svg);
const first = ys.slice(0, 10), last = ys.slice(-10);
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
console.log(
  `${stage} ${metric}: first ${first.length} iterations ${
    mean(first).toFixed(3)
  }, last ${last.length} ${mean(last).toFixed(3)} (${points.length} iterations) -> ${out}`,
);
