/**
 * WGSL for the hardware-GPU matmul kernels, generated from a `GpuMatmulVariant`
 * when its pipeline is first created (the pipeline cache keys on the variant).
 * `planGpuMatmul` (matmul_gpu_plan.ts) picks the variant; the measurements
 * behind the choice are in docs/gpu-matmul.md.
 *
 * Layout: a workgroup computes a BM × BN tile of C with (BM/TM)·(BN/TN)
 * threads, staging A and B through workgroup memory BK deep in k. Both tiles
 * are stored k-major as vec4 (As[k][m/4], Bs[k][n/4]), so the inner loop
 * reads TM/4 + TN/4 vec4 per k and does TM·TN/4 vec4 FMAs. A thread (ty, tx)
 * owns rows 4·(ty + i·BM/TM) + r and columns 4·(tx + j·BN/TN) + q: strided
 * vec4 groups, so neighbouring threads read neighbouring vec4 of workgroup
 * memory (no bank conflicts) and write neighbouring vec4 of C (coalesced).
 * Global loads are vec4 along each operand's contiguous axis; an operand whose
 * contiguous axis is k is transposed into the k-major tile on the way in.
 * With `prefetch`, two tile buffers alternate and the next tile's global
 * loads are issued before this tile's FMAs: one barrier per tile.
 * With splits > 1, workgroup z = batch · splits + split sums k in
 * [split·kChunk, (split+1)·kChunk) into its own partial C (split-K).
 */
import type { Defines, KernelSpec } from "../gpu/mod.ts";

/** Everything that shapes one generated GPU matmul kernel. */
export type GpuMatmulVariant = {
  /** Tile of C per workgroup. */
  BM: number;
  BN: number;
  /** k depth of a staged tile. */
  BK: number;
  /** Outputs per thread along m and n (multiples of 4). */
  TM: number;
  TN: number;
  /** A stored K × M. */
  tA: boolean;
  /** B stored N × K. */
  tB: boolean;
  /** M % BM == N % BN == kChunk % BK == 0: no bounds checks. */
  aligned: boolean;
  /** Two tile buffers; the next tile's loads are issued before this tile's FMAs. */
  prefetch: boolean;
  /**
   * A and B stored as f16 (needs shader-f16). "storage": widened to f32 as
   * they are loaded, f32 FMAs. "compute": f16 tiles and f16 FMAs, each tile's
   * BK products summed in f16 and then added to the f32 accumulators (the
   * f16 rounding covers BK terms, not all of k). Absent: f32.
   */
  half?: "storage" | "compute";
  /**
   * Workgroups walk the tiles in groups of this many tile rows, column by
   * column inside a group (Triton's grouped ordering), so that the tiles in
   * flight share A's and B's panels in L2. Absent: row by row.
   */
  swizzle?: number;
};

/** Threads per workgroup. */
export function gpuThreads(v: GpuMatmulVariant): number {
  return (v.BM / v.TM) * (v.BN / v.TN);
}

/** Bytes of workgroup memory. */
export function gpuSharedBytes(v: GpuMatmulVariant): number {
  return (v.prefetch ? 2 : 1) * (v.BM + v.BN) * v.BK * (v.half === "compute" ? 2 : 4);
}

export function gpuMatmulName(v: GpuMatmulVariant): string {
  return `mmg_${v.tA ? "t" : "n"}${v.tB ? "t" : "n"}_${v.BM}x${v.BN}x${v.BK}_t${v.TM}x${v.TN}${
    v.aligned ? "_al" : ""
  }${v.prefetch ? "_pf" : ""}${v.half ? `_h16${v.half[0]}` : ""}${
    v.swizzle ? `_sw${v.swizzle}` : ""
  }`;
}

/** The sizes a variant can take: vec4 global loads and vec4 C stores. */
export function gpuMatmulFits(
  v: GpuMatmulVariant,
  d: { M: number; N: number; K: number; strideA: number; strideB: number },
): boolean {
  const vec = d.N % 4 === 0 && d.strideA % 4 === 0 && d.strideB % 4 === 0 &&
    (v.tA ? d.M % 4 === 0 : d.K % 4 === 0) && (!v.tB || d.K % 4 === 0);
  if (!vec) return false;
  return !v.aligned || (d.M % v.BM === 0 && d.N % v.BN === 0 && d.K % v.BK === 0);
}

export function gpuMatmulSpec(v: GpuMatmulVariant): Omit<KernelSpec, "bindings"> {
  return {
    shader: gpuMatmulName(v),
    defines: v,
    generate: (d: Defines) => gpuMatmulWgsl(d as GpuMatmulVariant),
  };
}

function check(v: GpuMatmulVariant) {
  const { BM, BN, BK, TM, TN } = v;
  const bad = (why: string) => {
    throw new Error(`gpuMatmulWgsl ${gpuMatmulName(v)}: ${why}`);
  };
  if (TM % 4 || TN % 4) bad("TM and TN must be multiples of 4");
  if (BM % TM || BN % TN) bad("BM must be a multiple of TM, BN of TN");
  if (BK % 4) bad("BK must be a multiple of 4");
  const T = gpuThreads(v);
  if ((BM * BK / 4) % T || (BN * BK / 4) % T) {
    bad(`tiles of ${BM}/${BN}×${BK} do not split over ${T} threads`);
  }
}

/** The WGSL source of one variant. Pure: the same variant always gives the same text. */
export function gpuMatmulWgsl(v: GpuMatmulVariant): string {
  check(v);
  const { BM, BN, BK, TM, TN, tA, tB, aligned, prefetch, half } = v;
  // Element types: in memory (A, B) and in the tiles and inner loop.
  const mem = half ? "vec4<f16>" : "vec4<f32>";
  const tile = half === "compute" ? "vec4<f16>" : "vec4<f32>";
  const T = gpuThreads(v);
  const TYN = BM / TM, TXN = BN / TN; // threads along m, along n
  const RI = TM / 4, CJ = TN / 4; // vec4 groups per thread along m, along n
  const LA = BM * BK / 4 / T, LB = BN * BK / 4 / T; // vec4 global loads per thread per tile
  const AS = BK * BM / 4, BS = BK * BN / 4; // vec4 per tile buffer
  const L: string[] = [];
  const e = (s: string) => L.push(s);
  const xyzw = "xyzw";
  e(`// ${gpuMatmulName(v)} -- generated by src/tensor/matmul_gpu_wgsl.ts.`);
  e(`// C = ${tA ? "A^T" : "A"} * ${
    tB ? "B^T" : "B"
  }; tile ${BM}x${BN}x${BK}, ${TM}x${TN} per thread, ${T} threads${
    prefetch ? ", prefetched double buffer" : ""
  }${aligned ? ", no bounds checks" : ""}.`);
  if (half) e(`enable f16;`);
  e(`struct Params { M: u32, N: u32, K: u32, batch: u32, strideA: u32, strideB: u32, strideC: u32, splits: u32, kChunk: u32 }`);
  e(`@group(0) @binding(0) var<uniform> p: Params;`);
  e(`@group(0) @binding(1) var<storage, read> A: array<${mem}>;`);
  e(`@group(0) @binding(2) var<storage, read> B: array<${mem}>;`);
  e(`@group(0) @binding(3) var<storage, read_write> Cm: array<vec4<f32>>;`);
  const bufs = prefetch ? 2 : 1;
  e(`var<workgroup> As: array<${tile}, ${AS * bufs}>;`);
  e(`var<workgroup> Bs: array<${tile}, ${BS * bufs}>;`);
  e(`fn ldA(i: u32) -> ${tile} { return ${tile}(A[i]); }`);
  e(`fn ldB(i: u32) -> ${tile} { return ${tile}(B[i]); }`);
  e(``);
  e(`@compute @workgroup_size(${T})`);
  e(`fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,`);
  e(`        @builtin(local_invocation_index) lid: u32) {`);
  e(`  let M = p.M; let N = p.N; let K = p.K;`);
  if (v.swizzle) {
    const G = v.swizzle;
    e(`  let lin = wid.y * nwg.x + wid.x;`);
    e(`  let first = (lin / (${G}u * nwg.x)) * ${G}u;`);
    e(`  let rows = min(nwg.y - first, ${G}u);`);
    e(`  let within = lin % (${G}u * nwg.x);`);
    e(`  let row0 = (first + within % rows) * ${BM}u; let col0 = (within / rows) * ${BN}u;`);
  } else e(`  let row0 = wid.y * ${BM}u; let col0 = wid.x * ${BN}u;`);
  e(`  let bat = wid.z / p.splits; let split = wid.z % p.splits;`);
  e(`  let aOff = bat * p.strideA; let bOff = bat * p.strideB;`);
  e(`  let kBegin = split * p.kChunk; let kEnd = min(K, kBegin + p.kChunk);`);
  e(`  let ty = lid / ${TXN}u; let tx = lid % ${TXN}u;`);
  for (let i = 0; i < RI * 4; i++) {
    for (let j = 0; j < CJ; j++) e(`  var c${i}_${j} = vec4<f32>(0.0);`);
  }

  // Global loads of one tile into registers ga{l} / gb{l}; zero outside the matrix.
  const zero = `${tile}(0.0)`;
  const loadA = (k0: string) => {
    for (let l = 0; l < LA; l++) {
      e(`    let ea${l} = lid + ${l * T}u;`);
      if (!tA) {
        // row-major M x K: vec4 along k
        e(`    let am${l} = row0 + ea${l} / ${BK / 4}u; let ak${l} = ${k0} + (ea${l} % ${
          BK / 4
        }u) * 4u;`);
        const idx = `(aOff + am${l} * K + ak${l}) / 4u`;
        e(
          aligned
            ? `    ga${l} = ldA(${idx});`
            : `    ga${l} = select(${zero}, ldA(min(${idx}, arrayLength(&A) - 1u)), am${l} < M && ak${l} < kEnd);`,
        );
      } else {
        // K x M: vec4 along m
        e(`    let ak${l} = ${k0} + ea${l} / ${BM / 4}u; let am${l} = row0 + (ea${l} % ${
          BM / 4
        }u) * 4u;`);
        const idx = `(aOff + ak${l} * M + am${l}) / 4u`;
        e(
          aligned
            ? `    ga${l} = ldA(${idx});`
            : `    ga${l} = select(${zero}, ldA(min(${idx}, arrayLength(&A) - 1u)), am${l} < M && ak${l} < kEnd);`,
        );
      }
    }
    for (let l = 0; l < LB; l++) {
      e(`    let eb${l} = lid + ${l * T}u;`);
      if (!tB) {
        // K x N: vec4 along n
        e(`    let bk${l} = ${k0} + eb${l} / ${BN / 4}u; let bn${l} = col0 + (eb${l} % ${
          BN / 4
        }u) * 4u;`);
        const idx = `(bOff + bk${l} * N + bn${l}) / 4u`;
        e(
          aligned
            ? `    gb${l} = ldB(${idx});`
            : `    gb${l} = select(${zero}, ldB(min(${idx}, arrayLength(&B) - 1u)), bn${l} < N && bk${l} < kEnd);`,
        );
      } else {
        // N x K: vec4 along k
        e(`    let bn${l} = col0 + eb${l} / ${BK / 4}u; let bk${l} = ${k0} + (eb${l} % ${
          BK / 4
        }u) * 4u;`);
        const idx = `(bOff + bn${l} * K + bk${l}) / 4u`;
        e(
          aligned
            ? `    gb${l} = ldB(${idx});`
            : `    gb${l} = select(${zero}, ldB(min(${idx}, arrayLength(&B) - 1u)), bn${l} < N && bk${l} < kEnd);`,
        );
      }
    }
  };
  // Registers → the k-major tile buffer at vec4 offset `as` / `bs`.
  const store = (as: string, bs: string) => {
    for (let l = 0; l < LA; l++) e(`    let sa${l} = lid + ${l * T}u;`);
    for (let l = 0; l < LB; l++) e(`    let sb${l} = lid + ${l * T}u;`);
    for (let l = 0; l < LA; l++) {
      if (!tA) {
        e(`    { let m = sa${l} / ${BK / 4}u; let kq = (sa${l} % ${BK / 4}u) * 4u;`);
        for (let q = 0; q < 4; q++) {
          e(`      As[${as} + (kq + ${q}u) * ${BM / 4}u + m / 4u][m % 4u] = ga${l}.${xyzw[q]};`);
        }
        e(`    }`);
      } else e(`    As[${as} + sa${l}] = ga${l};`);
    }
    for (let l = 0; l < LB; l++) {
      if (!tB) e(`    Bs[${bs} + sb${l}] = gb${l};`);
      else {
        e(`    { let n = sb${l} / ${BK / 4}u; let kq = (sb${l} % ${BK / 4}u) * 4u;`);
        for (let q = 0; q < 4; q++) {
          e(`      Bs[${bs} + (kq + ${q}u) * ${BN / 4}u + n / 4u][n % 4u] = gb${l}.${xyzw[q]};`);
        }
        e(`    }`);
      }
    }
  };
  const fmas = (as: string, bs: string) => {
    // f16 compute: this tile's products go to f16 partial sums h*, then to the f32 accumulators.
    const acc = half === "compute" ? "h" : "c";
    if (half === "compute") {
      for (let i = 0; i < RI * 4; i++) {
        for (let j = 0; j < CJ; j++) e(`    var h${i}_${j} = vec4<f16>(0.0);`);
      }
    }
    e(`    for (var k = 0u; k < ${BK}u; k++) {`);
    for (let i = 0; i < RI; i++) {
      e(`      let a${i} = As[${as} + k * ${BM / 4}u + ty + ${i * TYN}u];`);
    }
    for (let j = 0; j < CJ; j++) {
      e(`      let b${j} = Bs[${bs} + k * ${BN / 4}u + tx + ${j * TXN}u];`);
    }
    for (let i = 0; i < RI; i++) {
      for (let r = 0; r < 4; r++) {
        for (let j = 0; j < CJ; j++) {
          const t = `${acc}${4 * i + r}_${j}`;
          e(`      ${t} = fma(${tile}(a${i}.${xyzw[r]}), b${j}, ${t});`);
        }
      }
    }
    e(`    }`);
    if (half === "compute") {
      for (let i = 0; i < RI * 4; i++) {
        for (let j = 0; j < CJ; j++) e(`    c${i}_${j} += vec4<f32>(h${i}_${j});`);
      }
    }
  };
  for (let l = 0; l < LA; l++) e(`  var ga${l}: ${tile};`);
  for (let l = 0; l < LB; l++) e(`  var gb${l}: ${tile};`);
  if (!prefetch) {
    e(`  for (var k0 = kBegin; k0 < kEnd; k0 += ${BK}u) {`);
    loadA("k0");
    store("0u", "0u");
    e(`    workgroupBarrier();`);
    fmas("0u", "0u");
    e(`    workgroupBarrier();`);
    e(`  }`);
  } else {
    e(`  if (kBegin < kEnd) {`);
    loadA("kBegin");
    store("0u", "0u");
    e(`  }`);
    e(`  workgroupBarrier();`);
    e(`  var cur = 0u;`);
    e(`  for (var k0 = kBegin; k0 < kEnd; k0 += ${BK}u) {`);
    e(`    let more = k0 + ${BK}u < kEnd;`);
    e(`    if (more) {`);
    loadA(`k0 + ${BK}u`);
    e(`    }`);
    fmas(`cur * ${AS}u`, `cur * ${BS}u`);
    e(`    if (more) {`);
    store(`(1u - cur) * ${AS}u`, `(1u - cur) * ${BS}u`);
    e(`    }`);
    e(`    cur = 1u - cur;`);
    e(`    workgroupBarrier();`);
    e(`  }`);
  }
  e(`  let cOff = (split * p.batch + bat) * p.strideC;`);
  for (let i = 0; i < RI; i++) {
    for (let r = 0; r < 4; r++) {
      e(`  { let m = row0 + 4u * (ty + ${i * TYN}u) + ${r}u;`);
      if (!aligned) e(`  if (m < M) {`);
      for (let j = 0; j < CJ; j++) {
        const n = `col0 + 4u * (tx + ${j * TXN}u)`;
        const st = `Cm[(cOff + m * N + ${n}) / 4u] = c${4 * i + r}_${j};`;
        e(aligned ? `    ${st}` : `    if (${n} < N) { ${st} }`);
      }
      if (!aligned) e(`  }`);
      e(`  }`);
    }
  }
  e(`}`);
  return L.join("\n") + "\n";
}
