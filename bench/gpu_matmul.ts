/**
 * The hardware-GPU matmul variants side by side in one run, timed with GPU
 * timestamps: `deno run -A bench/gpu_matmul.ts [--json] [--quick]`. Each
 * variant is first checked against float64 on a small product in all four
 * transpose cases; then it is timed at 4096³ and on the products of a
 * Qwen2.5-0.5B linear layer over 4,096 tokens (forward X·Wᵀ, dX = dY·W,
 * dW = dYᵀ·X, for the 896 → 896 and 896 → 4,864 projections), and last
 * the plan's own choice on each, and the chosen tile with f16 operands where
 * the adapter has shader-f16 (f16 storage, f16 compute). Each product runs 0.3 s untimed (the GPU
 * clock ramps up under load), then as many times as fill 0.3 s of GPU time.
 * `--quick` uses sizes a CPU adapter finishes; `--only a,b` times only the named rows (variant
 * names as printed, `plan`, `tiled128`, `f16`), to finish a run a time limit cut short.
 */
import * as E from "../mod.ts";
import { halfTensor, matmulHalf, useMatmulKernel } from "../src/tensor/impl/matmul.ts";
import type { GpuTile } from "../src/tensor/matmul_gpu_plan.ts";
import { matmul as refMatmul } from "../tests/support/reference.ts";
import { gpuTime, warmThenTime } from "./gpu_time.ts";

const gpu = await E.initGpu();
const json = Deno.args.includes("--json");
const quick = Deno.args.includes("--quick");
const adapter = gpu.info.description;
const onlyAt = Deno.args.indexOf("--only");
const only = onlyAt < 0 ? null : new Set(Deno.args[onlyAt + 1].split(","));
const wanted = (label: string) => only === null || only.has(label);

const t = (
  BM: number,
  BN: number,
  BK: number,
  TM: number,
  TN: number,
  prefetch = true,
  swizzle?: number,
) => ({ BM, BN, BK, TM, TN, prefetch, ...(swizzle ? { swizzle } : {}) });
const VARIANTS: GpuTile[] = [
  t(128, 128, 16, 8, 8, false, 8),
  t(128, 128, 16, 8, 8),
  t(128, 128, 16, 8, 8, false),
  t(128, 128, 8, 8, 8),
  t(128, 128, 32, 8, 8),
  t(128, 64, 16, 8, 4),
  t(64, 128, 16, 4, 8),
  t(64, 64, 16, 4, 4),
  t(64, 64, 32, 4, 4),
  t(128, 256, 16, 8, 16),
  t(256, 128, 16, 16, 8),
  t(128, 128, 16, 16, 8),
  t(128, 128, 16, 8, 16),
];

function rand(n: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from(
    { length: n },
    () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5,
  );
}

const name = (v: GpuTile | "plan" | "tiled128") =>
  typeof v === "string"
    ? v
    : `${v.BM}x${v.BN}x${v.BK}_t${v.TM}x${v.TN}${v.prefetch ? "_pf" : ""}${
      v.swizzle ? `_sw${v.swizzle}` : ""
    }`;

function emit(row: Record<string, unknown>) {
  if (json) console.log(JSON.stringify({ adapter, ...row }));
  else console.log(Object.values(row).join("  "));
}

/** Max error against float64, relative to the largest reference value. */
async function check(): Promise<number> {
  const [M, N, K] = quick ? [68, 132, 40] : [260, 388, 516];
  let worst = 0;
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      const a = rand(M * K, 3), b = rand(K * N, 4);
      const got = await E.tidy(() =>
        E.matmul(E.tensor(a, tA ? [K, M] : [M, K]), E.tensor(b, tB ? [N, K] : [K, N]), {
          transA: tA,
          transB: tB,
        })
      ).data();
      const want = refMatmul(a, b, 1, M, N, K, tA, tB);
      let err = 0, scale = 0;
      for (let i = 0; i < want.length; i++) {
        err = Math.max(err, Math.abs(got[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      worst = Math.max(worst, err / scale);
    }
  }
  return worst;
}

type Shape = { label: string; M: number; N: number; K: number; tA: boolean; tB: boolean };
const S = quick ? 256 : 4096;
const T = quick ? 128 : 4096, D = quick ? 64 : 896, F = quick ? 320 : 4864;
const SHAPES: Shape[] = [
  { label: `square ${S}³`, M: S, N: S, K: S, tA: false, tB: false },
  { label: `q/o proj fwd ${T}x${D}x${D}`, M: T, N: D, K: D, tA: false, tB: true },
  { label: `q/o proj dX ${T}x${D}x${D}`, M: T, N: D, K: D, tA: false, tB: false },
  { label: `q/o proj dW ${D}x${D}x${T}`, M: D, N: D, K: T, tA: true, tB: false },
  { label: `mlp up fwd ${T}x${F}x${D}`, M: T, N: F, K: D, tA: false, tB: true },
  { label: `mlp down dX ${T}x${D}x${F}`, M: T, N: D, K: F, tA: false, tB: false },
  { label: `mlp up dW ${F}x${D}x${T}`, M: F, N: D, K: T, tA: true, tB: false },
];

// The GPU clock ramps up under load: each product first runs WARM seconds untimed.
const WARM = quick ? 0 : 0.3, TIMED = quick ? 0 : 0.3;

async function time(s: Shape): Promise<{ ms: number; reps: number }> {
  const a = E.keep(E.tensor(rand(s.M * s.K), s.tA ? [s.K, s.M] : [s.M, s.K]));
  const b = E.keep(E.tensor(rand(s.K * s.N, 2), s.tB ? [s.N, s.K] : [s.K, s.N]));
  const run = () => void E.matmul(a, b, { transA: s.tA, transB: s.tB });
  const t = await warmThenTime(run, WARM, TIMED);
  a.destroy();
  b.destroy();
  return t;
}

for (const v of [...VARIANTS, "tiled128" as const, "plan" as const]) {
  if (!wanted(name(v))) continue;
  useMatmulKernel(v === "plan" ? "gpu" : v === "tiled128" ? "tiled128" : { gpu: v });
  let err: number | string;
  try {
    err = typeof v === "object" ? await check() : "";
  } catch (e) {
    emit({ variant: name(v), error: String(e).split("\n")[0] });
    continue;
  }
  for (const s of SHAPES) {
    try {
      const { ms, reps } = await time(s);
      const gflops = 2 * s.M * s.N * s.K / ms / 1e6;
      emit({
        variant: name(v),
        shape: s.label,
        ms: +ms.toFixed(4),
        reps,
        gflops: +gflops.toFixed(1),
        max_rel_err: typeof err === "number" ? +err.toExponential(2) : null,
      });
    } catch (e) {
      emit({ variant: name(v), shape: s.label, error: String(e).split("\n")[0] });
    }
  }
}
useMatmulKernel("auto");

// f16 operands on the chosen tile (shader-f16): the error is against float64 of the f32 values
// before rounding to f16, relative to the largest output.
if (gpu.info.hasF16 && wanted("f16")) {
  const tile = VARIANTS[2];
  const h = (x: Float32Array) => E.keep(halfTensor(new Uint16Array(new Float16Array(x).buffer)));
  for (const half of ["storage", "compute"] as const) {
    const [M, N, K] = quick ? [68, 132, 40] : [260, 388, 516];
    const a = rand(M * K, 3), b = rand(K * N, 4);
    const [ta, tb] = [h(a), h(b)];
    const got = await matmulHalf(ta, tb, { M, N, K, half, tile }).data();
    [ta, tb].forEach((t) => t.destroy());
    const want = refMatmul(a, b, 1, M, N, K, false, false);
    let err = 0, scale = 0;
    want.forEach((w, i) => {
      err = Math.max(err, Math.abs(got[i] - w));
      scale = Math.max(scale, Math.abs(w));
    });
    for (const s of SHAPES) {
      const ta = h(rand(s.M * s.K)), tb = h(rand(s.K * s.N, 2));
      const run = () =>
        void matmulHalf(ta, tb, { M: s.M, N: s.N, K: s.K, transA: s.tA, transB: s.tB, half, tile });
      E.tidy(run);
      await gpu.recorder.sync();
      await gpuTime(run, WARM);
      const { ms, reps } = await gpuTime(run, TIMED);
      [ta, tb].forEach((t) => t.destroy());
      emit({
        variant: `${name(tile)}_f16${half}`,
        shape: s.label,
        ms: +ms.toFixed(4),
        reps,
        gflops: +(2 * s.M * s.N * s.K / ms / 1e6).toFixed(1),
        max_rel_err: +(err / scale).toExponential(2),
      });
    }
  }
}
