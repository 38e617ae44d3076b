/**
 * Picks the hardware-GPU matmul variant (matmul_gpu_wgsl.ts), its split-K
 * factor and dispatch for C[b] = opA(A[b]) · opB(B[b]). The tile list is in
 * order of measured speed (docs/gpu-matmul.md): the plan takes the first tile
 * the adapter's limits allow, and splits k when its tiles leave the GPU idle.
 */
import {
  gpuMatmulFits,
  type GpuMatmulVariant,
  gpuSharedBytes,
  gpuThreads,
} from "./matmul_gpu_wgsl.ts";

export type GpuTile =
  & Pick<GpuMatmulVariant, "BM" | "BN" | "BK" | "TM" | "TN" | "prefetch">
  & Pick<GpuMatmulVariant, "swizzle">;

/**
 * Fastest first. On an H200 (2026-11-30, clock warmed) the 128 × 128 tile in grouped order ran the
 * 896-wide products of a 0.5B model at 25–28 TFLOP/s; the 64 × 64 tile is for adapters whose
 * limits refuse it.
 */
export const GPU_TILES: GpuTile[] = [
  { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, prefetch: false, swizzle: 8 },
  { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, prefetch: true },
];

/**
 * Taken before GPU_TILES when its tiles alone fill the GPU: on the H200 it ran 4096³ at 36 TFLOP/s
 * and the 4,864-wide MLP product at 32, against 31 and 29 for 128 × 128.
 */
export const GPU_LARGE_TILE: GpuTile = { BM: 256, BN: 128, BK: 16, TM: 16, TN: 8, prefetch: true };

/** Workgroups that keep a large GPU busy (2 per SM on a 132-SM H100/H200); fewer get split-K. */
export const GPU_FILL = 264;

export interface GpuMatmulPlan {
  variant: GpuMatmulVariant;
  workgroups: [number, number, number];
  /** k split over this many partial products (1: none). */
  splits: number;
  params: number[];
}

export interface GpuLimits {
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupStorageSize: number;
}

/**
 * The plan, or null when no variant takes these sizes (N, or the vec4 axis of
 * an operand, not a multiple of 4): the caller falls back to scalar loads.
 */
export function planGpuMatmul(
  d: { M: number; N: number; K: number; batch: number; strideA: number; strideB: number },
  tA: boolean,
  tB: boolean,
  limits: GpuLimits,
  force?: GpuTile,
): GpuMatmulPlan | null {
  const { M, N, K, batch } = d;
  const tiles = (t: GpuTile) => Math.ceil(M / t.BM) * Math.ceil(N / t.BN) * batch;
  const large = force ? [] : [GPU_LARGE_TILE].filter((t) => tiles(t) >= GPU_FILL);
  const usable = [...large, ...(force ? [force] : GPU_TILES)]
    .map((t) => ({ ...t, tA, tB, aligned: false }))
    .filter((v) =>
      gpuThreads(v) <= limits.maxComputeInvocationsPerWorkgroup &&
      gpuSharedBytes(v) <= limits.maxComputeWorkgroupStorageSize && gpuMatmulFits(v, d)
    );
  if (usable.length === 0) return null;
  const v = usable[0];
  const n = tiles(v);
  let splits = Math.max(
    1,
    Math.min(Math.floor(GPU_FILL / n), Math.floor(K / 256), Math.floor(65535 / batch)),
  );
  let kChunk = Math.ceil(K / splits / v.BK) * v.BK;
  splits = Math.ceil(K / kChunk);
  if (splits === 1) kChunk = K;
  const aligned = M % v.BM === 0 && N % v.BN === 0 && K % v.BK === 0 && K % kChunk === 0 &&
    kChunk % v.BK === 0;
  return {
    variant: { ...v, aligned },
    workgroups: [Math.ceil(N / v.BN), Math.ceil(M / v.BM), batch * splits],
    splits,
    params: [M, N, K, batch, d.strideA, d.strideB, M * N, splits, kChunk],
  };
}
