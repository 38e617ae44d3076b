/**
 * Every matmul kernel, not only the one this adapter picks, against float64:
 * the hardware GPU's tiled kernels (64- and 128-wide, with split-K), the
 * reference kernel and every generated blocked variant run here on the CPU
 * adapter too.
 */
import * as E from "../mod.ts";
import { halfTensor, matmulHalf, useMatmulKernel } from "../src/tensor/impl/matmul.ts";
import { laneLayouts, matmulVariants } from "../src/tensor/matmul_plan.ts";
import { GPU_LARGE_TILE, GPU_TILES, planGpuMatmul } from "../src/tensor/matmul_gpu_plan.ts";
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

for (const kind of ["gpu", "tiled", "tiled128", "reference", "blocked"] as const) {
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

// The hardware GPU's vec4 tiles: partial tiles, split-K (a short wide product
// with a long k), exact tiles (the variant without bounds checks), a batch
// with one shared B; every transpose case, with and without prefetch, and
// with the grouped tile order (3 tile rows a group: groups that do not divide
// the tile rows).
Deno.test("every GPU tile matches float64, with and without prefetch", async () => {
  try {
    // The large tile with prefetch needs 48 KiB of workgroup memory, over lavapipe's 32: it runs
    // here without, and its prefetched form is checked against float64 at the head of gpu_matmul.ts.
    for (const base of [...GPU_TILES, { ...GPU_TILES[0], swizzle: 3 }, GPU_LARGE_TILE]) {
      for (const prefetch of base === GPU_LARGE_TILE ? [false] : [true, false]) {
        const tile = { ...base, prefetch };
        useMatmulKernel({ gpu: tile });
        const sizes: [number, number, number, number, boolean][] = [
          [tile.BM + 4, tile.BN + 8, 36, 2, false],
          [8, 12, 1028, 1, false],
          [tile.BM, tile.BN, 2 * tile.BK, 1, false],
          [12, 20, 44, 3, true],
        ];
        for (const [M, N, K, batch, shareB] of sizes) {
          for (const transA of [false, true]) {
            for (const transB of [false, true]) {
              const a = R.randn(batch * M * K, r);
              const b = R.randn((shareB ? 1 : batch) * K * N, r);
              const bShape = transB ? [N, K] : [K, N];
              const got = E.matmul(
                E.tensor(a, transA ? [batch, K, M] : [batch, M, K]),
                E.tensor(b, shareB ? bShape : [batch, ...bShape]),
                { transA, transB },
              );
              const want = R.matmul(a, b, batch, M, N, K, transA, transB, false, shareB);
              assertClose(await got.data(), want, {
                what: `GPU tile ${JSON.stringify(tile)} ${M}x${N}x${K} ${transA} ${transB} ` +
                  `batch ${batch}${shareB ? " shared B" : ""}`,
                rtol: 1e-4,
                atol: 1e-4,
              });
            }
          }
        }
      }
    }
  } finally {
    useMatmulKernel("auto");
  }
});

Deno.test("the GPU plan splits k when tiles are few, and takes exact tiles without bounds checks", () => {
  const limits = { maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupStorageSize: 49152 };
  const d = (M: number, N: number, K: number) => ({ M, N, K, batch: 1, strideA: 0, strideB: 0 });
  const big = planGpuMatmul(d(4096, 4096, 4096), false, false, limits)!;
  if (big.splits !== 1 || !big.variant.aligned || big.variant.BM !== 256) {
    throw new Error(`4096³: ${JSON.stringify(big)}`);
  }
  // 112 tiles of 256 × 128 cannot fill the GPU: the 128 × 128 tile, split over k.
  const qo = planGpuMatmul(d(4096, 896, 896), false, true, limits)!;
  if (qo.variant.BM !== 128 || qo.splits < 1) throw new Error(`q/o: ${JSON.stringify(qo)}`);
  const lavapipe = { ...limits, maxComputeWorkgroupStorageSize: 32768 };
  if (planGpuMatmul(d(4096, 4096, 4096), false, false, lavapipe)!.variant.BM !== 128) {
    throw new Error("the large tile must give way where its workgroup memory is refused");
  }
  const dW = planGpuMatmul(d(256, 256, 4096), true, false, limits)!;
  if (dW.splits < 2 || dW.workgroups[2] !== dW.splits) throw new Error(`dW: ${JSON.stringify(dW)}`);
  if (planGpuMatmul(d(5, 7, 9), false, false, limits) !== null) {
    throw new Error("N % 4 != 0 must fall back to scalar loads");
  }
  const small = { maxComputeInvocationsPerWorkgroup: 128, maxComputeWorkgroupStorageSize: 16384 };
  const v = planGpuMatmul(d(4096, 4096, 4096), false, false, small);
  if (v !== null) throw new Error(`no tile fits 128 threads: got ${JSON.stringify(v.variant)}`);
});

// f16 operands (shader-f16): against float64 on the same f16-rounded inputs, the error measured
// relative to Σ|a·b| per output. Storage widens to f32 (f32 rounding only); compute rounds each
// tile's BK products and their sum to f16.
Deno.test({
  name: "f16-storage and f16-compute GPU tiles match float64 within their rounding",
  ignore: !(await E.initGpu({ quiet: true })).info.hasF16,
  fn: async () => {
    const [M, N, K] = [36, 44, 72];
    for (const half of ["storage", "compute"] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = new Float16Array(R.randn(M * K, r));
          const b = new Float16Array(R.randn(K * N, r));
          const bits = (h: Float16Array) => halfTensor(new Uint16Array(h.buffer));
          const got = await matmulHalf(bits(a), bits(b), {
            M,
            N,
            K,
            transA,
            transB,
            half,
            tile: { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, prefetch: true },
          }).data();
          const want = R.matmul(
            Float64Array.from(a),
            Float64Array.from(b),
            1,
            M,
            N,
            K,
            transA,
            transB,
          );
          const mag = R.matmul(
            Float64Array.from(a, Math.abs),
            Float64Array.from(b, Math.abs),
            1,
            M,
            N,
            K,
            transA,
            transB,
          );
          let worst = 0;
          want.forEach((w, i) => (worst = Math.max(worst, Math.abs(got[i] - w) / mag[i])));
          const bound = half === "storage" ? 1e-6 : 2e-3;
          if (!(worst <= bound)) {
            throw new Error(`f16 ${half} ${transA} ${transB}: error ${worst} > ${bound}`);
          }
        }
      }
    }
  },
});
