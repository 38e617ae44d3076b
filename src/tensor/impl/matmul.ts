/** Batched matmul with either operand transposed; batch dims broadcast. */
import { contiguousCopy, expectDtype, fail, grid as grid1, launch } from "../launch.ts";
import { numel, Tensor } from "../tensor.ts";
import { planMatmul } from "../matmul_plan.ts";
import { matmulKernelSpec, type MatmulVariant } from "../matmul_wgsl.ts";
import { type GpuTile, planGpuMatmul } from "../matmul_gpu_plan.ts";
import { gpuMatmulSpec } from "../matmul_gpu_wgsl.ts";
import { fitsLoopBudget, kernelChoice } from "../kernel_choice.ts";
import { binary } from "./elementwise.ts";
import { slice } from "./views.ts";
import { tensor } from "../tensor.ts";
import { OpError } from "../../errors.ts";
import { gpu } from "../../gpu/mod.ts";

/**
 * Which kernels run matmuls. "auto": the adapter kind's (kernel_choice.ts).
 * "blocked": the barrier-free register-blocked ones chosen by planMatmul (the
 * CPU adapter's). "gpu": the generated vec4 workgroup-tiled ones chosen by
 * planGpuMatmul (a hardware GPU's), "tiled"/"tiled128": the scalar-load tiled
 * kernel they fall back to. "reference": one output per invocation, for
 * tests. `{ variant, LN }`: that blocked kernel; `{ gpu: tile }`: that GPU
 * tile (tests and benches; it must fit the product).
 */
let matmulKernel:
  | "auto"
  | "blocked"
  | "gpu"
  | "tiled"
  | "tiled128"
  | "reference"
  | { variant: MatmulVariant; LN: number }
  | { gpu: GpuTile } = "auto";
export function useMatmulKernel(k: typeof matmulKernel): void {
  matmulKernel = k;
}

/**
 * a: [..., M, K] (or [..., K, M] if transA); b: [..., K, N] (or [..., N, K]
 * if transB). Batch dims follow numpy broadcasting.
 */
export function matmul(
  [a, b]: Tensor[],
  { transA, transB }: { transA: boolean; transB: boolean },
): Tensor {
  const op = "matmul";
  expectDtype(op, a, "f32", "a");
  expectDtype(op, b, "f32", "b");
  if (a.ndim < 2 || b.ndim < 2) fail(op, "operands need at least 2 dims", a, b);
  const [M, K] = transA
    ? [a.shape[a.ndim - 1], a.shape[a.ndim - 2]]
    : [a.shape[a.ndim - 2], a.shape[a.ndim - 1]];
  const [K2, N] = transB
    ? [b.shape[b.ndim - 1], b.shape[b.ndim - 2]]
    : [b.shape[b.ndim - 2], b.shape[b.ndim - 1]];
  if (K !== K2) {
    fail(
      op,
      `inner dimensions differ (${K} vs ${K2}${transA ? ", a transposed" : ""}${
        transB ? ", b transposed" : ""
      })`,
      a,
      b,
    );
  }
  const forced = typeof matmulKernel === "object" && "variant" in matmulKernel
    ? matmulKernel
    : undefined;
  const forcedTile = typeof matmulKernel === "object" && "gpu" in matmulKernel
    ? matmulKernel.gpu
    : undefined;
  const kind = forced
    ? "blocked"
    : forcedTile
    ? "gpu"
    : matmulKernel === "auto"
    ? kernelChoice().matmul
    : matmulKernel;
  // The blocked kernels' k loop steps by 4 (plus a tail), the reference kernel's by 1.
  const kSteps = kind === "reference" ? K : kind === "blocked" ? Math.ceil(K / 4) + 4 : 0;
  if (!fitsLoopBudget(kSteps)) {
    return splitK(a, b, K, transA, transB);
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batchShape = broadcastBatch(op, a, b, batchA, batchB);
  const batch = numel(batchShape);
  const out = Tensor.empty([...batchShape, M, N]);
  if (out.size === 0) return out;

  const temps: Tensor[] = [];
  const operand = (
    t: Tensor,
    tb: readonly number[],
    rows: number,
    cols: number,
  ): [Tensor, number] => {
    // A dense operand with one matrix per batch entry, or one shared matrix.
    const shared = numel(tb) === 1;
    let d = t;
    if (!shared && !sameDims(tb, batchShape)) {
      d = t.view([...batchShape, rows, cols], [
        ...expandStrides(t, tb, batchShape),
        t.strides[t.ndim - 2],
        t.strides[t.ndim - 1],
      ], t.offset);
      temps.push(d);
    }
    const stride = batchStride(d, rows, cols);
    if (stride !== null) return [d, shared ? 0 : stride];
    d = contiguousCopy(d);
    temps.push(d);
    return [d, shared ? 0 : rows * cols];
  };
  const [ad, strideA] = operand(a, batchA, a.shape[a.ndim - 2], a.shape[a.ndim - 1]);
  const [bd, strideB] = operand(b, batchB, b.shape[b.ndim - 2], b.shape[b.ndim - 1]);
  // The vec4 GPU tiles take N and the operands' vec4 axes in multiples of 4; else scalar tiles.
  const gpuPlan = kind === "gpu"
    ? planGpuMatmul({ M, N, K, batch, strideA, strideB }, transA, transB, gpuLimits(), forcedTile)
    : null;
  if (kind === "gpu" && !gpuPlan && forcedTile) {
    fail(op, `GPU tile ${JSON.stringify(forcedTile)} does not fit ${M}×${N}×${K}`, a, b);
  }
  if (gpuPlan) {
    withSplits(gpuPlan.splits, batch * M * N, (c) => {
      launch(gpuMatmulSpec(gpuPlan.variant), [ad, bd, c], gpuPlan.params, gpuPlan.workgroups);
    }, out);
  } else if (kind === "gpu" || kind === "tiled" || kind === "tiled128") {
    tiled(
      ad,
      bd,
      out,
      M,
      N,
      K,
      batch,
      transA,
      transB,
      strideA,
      strideB,
      kind === "tiled128" ? 128 : 64,
    );
  } else if (kind === "blocked") {
    const plan = planMatmul(M, N, K, batch, transA, transB, strideA, strideB, M * N, forced);
    launch(
      matmulKernelSpec(plan.variant, plan.constants),
      [ad, bd, out],
      plan.params,
      plan.workgroups,
    );
  } else {
    const params = [M, N, K, batch, strideA, strideB, M * N, transA ? 1 : 0, transB ? 1 : 0];
    launch({ shader: "matmul_reference.wgsl" }, [ad, bd, out], params, [
      Math.ceil(N / 8),
      Math.ceil(M / 8),
      batch,
    ]);
  }
  for (const t of temps) t.destroy();
  return out;
}

/**
 * K each product of splitK takes: the blocked and reference kernels loop over K in one
 * invocation (by 4, or by 1 in the tail), and llvmpipe stops an invocation's loops after 65,535
 * steps (kernel_choice.ts).
 */
const K_CHUNK = 32_768;

/** a·b as a sum of products over chunks of K, for a K too long for one invocation's loops. */
function splitK(a: Tensor, b: Tensor, K: number, transA: boolean, transB: boolean): Tensor {
  const kSlice = (t: Tensor, axis: number, k0: number, k1: number) =>
    slice([t], {
      starts: t.shape.map((_, i) => (i === axis ? k0 : 0)),
      ends: t.shape.map((d, i) => (i === axis ? k1 : d)),
    });
  let sum: Tensor | null = null;
  for (let k0 = 0; k0 < K; k0 += K_CHUNK) {
    const k1 = Math.min(K, k0 + K_CHUNK);
    const as = kSlice(a, transA ? a.ndim - 2 : a.ndim - 1, k0, k1);
    const bs = kSlice(b, transB ? b.ndim - 1 : b.ndim - 2, k0, k1);
    const part = matmul([as, bs], { transA, transB });
    if (sum === null) {
      sum = part;
      continue;
    }
    const next: Tensor = binary("add")([sum, part]);
    sum.destroy();
    part.destroy();
    sum = next;
  }
  return sum!;
}

/** The adapter limits that bound a GPU tile (WebGPU's defaults where it reports none). */
function gpuLimits() {
  const limits = gpu().info.adapterLimits;
  return {
    maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup ?? 256,
    maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize ?? 16384,
  };
}

/**
 * Workgroups that keep a large GPU busy in the scalar tiled kernel, fewer of
 * which get split-K (its own figure: the vec4 tiles use matmul_gpu_plan.ts's).
 */
const SCALAR_TILED_FILL = 512;

function tiled(
  a: Tensor,
  b: Tensor,
  out: Tensor,
  M: number,
  N: number,
  K: number,
  batch: number,
  transA: boolean,
  transB: boolean,
  strideA: number,
  strideB: number,
  tile: 64 | 128,
) {
  const tiles = Math.ceil(N / tile) * Math.ceil(M / tile) * batch;
  const splits = Math.max(
    1,
    Math.min(Math.floor(SCALAR_TILED_FILL / tiles), Math.floor(K / 256), Math.floor(65535 / batch)),
  );
  const kChunk = Math.ceil(K / splits / 16) * 16;
  const spec = {
    shader: "matmul_tiled.wgsl",
    defines: tile === 64 ? { TILE: 64, BK: 16, PER: 4 } : { TILE: 128, BK: 8, PER: 8 },
    constants: { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0 },
  };
  const grid: [number, number, number] = [Math.ceil(N / tile), Math.ceil(M / tile), batch * splits];
  const params = [M, N, K, batch, strideA, strideB, M * N, splits, kChunk];
  withSplits(splits, batch * M * N, (c) => launch(spec, [a, b, c], params, grid), out);
}

/**
 * Runs `product` into `out`, or, with split-K, into `splits` partial
 * products that are then summed into `out`.
 */
function withSplits(splits: number, size: number, product: (c: Tensor) => void, out: Tensor) {
  if (splits === 1) return product(out);
  const partial = Tensor.empty([splits, size]);
  product(partial);
  const wg = 64;
  launch(
    { shader: "reduce.wgsl", defines: { MAX: "false", ROWS: "invocation" }, constants: { WG: wg } },
    [partial, out],
    [1, splits, size, splits],
    grid1(size, wg),
  );
  partial.destroy();
}

/**
 * The element stride between consecutive matrices when `t` is a stack of
 * dense row-major matrices starting at element 0 (a KV cache narrowed along
 * its sequence axis is one), else null.
 */
function batchStride(t: Tensor, rows: number, cols: number): number | null {
  const n = t.ndim;
  if (t.offset !== 0) return null;
  if ((cols > 1 && t.strides[n - 1] !== 1) || (rows > 1 && t.strides[n - 2] !== cols)) return null;
  let stride = rows * cols;
  let expected = -1;
  for (let i = n - 3; i >= 0; i--) {
    if (t.shape[i] === 1) continue;
    if (expected === -1) stride = t.strides[i];
    else if (t.strides[i] !== expected) return null;
    expected = t.strides[i] * t.shape[i];
  }
  return stride;
}

function sameDims(a: readonly number[], b: readonly number[]) {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function broadcastBatch(
  op: string,
  a: Tensor,
  b: Tensor,
  ba: readonly number[],
  bb: readonly number[],
): number[] {
  const rank = Math.max(ba.length, bb.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = ba[ba.length - rank + i] ?? 1;
    const y = bb[bb.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) fail(op, "batch dims cannot be broadcast", a, b);
    out.push(Math.max(x, y));
  }
  return out;
}

function expandStrides(t: Tensor, tb: readonly number[], batchShape: readonly number[]): number[] {
  const lead = batchShape.length - tb.length;
  return batchShape.map((d, i) => (i < lead || tb[i - lead] !== d ? 0 : t.strides[i - lead]));
}

/** f16 values (their bits) packed two to an i32 word, as `matmulHalf` reads them. */
export function halfTensor(bits: Uint16Array): Tensor {
  const padded = new Uint16Array(bits.length + (bits.length % 2));
  padded.set(bits);
  return tensor(new Int32Array(padded.buffer), [padded.length / 2], "i32");
}

/**
 * C = opA(A) · opB(B) in f32 from A and B stored as f16 (`halfTensor`: the
 * engine's tensors are f32 or i32), on a hardware-GPU tile in f16 storage or
 * f16 compute. For benches and tests of the f16 kernels; needs the adapter's
 * shader-f16.
 */
export function matmulHalf(
  a: Tensor,
  b: Tensor,
  { M, N, K, transA = false, transB = false, half, tile }: {
    M: number;
    N: number;
    K: number;
    transA?: boolean;
    transB?: boolean;
    half: "storage" | "compute";
    tile?: GpuTile;
  },
): Tensor {
  const op = "matmulHalf";
  if (!gpu().info.hasF16) throw new OpError(`${op}: this adapter has no shader-f16`);
  if (2 * a.size < M * K || 2 * b.size < K * N) {
    throw new OpError(
      `${op}: A and B hold ${2 * a.size} and ${2 * b.size} halves; want ${M * K} and ${K * N}`,
    );
  }
  const dims = { M, N, K, batch: 1, strideA: 0, strideB: 0 };
  const plan = planGpuMatmul(dims, transA, transB, gpuLimits(), tile);
  if (!plan) {
    throw new OpError(
      `${op}: no GPU tile takes ${M}×${N}×${K} (N and the k axes need multiples of 4)`,
    );
  }
  const out = Tensor.empty([M, N]);
  withSplits(plan.splits, M * N, (c) => {
    launch(gpuMatmulSpec({ ...plan.variant, half }), [a, b, c], plan.params, plan.workgroups);
  }, out);
  return out;
}
