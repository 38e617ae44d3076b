/** Matmul against float64 on random and odd shapes, every transpose, broadcast batches. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import * as R from "./support/reference.ts";
import { assertClose } from "./support/assert.ts";
import "./support/gpu.ts";

const r = R.rng(77);

const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [1, 64, 32],
  [3, 5, 7],
  [17, 33, 9],
  [64, 64, 64],
  [65, 129, 33],
  [128, 40, 96],
  [5, 300, 128],
  // M and N aligned, K not: A transposed must not take the vec4 kernels (their k loop has no tail).
  [8, 12, 5],
  // Tall K: the GPU kernel splits K across workgroups here.
  [3, 5, 1000],
  [65, 33, 2049],
];

for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    Deno.test(`matmul transA=${transA} transB=${transB} matches float64 on odd sizes`, async () => {
      for (const [M, N, K] of SIZES) {
        for (const [batch, shareB] of [[1, false], [3, false], [2, true]] as const) {
          const a = R.randn(batch * M * K, r);
          const b = R.randn((shareB ? 1 : batch) * K * N, r);
          const ta = E.tensor(a, transA ? [batch, K, M] : [batch, M, K]);
          const tb = E.tensor(
            b,
            shareB ? (transB ? [N, K] : [K, N]) : (transB ? [batch, N, K] : [batch, K, N]),
          );
          const got = E.matmul(ta, tb, { transA, transB });
          assert.deepEqual(got.shape, [batch, M, N]);
          const want = R.matmul(a, b, batch, M, N, K, transA, transB, false, shareB);
          assertClose(await got.data(), want, {
            what: `${M}x${N}x${K} batch ${batch}`,
            rtol: 1e-4,
            atol: 1e-4,
          });
          [ta, tb, got].forEach((t) => t.destroy());
        }
      }
    });
  }
}

Deno.test("matmul broadcasts batch dims both ways and reads strided views", async () => {
  const a = R.randn(2 * 1 * 3 * 4, r);
  const b = R.randn(1 * 5 * 4 * 6, r);
  const got = E.matmul(E.tensor(a, [2, 1, 3, 4]), E.tensor(b, [1, 5, 4, 6]));
  assert.deepEqual(got.shape, [2, 5, 3, 6]);
  const out = await got.data();
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 5; j++) {
      const want = R.matmul(a.slice(i * 12, i * 12 + 12), b.slice(j * 24, j * 24 + 24), 1, 3, 6, 4);
      assertClose(out.slice((i * 5 + j) * 18, (i * 5 + j + 1) * 18), want, {
        what: `batch ${i},${j}`,
      });
    }
  }
  // A transposed view as operand is the same as transB.
  const x = R.randn(7 * 5, r);
  const w = R.randn(9 * 5, r);
  const viaView = E.matmul(E.tensor(x, [7, 5]), E.transpose(E.tensor(w, [9, 5])));
  assertClose(await viaView.data(), R.matmul(x, w, 1, 7, 9, 5, false, true), { what: "view" });
});

Deno.test("linear matches x·Wᵀ + b over leading dims", async () => {
  const x = R.randn(2 * 3 * 5, r);
  const w = R.randn(4 * 5, r);
  const b = R.randn(4, r);
  const got = E.linear(E.tensor(x, [2, 3, 5]), E.tensor(w, [4, 5]), E.tensor(b));
  assert.deepEqual(got.shape, [2, 3, 4]);
  const want = R.matmul(x, w, 1, 6, 4, 5, false, true).map((v, i) => v + b[i % 4]);
  assertClose(await got.data(), want, { what: "linear" });
});
