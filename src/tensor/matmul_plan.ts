/**
 * Picks the WGSL kernel, override constants, dispatch size and uniform values
 * for C[b] = opA(A[b]) · opB(B[b]) (f32, row-major, batch strides in elements,
 * 0 = broadcast). Kernels live in shaders/matmul/; measurements behind the
 * choices are in docs/matmul-variants.md.
 *
 * Every kernel: workgroup size 8, no barriers, no workgroup memory. Each
 * invocation accumulates an R × 4C block of C in registers; the override
 * constant LN (lanes along n, 1/2/4/8) shapes the workgroup tile as
 * (R·8/LN) × (4C·LN). Register blocks are text-templated into the file
 * (one file per block size); LN, and TRANS_A/TRANS_B in the scalar
 * fallback, are WGSL `override` constants.
 *
 * - `mm_v4_<ta><tb>_r<R>c<C>[_c4].wgsl`: A and B read as vec4 (along k for a
 *   row-major A or a transposed B, along m / n otherwise); `_c4` writes C as
 *   vec4. Needs the alignments checked in `vecOk` below.
 * - `mm_f32_any_r<R>c<C>.wgsl`: scalar loads, any sizes and strides, all four
 *   transpose cases via TRANS_A / TRANS_B.
 */

export interface MatmulPlan {
  /** File name under shaders/matmul/. */
  shader: string;
  /** WGSL override constants. */
  constants: Record<string, number>;
  workgroups: [number, number, number];
  /** u32 values of the Params uniform, in order. */
  params: number[];
}

/** Invocations per workgroup in every matmul kernel. */
export const MATMUL_WORKGROUP_SIZE = 8;

/**
 * CPU threads the software adapter spreads workgroups over; only used to
 * avoid plans with fewer workgroups than threads. llvmpipe uses one thread
 * per core; 2 matches the machines the speeds below were measured on.
 */
const THREADS = 2;

interface Block {
  R: number;
  C: number;
  /** Measured GFLOP/s at 512³ (lavapipe, 2 cores), counting padded work. */
  speed: number;
}

/** Vector kernels with vec4 C stores, for each (transA, transB). */
const VEC_C4: Block[] = [
  { R: 64, C: 8, speed: 38 },
  { R: 32, C: 8, speed: 33 },
  { R: 16, C: 4, speed: 31 },
  { R: 4, C: 4, speed: 14.5 },
  { R: 1, C: 4, speed: 5.5 },
];
/** Vector kernels with scalar C stores: B transposed and N % 4 != 0. */
const VEC_C1: Block[] = [
  { R: 32, C: 8, speed: 30 },
  { R: 4, C: 4, speed: 14.5 },
  { R: 1, C: 4, speed: 5.5 },
];
/** Scalar-load fallback for any sizes and strides. */
const SCALAR: Block[] = [
  { R: 32, C: 8, speed: 21 },
  { R: 4, C: 4, speed: 9 },
];

function vecName(tA: boolean, tB: boolean, b: Block, c4: boolean): string {
  return `mm_v4_${tA ? "t" : "n"}${tB ? "t" : "n"}_r${b.R}c${b.C}${c4 ? "_c4" : ""}.wgsl`;
}
function scalarName(b: Block): string {
  return `mm_f32_any_r${b.R}c${b.C}.wgsl`;
}

/** Whether a vec4 kernel exists for this block and transpose case. */
function blockFits(b: Block, tA: boolean): boolean {
  // A transposed is read as vec4 along m: 4 rows at a time.
  return !tA || b.R % 4 === 0;
}

/** Every shader file that `planMatmul` can return. */
export function matmulShaderFiles(): string[] {
  const out: string[] = [];
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      for (const b of VEC_C4) if (blockFits(b, tA)) out.push(vecName(tA, tB, b, true));
      if (tB) { for (const b of VEC_C1) if (blockFits(b, tA)) out.push(vecName(tA, tB, b, false)); }
    }
  }
  for (const b of SCALAR) out.push(scalarName(b));
  return out;
}

const MAX_GROUPS = 65535;

export function planMatmul(
  M: number,
  N: number,
  K: number,
  batch: number,
  transA: boolean,
  transB: boolean,
  strideA: number,
  strideB: number,
  strideC: number,
): MatmulPlan {
  for (const [name, v] of [["M", M], ["N", N], ["K", K], ["batch", batch]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`planMatmul: ${name} must be >= 1, got ${v}`);
    }
  }
  if (batch === 1) {
    // Strides are never used for a single matrix; don't let them block vec4 paths.
    strideA = 0;
    strideB = 0;
    strideC = 0;
  } else if (strideB === 0 && !transA && strideA === M * K && strideC === M * N) {
    // One B shared by a contiguous stack of row-major A: a single (batch·M) × N product.
    M *= batch;
    batch = 1;
    strideA = 0;
    strideC = 0;
  }
  if (batch > MAX_GROUPS) {
    throw new Error(`planMatmul: batch ${batch} exceeds ${MAX_GROUPS}; split the call`);
  }
  const lastA = strideA * (batch - 1) + M * K;
  const lastB = strideB * (batch - 1) + K * N;
  const lastC = strideC * (batch - 1) + M * N;
  if (Math.max(lastA, lastB, lastC) > 2 ** 32 - 16) {
    throw new Error("planMatmul: element indices exceed u32");
  }

  const aligned = (s: number) => s % 4 === 0;
  const vecOk = (transA ? M % 4 === 0 : K % 4 === 0) &&
    (transB ? K % 4 === 0 : N % 4 === 0) && aligned(strideA) && aligned(strideB);
  const c4Ok = N % 4 === 0 && aligned(strideC);

  let candidates: { shader: string; block: Block; scalar: boolean }[];
  if (vecOk && c4Ok) {
    candidates = VEC_C4.filter((b) => blockFits(b, transA)).map((b) => ({
      shader: vecName(transA, transB, b, true),
      block: b,
      scalar: false,
    }));
  } else if (vecOk && transB) {
    candidates = VEC_C1.filter((b) => blockFits(b, transA)).map((b) => ({
      shader: vecName(transA, transB, b, false),
      block: b,
      scalar: false,
    }));
  } else {
    candidates = SCALAR.map((b) => ({ shader: scalarName(b), block: b, scalar: true }));
  }

  let best: { cost: number; plan: MatmulPlan } | null = null;
  for (const cand of candidates) {
    const { R, C, speed } = cand.block;
    for (const LN of [8, 4, 2, 1]) {
      const tileM = R * (MATMUL_WORKGROUP_SIZE / LN);
      const tileN = 4 * C * LN;
      const gx = Math.ceil(N / tileN);
      const gy = Math.ceil(M / tileM);
      if (gx > MAX_GROUPS || gy > MAX_GROUPS) continue;
      const groups = gx * gy * batch;
      // Padded work at the block's speed, stretched when there are fewer
      // groups than threads or they don't split evenly over the threads.
      const balance = (Math.ceil(groups / THREADS) * THREADS) / groups;
      const cost = (gx * tileN * gy * tileM * K * batch / speed) * balance;
      if (best && cost >= best.cost * 0.999) continue;
      const constants: Record<string, number> = { LN };
      if (cand.scalar) {
        constants.TRANS_A = transA ? 1 : 0;
        constants.TRANS_B = transB ? 1 : 0;
      }
      best = {
        cost,
        plan: {
          shader: cand.shader,
          constants,
          workgroups: [gx, gy, batch],
          params: [M, N, K, batch, strideA, strideB, strideC, 0],
        },
      };
    }
  }
  if (!best) throw new Error(`planMatmul: ${M}×${N} needs more than ${MAX_GROUPS} workgroups`);
  return best.plan;
}
