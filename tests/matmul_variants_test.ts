/**
 * Every matmul kernel, not only the one this adapter picks, against float64:
 * the hardware GPU's tiled kernels (64- and 128-wide, with split-K) and the
 * reference kernel run here on the CPU adapter too.
 */
import * as E from "../mod.ts";
import { useMatmulKernel } from "../src/tensor/impl/matmul.ts";
import * as R from "./support/reference.ts";
import { assertClose } from "./support/assert.ts";
import "./support/gpu.ts";

const r = R.rng(5);
const SIZES: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [65, 129, 33], [130, 3, 17], [
  7,
  9,
  1100,
]];

for (const kind of ["tiled", "tiled128", "reference", "blocked"] as const) {
  Deno.test(`matmul kernel "${kind}" matches float64 for every transpose, odd sizes and tall K`, async () => {
    useMatmulKernel(kind);
    try {
      for (const [M, N, K] of SIZES) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const a = R.randn(2 * M * K, r);
            const b = R.randn(2 * K * N, r);
            const got = E.matmul(
              E.tensor(a, transA ? [2, K, M] : [2, M, K]),
              E.tensor(b, transB ? [2, N, K] : [2, K, N]),
              { transA, transB },
            );
            const want = R.matmul(a, b, 2, M, N, K, transA, transB);
            assertClose(await got.data(), want, {
              what: `${kind} ${M}x${N}x${K} ${transA} ${transB}`,
              rtol: 1e-4,
              atol: 1e-4,
            });
          }
        }
      }
    } finally {
      useMatmulKernel("auto");
    }
  });
}
