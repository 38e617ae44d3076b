/**
 * Rows longer than llvmpipe lets one shader invocation walk (it ends every loop after 65,535
 * steps in all, silently): a vocabulary-sized softmax, cross-entropy and its gradient, argmax,
 * the sampler, and sums, against float64. On the CPU adapter these go to workgroup rows or
 * chunks (kernel_choice.ts SOFTWARE_LOOP_BUDGET); on hardware they are ordinary rows.
 */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import * as R from "./support/reference.ts";
import { assertClose } from "./support/assert.ts";
import "./support/gpu.ts";

const r = R.rng(4321);
// Qwen2.5's vocabulary: 2.3x the limit, and 3 passes of a softmax are 7x it.
const V = 151_936;

Deno.test("softmax, logSoftmax, argmax and max over a row of 151,936 match float64", async () => {
  const data = R.randn(2 * V, r, 3);
  data[V - 5] = 40; // the first row's maximum sits in its tail
  const x = E.tensor(data, [2, V]);
  const sm = await E.softmax(x).data();
  assertClose(sm, R.rows(data, V, R.softmaxRow), { what: "softmax", atol: 1e-7 });
  assertClose(await E.logSoftmax(x).data(), R.rows(data, V, R.logSoftmaxRow), {
    what: "logSoftmax",
    atol: 1e-3,
  });
  const want = [0, 1].map((b) => {
    const row = Array.from(data.subarray(b * V, (b + 1) * V));
    return row.indexOf(row.reduce((a, v) => Math.max(a, v), -Infinity));
  });
  assert.deepEqual(Array.from(await E.argmax(x).data()), want);
  assert.equal(want[0], V - 5);
  assertClose(await E.max(x, 1).data(), [40, data[V + want[1]]], { what: "max", rtol: 0, atol: 0 });
});

Deno.test("crossEntropy and its gradient over a vocabulary of 151,936 match float64", async () => {
  const rows = 3;
  const logits = R.randn(rows * V, r, 2);
  const labels = Int32Array.from([V - 1, 70_000, 12]);
  const lt = E.requiresGrad(E.tensor(logits, [rows, V]));
  const loss = E.crossEntropy(lt, E.tensor(labels, [rows]), { reduction: "none" });
  const want = R.crossEntropy(logits, labels, V);
  assertClose(await loss.data(), want, { what: "loss", rtol: 1e-5, atol: 1e-4 });
  E.backward(E.sum(loss));
  // d loss / d logits = softmax - onehot, row by row.
  const grad = R.rows(logits, V, R.softmaxRow).map((p, i) =>
    p - (labels[Math.floor(i / V)] === i % V ? 1 : 0)
  );
  assertClose(await lt.grad!.data(), grad, { what: "gradient", atol: 1e-7 });
});

Deno.test("the sampler finds a token in the tail of a 151,936 vocabulary, with top-k and top-p", async () => {
  const data = new Float32Array(2 * V);
  data[V - 3] = 30; // nearly all the first row's mass
  data[V + 100_000] = 30;
  const x = E.tensor(data, [2, V]);
  for (const opts of [{}, { topK: 1 }, { topP: 0.9 }, { topK: 50, topP: 0.5 }]) {
    const got = Array.from(await E.sample(x, { ...opts, seed: 7 }).data());
    assert.deepEqual(got, [V - 3, 100_000], JSON.stringify(opts));
  }
});

Deno.test("sums over 100,001 entries: whole, along a column and over the last axis", async () => {
  const n = 100_001;
  const data = R.randn(3 * n, r);
  const x = E.tensor(data, [n, 3]);
  const cols = [0, 1, 2].map((c) => data.filter((_, i) => i % 3 === c).reduce((a, b) => a + b, 0));
  assertClose(await E.sum(x, 0).data(), cols, { what: "sum over axis 0", atol: 1e-2 });
  assertClose(await E.sum(x).data(), [cols[0] + cols[1] + cols[2]], { what: "whole", atol: 2e-2 });
  const rowsT = E.tensor(data, [3, n]);
  const rowSums = [0, 1, 2].map((b) =>
    data.subarray(b * n, (b + 1) * n).reduce((a, v) => a + v, 0)
  );
  assertClose(await E.sum(rowsT, 1).data(), rowSums, {
    what: "sum over the last axis",
    atol: 1e-2,
  });
});

Deno.test("a decode step over a cache of 3,000 keys (head dim 64) and 1,500 (head dim 128) matches float64", async () => {
  for (const c of [{ Tk: 3000, D: 64 }, { Tk: 1500, D: 128 }]) {
    const [B, Hq, Hkv] = [1, 2, 1];
    const q = R.randn(B * Hq * c.D, r);
    const k = R.randn(B * Hkv * c.Tk * c.D, r);
    const v = R.randn(B * Hkv * c.Tk * c.D, r);
    const got = E.attention(
      E.tensor(q, [B, Hq, 1, c.D]),
      E.tensor(k, [B, Hkv, c.Tk, c.D]),
      E.tensor(v, [B, Hkv, c.Tk, c.D]),
      { causal: true, qOffset: c.Tk - 1 },
    );
    const want = R.attention(q, k, v, [B, Hq, 1, c.D], Hkv, c.Tk, {
      causal: true,
      qOffset: c.Tk - 1,
    });
    assertClose(await got.data(), want, { what: JSON.stringify(c) });
  }
});

Deno.test("the embedding gradient of a 151,936-row table reaches rows in its tail", async () => {
  const D = 4;
  const ids = Int32Array.from(
    { length: 600 },
    (_, i) => [V - 1, 100_000, 70_000, 5, i * 251][i % 5] % V,
  );
  const g = R.randn(ids.length * D, r);
  const table = E.requiresGrad(E.tensor(new Float32Array(V * D), [V, D]));
  E.backward(
    E.sum(E.mul(E.embedding(table, E.tensor(ids, [ids.length])), E.tensor(g, [ids.length, D]))),
  );
  const want = new Float64Array(V * D);
  ids.forEach((id, n) => {
    for (let d = 0; d < D; d++) want[id * D + d] += g[n * D + d];
  });
  assertClose(await table.grad!.data(), want, { what: "table gradient", atol: 1e-4 });
});

Deno.test("a matmul with K = 300,001 (a weight gradient over 300,001 tokens) matches float64", async () => {
  // The register-blocked kernels step K by 4: past 4 x 65,535 their loops would stop early.
  const [M, K, N] = [3, 300_001, 5];
  const a = R.randn(M * K, r);
  const b = R.randn(K * N, r);
  const want = R.matmul(a, b, 1, M, N, K);
  assertClose(await E.matmul(E.tensor(a, [M, K]), E.tensor(b, [K, N])).data(), want, {
    what: "a·b",
    atol: 3e-2,
  });
  // dW = dYᵀ·X: the tokens are K, along the rows of both operands.
  const at = Float32Array.from({ length: K * M }, (_, i) => a[(i % M) * K + Math.floor(i / M)]);
  assertClose(
    await E.matmul(E.tensor(at, [K, M]), E.tensor(b, [K, N]), { transA: true }).data(),
    want,
    { what: "aᵀ·b", atol: 3e-2 },
  );
});
