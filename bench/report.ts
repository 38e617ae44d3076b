/**
 * Turns `deno bench --json bench/ops_bench.ts` output into rates:
 *   deno bench -A --json bench/ops_bench.ts > out.json && deno run -A bench/report.ts out.json
 * Bench names carry their shapes ("matmul 512x512x512 nn ×10"), so the
 * FLOP or byte counts follow from the name alone.
 */
const file = Deno.args[0];
const data = JSON.parse(await Deno.readTextFile(file)) as {
  benches: { name: string; results: { ok?: { avg: number; p50?: number } }[] }[];
};

function work(name: string): { amount: number; unit: string } | null {
  const reps = Number(name.match(/×(\d+)/)?.[1] ?? 1);
  let m = name.match(/^matmul (?:(\d+)x)?(\d+)x(\d+)x(\d+)/);
  if (m) {
    const [b, M, N, K] = [Number(m[1] ?? 1), +m[2], +m[3], +m[4]];
    return { amount: reps * 2 * b * M * N * K, unit: "GFLOP/s" };
  }
  m = name.match(/^attention (\d+)x(\d+)x(\d+)x(\d+)/);
  if (m) {
    const [B, H, T, D] = m.slice(1, 5).map(Number);
    // Two batched products of T×T×D each (masked half counted, as computed).
    return { amount: reps * 4 * B * H * T * T * D, unit: "GFLOP/s" };
  }
  m = name.match(/^cross_entropy (\d+)x(\d+)/);
  if (m) {
    // Forward reads the logits; backward reads them and writes their gradient.
    return { amount: reps * 3 * 4 * Number(m[1]) * Number(m[2]), unit: "GB/s" };
  }
  m = name.match(/^adamw (\d+)/);
  if (m) {
    // Reads param, grad, m, v; writes param, m, v.
    return { amount: reps * 7 * 4 * Number(m[1]), unit: "GB/s" };
  }
  return null;
}

console.log("| bench | time per iteration | rate |\n| --- | ---: | ---: |");
for (const b of data.benches) {
  const ns = b.results[0]?.ok?.p50 ?? b.results[0]?.ok?.avg;
  if (!ns) continue;
  const w = work(b.name);
  const rate = w ? `${(w.amount / ns).toFixed(w.unit === "GB/s" ? 2 : 1)} ${w.unit}` : "";
  console.log(`| ${b.name} | ${(ns / 1e6).toFixed(1)} ms | ${rate} |`);
}
