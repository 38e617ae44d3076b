/**
 * Every matmul kernel, not only the one this adapter picks, against float64:
 * the hardware GPU's tiled kernels (64- and 128-wide, with split-K), the
 * reference kernel and every generated blocked variant run here on the CPU
 * adapter too.
 */
import * as E from "../mod.ts";
import { useMatmulKernel } from "../src/tensor/impl/matmul.ts";
import { laneLayouts, matmulVariants } from "../src/tensor/matmul_plan.ts";
import { type MatmulVariant, matmulVariantName } from "../src/tensor/matmul_wgsl.ts";
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

/** Sizes a variant accepts, with partial tiles, clamped loads and (scalar loads) a k tail. */
function sizesFor(v: MatmulVariant): [number, number, number] {
  const M = v.vec && v.tA === true ? v.R + 4 : v.R + 3;
  const N = v.cVec || (v.vec && !v.tB) ? 4 * v.C + 4 : 4 * v.C + 3;
  const K = v.vec ? 5 * v.KU : 4 * v.KU + 3;
  return [M, N, K];
}

// Compiling a large variant on lavapipe takes seconds (15-25 s for 64×32 blocks without Mesa's
// shader cache), so each variant runs at one lane layout, the layouts taken in turn.
Deno.test("every blocked variant the plan can pick matches float64", async () => {
  try {
    for (const [i, variant] of matmulVariants().entries()) {
      const lanes = laneLayouts(variant.wg);
      const [M, N, K] = sizesFor(variant);
      const cases = variant.tA === "override"
        ? [[false, false], [false, true], [true, false], [true, true]]
        : [[variant.tA, variant.tB as boolean]];
      for (const [j, [transA, transB]] of cases.entries()) {
        const LN = lanes[(i + j) % lanes.length];
        useMatmulKernel({ variant, LN });
        // Own B per batch entry, and one B shared by the batch (folded into M when A is not transposed).
        for (const [batch, shareB] of [[2, false], [3, true]] as const) {
          const a = R.randn(batch * M * K, r);
          const b = R.randn((shareB ? 1 : batch) * K * N, r);
          const bShape = transB ? [N, K] : [K, N];
          const ta = E.tensor(a, transA ? [batch, K, M] : [batch, M, K]);
          const tb = E.tensor(b, shareB ? bShape : [batch, ...bShape]);
          const got = E.matmul(ta, tb, { transA, transB });
          const want = R.matmul(a, b, batch, M, N, K, transA, transB, false, shareB);
          assertClose(await got.data(), want, {
            what: `${matmulVariantName(variant)} LN ${LN} ${M}x${N}x${K} ${transA} ${transB} ` +
              `batch ${batch}${shareB ? " shared B" : ""}`,
            rtol: 1e-4,
            atol: 1e-4,
          });
          [ta, tb, got].forEach((t) => t.destroy());
        }
      }
    }
  } finally {
    useMatmulKernel("auto");
  }
});
