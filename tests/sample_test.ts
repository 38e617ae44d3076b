/** GPU sampling: distribution, temperature, top-k, top-p, seeds. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import { softmaxRow } from "./support/reference.ts";
import "./support/gpu.ts";

const LOGITS = [2.0, 1.0, 0.5, 0.0, -1.0, 3.0, -2.0, 1.5];
const ROWS = 20000;

async function frequencies(opts: E.SampleOptions): Promise<number[]> {
  const x = E.expand(E.tensor(LOGITS, [1, 8]), [ROWS, 8]);
  const ids = await E.sample(x, opts).data();
  const f = new Array(8).fill(0);
  for (const id of ids) f[id] += 1 / ROWS;
  return f;
}

/** Within 5 binomial standard errors of p, for every token. */
function assertDistribution(f: number[], p: number[]) {
  p.forEach((pi, i) => {
    const se = Math.sqrt(Math.max(pi * (1 - pi), 1e-9) / ROWS);
    assert.ok(
      Math.abs(f[i] - pi) <= 5 * se + 1e-9,
      `token ${i}: frequency ${f[i]}, probability ${pi}`,
    );
  });
}

Deno.test("sampling at temperature 1 and 0.5 follows softmax(x / T)", async () => {
  for (const temperature of [1, 0.5]) {
    assertDistribution(
      await frequencies({ temperature, seed: 1 }),
      softmaxRow(LOGITS.map((v) => v / temperature)),
    );
  }
});

Deno.test("top-k keeps the k largest logits, renormalised", async () => {
  const f = await frequencies({ topK: 3, seed: 2 });
  const keep = [0, 5, 7];
  const z = softmaxRow(keep.map((i) => LOGITS[i]));
  assertDistribution(f, LOGITS.map((_, i) => (keep.includes(i) ? z[keep.indexOf(i)] : 0)));
});

Deno.test("top-p keeps the smallest top set reaching p, as Hugging Face's TopPLogitsWarper", async () => {
  const p = softmaxRow(LOGITS);
  const order = p.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
  for (const topP of [0.5, 0.8, 0.95]) {
    const keep: number[] = [];
    let mass = 0;
    for (const i of order) {
      if (mass >= topP) break;
      keep.push(i);
      mass += p[i];
    }
    const f = await frequencies({ topP, seed: 3 });
    assertDistribution(f, p.map((v, i) => (keep.includes(i) ? v / mass : 0)));
  }
});

Deno.test("top-k then top-p combine, and temperature 0 is argmax", async () => {
  const f = await frequencies({ topK: 4, topP: 0.7, temperature: 1, seed: 4 });
  // Top 4: ids 5 (3.0), 0 (2.0), 7 (1.5), 1 (1.0); renormalised, 5 and 0 hold >= 0.7.
  const z = softmaxRow([3.0, 2.0]);
  assertDistribution(f, LOGITS.map((_, i) => (i === 5 ? z[0] : i === 0 ? z[1] : 0)));
  const greedy = await E.sample(E.tensor(LOGITS, [1, 8]), { temperature: 0 }).data();
  assert.deepEqual(Array.from(greedy), [5]);
});

Deno.test("the same seed and counter replay the same tokens; another counter does not", async () => {
  const x = E.expand(E.tensor(LOGITS, [1, 8]), [256, 8]);
  const a = Array.from(await E.sample(x, { seed: 9, counter: 3 }).data());
  const b = Array.from(await E.sample(x, { seed: 9, counter: 3 }).data());
  const c = Array.from(await E.sample(x, { seed: 9, counter: 4 }).data());
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

Deno.test("a long row (many elements per lane) samples its distribution, with top-k and top-p too", async () => {
  // Mass on a few tokens spread over 777 (a vocabulary-sized row in miniature).
  const n = 777, at = [3, 200, 401, 650, 776], logit = [1.0, 2.0, 2.5, 1.5, 0.5];
  const row = new Array(n).fill(-20);
  at.forEach((i, j) => (row[i] = logit[j]));
  const rows = 4000;
  const x = E.expand(E.tensor(row, [1, n]), [rows, n]);
  const cases: [E.SampleOptions, number[]][] = [
    [{ seed: 3 }, at],
    [{ seed: 4, topK: 3 }, [200, 401, 650]],
    [{ seed: 5, topP: 0.6 }, [200, 401]],
  ];
  for (const [opts, kept] of cases) {
    const ids = await E.sample(x, opts).data();
    const z = softmaxRow(kept.map((i) => row[i]));
    // Outside the kept tokens only the -20 logits remain: about 1e-9 of the mass each.
    const tail = opts.topK || opts.topP ? 0 : (n - at.length) * Math.exp(-20) / 10;
    const counts = new Map<number, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, c] of counts) {
      assert.ok(kept.includes(id) || c <= rows * tail + 3, `${JSON.stringify(opts)}: drew ${id}`);
    }
    kept.forEach((id, j) => {
      const f = (counts.get(id) ?? 0) / rows, p = z[j];
      const se = Math.sqrt(p * (1 - p) / rows);
      assert.ok(Math.abs(f - p) <= 5 * se, `${JSON.stringify(opts)} token ${id}: ${f} vs ${p}`);
    });
  }
});
