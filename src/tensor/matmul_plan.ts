/**
 * Picks the matmul kernel variant, override constants, dispatch size and
 * uniform values for C[b] = opA(A[b]) · opB(B[b]) (f32, row-major, batch
 * strides in elements, 0 = broadcast). The WGSL of each variant is generated
 * by `matmulWgsl` (matmul_wgsl.ts) when its pipeline is first created;
 * measurements behind the choices are in docs/matmul-variants.md.
 *
 * Every kernel: workgroup size MATMUL_WORKGROUP_SIZE, no barriers, no
 * workgroup memory. Each invocation accumulates an R × 4C block of C in
 * registers; the override constant LN (lanes along n, a divisor of the
 * workgroup size) shapes the workgroup tile as (R·wg/LN) × (4C·LN). Register
 * blocks are text-templated (one variant per block size); LN, and
 * TRANS_A/TRANS_B in the scalar fallback, are WGSL `override` constants.
 *
 * - `mm_v4_<ta><tb>_r<R>c<C>[_c4]`: A and B read as vec4 (along k for a
 *   row-major A or a transposed B, along m / n otherwise); `_c4` writes C as
 *   vec4. Needs the alignments of `matmulRequirements`.
 * - `mm_f32_any_r<R>c<C>`: scalar loads, any sizes and strides, all four
 *   transpose cases via TRANS_A / TRANS_B.
 */
import { type MatmulDims, matmulFits, type MatmulVariant, matmulVariant } from "./matmul_wgsl.ts";

export interface MatmulPlan {
  /** The kernel variant; its WGSL is `matmulWgsl(variant)`. */
  variant: MatmulVariant;
  /** WGSL override constants. */
  constants: Record<string, number>;
  workgroups: [number, number, number];
  /** u32 values of the Params uniform, in order. */
  params: number[];
}

/**
 * Invocations per workgroup in every matmul kernel: the generated WGSL and
 * the dispatch both take it from the variant, which takes it from here.
 */
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

interface Candidate {
  variant: MatmulVariant;
  speed: number;
}

/**
 * The variant families for one transpose case, in order of preference: vec4
 * loads and stores, vec4 loads (B transposed only), scalar. The plan takes the
 * first family whose requirements the product meets.
 */
function families(tA: boolean, tB: boolean): Candidate[][] {
  const wg = MATMUL_WORKGROUP_SIZE;
  // A transposed is read as vec4 along m: 4 rows at a time.
  const vec = (blocks: Block[], cVec: boolean) =>
    blocks.filter((b) => !tA || b.R % 4 === 0).map((b) => ({
      variant: matmulVariant({ wg, R: b.R, C: b.C, tA, tB, vec: true, cVec }),
      speed: b.speed,
    }));
  const scalar = SCALAR.map((b) => ({
    variant: matmulVariant({
      wg,
      R: b.R,
      C: b.C,
      tA: "override",
      tB: "override",
      vec: false,
      cVec: false,
    }),
    speed: b.speed,
  }));
  return [vec(VEC_C4, true), tB ? vec(VEC_C1, false) : [], scalar];
}

const FAMILIES = new Map<string, Candidate[][]>();
for (const tA of [false, true]) {
  for (const tB of [false, true]) FAMILIES.set(`${tA}${tB}`, families(tA, tB));
}

/** Every variant that `planMatmul` can return (the scalar ones once). */
export function matmulVariants(): MatmulVariant[] {
  const out = new Map<string, MatmulVariant>();
  for (const fams of FAMILIES.values()) {
    for (const c of fams.flat()) out.set(JSON.stringify(c.variant), c.variant);
  }
  return [...out.values()];
}

/** The lane layouts LN a workgroup of `wg` allows, widest first. */
export function laneLayouts(wg: number): number[] {
  const out: number[] = [];
  for (let LN = wg; LN >= 1; LN--) if (wg % LN === 0) out.push(LN);
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
  /** Use this variant and lane layout (tests); it must fit the product. */
  force?: { variant: MatmulVariant; LN: number },
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

  const dims: MatmulDims = { M, N, K, strideA, strideB, strideC };
  let candidates: Candidate[];
  let lanes: (v: MatmulVariant) => number[] = (v) => laneLayouts(v.wg);
  if (force) {
    const { variant: v, LN } = force;
    const name = JSON.stringify(v);
    if (v.tA !== "override" && (v.tA !== transA || v.tB !== transB)) {
      throw new Error(`planMatmul: ${name} is not for transA=${transA} transB=${transB}`);
    }
    if (!matmulFits(v, dims)) throw new Error(`planMatmul: ${name} does not fit ${M}×${N}×${K}`);
    if (v.wg % LN !== 0) throw new Error(`planMatmul: LN ${LN} does not divide ${v.wg}`);
    candidates = [{ variant: v, speed: 1 }];
    lanes = () => [LN];
  } else {
    candidates = FAMILIES.get(`${transA}${transB}`)!
      .map((f) => f.filter((c) => matmulFits(c.variant, dims)))
      .find((f) => f.length > 0)!;
  }

  let best: { cost: number; plan: MatmulPlan } | null = null;
  for (const { variant, speed } of candidates) {
    const { R, C, wg } = variant;
    for (const LN of lanes(variant)) {
      const tileM = R * (wg / LN);
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
      if (variant.tA === "override") {
        constants.TRANS_A = transA ? 1 : 0;
        constants.TRANS_B = transB ? 1 : 0;
      }
      best = {
        cost,
        plan: {
          variant,
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
