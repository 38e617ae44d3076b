/**
 * WGSL for the register-blocked matmul kernels of the CPU adapter, generated
 * from a `MatmulVariant` when its pipeline is first created (the pipeline
 * cache keys on the variant). `planMatmul` picks the variant; the design and
 * the measurements are in docs/matmul-variants.md.
 *
 * Layout: a workgroup of `wg` invocations. Lane l has ln = l % LN (position
 * along n) and lm = l / LN (position along m), LN being a WGSL `override` that
 * divides wg. Each lane owns an R × 4C block of C: rows m0..m0+R-1, columns
 * n0 + 4j + q (j < C, q < 4). Workgroup tile: (R·wg/LN) rows × (4C·LN)
 * columns. Batch is workgroup_id.z. No barriers, no workgroup memory.
 */
import type { Defines, KernelSpec } from "../gpu/mod.ts";

/** Everything that shapes one generated matmul kernel. */
export type MatmulVariant = {
  /** Invocations per workgroup. */
  wg: number;
  /** Rows of C per invocation. */
  R: number;
  /** vec4 columns of C per invocation. */
  C: number;
  /** A stored transposed (K × M); "override": chosen by the TRANS_A override (scalar loads only). */
  tA: boolean | "override";
  /** B stored transposed (N × K); "override": chosen by the TRANS_B override (scalar loads only). */
  tB: boolean | "override";
  /** A and B read as vec4 (needs the alignments in `matmulRequirements`); else scalar f32 loads. */
  vec: boolean;
  /** C written as vec4 (needs N % 4 == 0, strideC % 4 == 0). */
  cVec: boolean;
  /** k unroll. */
  KU: number;
  /** (exploration) transposed A: all A loads of a k chunk before the FMAs. */
  aUpfront: boolean;
  /** (exploration) old index form for B rows. */
  nnAlt: boolean;
  /**
   * (exploration) index form for transposed A loads: 0 `rv + k*(M/4) + kk*(M/4)`,
   * 1 `(aOff + (k+kk)*M + m) / 4`, 2 the same text as 0, 3 `rv + (k+kk)*(M/4)`.
   */
  tnAlt: number;
};

/** A variant with the exploration options at their delivered values. */
export function matmulVariant(
  v: Pick<MatmulVariant, "wg" | "R" | "C" | "tA" | "tB" | "vec" | "cVec">,
): MatmulVariant {
  // One property order, so that equal variants make equal pipeline-cache keys.
  return {
    wg: v.wg,
    R: v.R,
    C: v.C,
    tA: v.tA,
    tB: v.tB,
    vec: v.vec,
    cVec: v.cVec,
    KU: 4,
    aUpfront: false,
    nnAlt: false,
    tnAlt: 0,
  };
}

/** The variant's name, e.g. `mm_v4_nn_r64c8_c4` (the names docs/matmul-variants.md uses). */
export function matmulVariantName(c: MatmulVariant): string {
  const t = c.tA === "override" ? "any" : `${c.tA ? "t" : "n"}${c.tB ? "t" : "n"}`;
  return `mm_${c.vec ? "v4" : "f32"}_${t}_r${c.R}c${c.C}${c.cVec ? "_c4" : ""}${
    c.aUpfront ? "_up" : ""
  }${c.KU !== 4 ? "_k" + c.KU : ""}${c.tnAlt ? "_alt" + c.tnAlt : ""}${c.nnAlt ? "_nalt" : ""}${
    c.wg !== 8 ? "_wg" + c.wg : ""
  }`;
}

/** The sizes and element strides of one matmul, as the kernel's Params uniform holds them. */
export interface MatmulDims {
  M: number;
  N: number;
  K: number;
  strideA: number;
  strideB: number;
  strideC: number;
}

type Requirement = [text: string, holds: (d: MatmulDims) => boolean];

function requirementList(c: MatmulVariant): Requirement[] {
  const r: Requirement[] = [];
  if (c.vec) {
    if (c.tA) r.push(["M % 4 == 0", (d) => d.M % 4 === 0]);
    // The k loop has no tail: every vec4 kernel steps K by KU.
    r.push([`K % ${c.KU} == 0`, (d) => d.K % c.KU === 0]);
    if (!c.tB) r.push(["N % 4 == 0", (d) => d.N % 4 === 0]);
    r.push(["strideA % 4 == 0", (d) => d.strideA % 4 === 0]);
    r.push(["strideB % 4 == 0", (d) => d.strideB % 4 === 0]);
  }
  if (c.cVec) {
    r.push(["N % 4 == 0", (d) => d.N % 4 === 0]);
    r.push(["strideC % 4 == 0", (d) => d.strideC % 4 === 0]);
  }
  const seen = new Set<string>();
  return r.filter(([text]) => !seen.has(text) && seen.add(text));
}

/** The alignments a variant needs, as text (the generated header says the same). */
export function matmulRequirements(c: MatmulVariant): string {
  const r = requirementList(c).map(([text]) => text);
  return r.length ? r.join(", ") : "none (any M, N, K >= 1, any strides)";
}

/** Whether a variant computes this product correctly (transposes aside). */
export function matmulFits(c: MatmulVariant, d: MatmulDims): boolean {
  return requirementList(c).every(([, holds]) => holds(d));
}

/** The pipeline spec (less bindings) whose WGSL is `matmulWgsl(v)`. */
export function matmulKernelSpec(
  v: MatmulVariant,
  constants: Record<string, number>,
): Omit<KernelSpec, "bindings"> {
  return {
    shader: matmulVariantName(v),
    defines: v,
    generate: (d: Defines) => matmulWgsl(d as MatmulVariant),
    constants,
  };
}

/** The WGSL source of one variant. Pure: the same variant always gives the same text. */
export function matmulWgsl(c: MatmulVariant): string {
  const { wg: WG, R, C, vec, cVec, KU } = c;
  const ov = c.tA === "override";
  if ((c.tA === "override") !== (c.tB === "override")) {
    throw new Error("matmulWgsl: tA and tB are both override or neither");
  }
  for (const [k, v] of [["wg", WG], ["R", R], ["C", C], ["KU", KU]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`matmulWgsl: ${k} must be >= 1, got ${v}`);
  }
  if (ov && vec) throw new Error("override transposes only for scalar kernels");
  const tA = c.tA === true, tB = c.tB === true;
  if (vec && tA && R % 4) throw new Error("vec tA needs R%4==0");
  if (vec && KU % 4) throw new Error("vec needs KU%4==0");
  const L: string[] = [];
  const e = (s: string) => L.push(s);
  const xyzw = "xyzw";
  const opDesc = ov
    ? "C = opA(A) * opB(B), opA/opB chosen by the override constants TRANS_A / TRANS_B"
    : `C = ${tA ? "A^T" : "A"} * ${tB ? "B^T" : "B"}  (A stored ${
      tA ? "K x M" : "M x K"
    }, B stored ${tB ? "N x K" : "K x N"}, row-major)`;
  e(`// ${matmulVariantName(c)} -- generated by src/tensor/matmul_wgsl.ts.`);
  e(`// ${opDesc}, batched over workgroup_id.z with element strides strideA/strideB/strideC (0 = broadcast).`);
  e(`// Each invocation computes a ${R} x ${4 * C} block of C with ${
    vec ? "vec4" : "scalar f32"
  } loads, k unrolled by ${KU}; no barriers, no workgroup memory.`);
  e(`// Workgroup size ${WG}; override LN (lanes along n, divides ${WG}): workgroup tile = (${R} * ${WG}/LN) rows x (${
    4 * C
  } * LN) columns.`);
  e(`// Dispatch: (ceil(N / (${4 * C}*LN)), ceil(M / (${R}*${WG}/LN)), batch).`);
  e(`// Requirements: ${matmulRequirements(c)}.`);
  e(`struct Params { M: u32, N: u32, K: u32, batch: u32, strideA: u32, strideB: u32, strideC: u32, pad0: u32 }`);
  e(`@group(0) @binding(0) var<uniform> p: Params;`);
  e(`@group(0) @binding(1) var<storage, read> A: array<${vec ? "vec4<f32>" : "f32"}>;`);
  e(`@group(0) @binding(2) var<storage, read> B: array<${vec ? "vec4<f32>" : "f32"}>;`);
  e(`@group(0) @binding(3) var<storage, read_write> Cm: array<${cVec ? "vec4<f32>" : "f32"}>;`);
  e(`override LN: u32 = ${WG}u;`);
  if (ov) {
    e(`override TRANS_A: bool = false;`);
    e(`override TRANS_B: bool = false;`);
    // element loaders; the untaken branch is removed once the override is known
    e(`fn ldA(off: u32, m: u32, k: u32) -> f32 { if (TRANS_A) { return A[off + k * p.M + m]; } return A[off + m * p.K + k]; }`);
    e(`fn ldB(off: u32, k: u32, n: u32) -> f32 { if (TRANS_B) { return B[off + n * p.K + k]; } return B[off + k * p.N + n]; }`);
  }
  e(``);
  e(`@compute @workgroup_size(${WG})`);
  e(`fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {`);
  e(`  let M = p.M; let N = p.N; let K = p.K;`);
  e(`  let ln = lid % LN;`);
  e(`  let m0 = wid.y * (${R}u * (${WG}u / LN)) + (lid / LN) * ${R}u;`);
  e(`  let n0 = wid.x * (${4 * C}u * LN) + ln * ${4 * C}u;`);
  e(`  let aOff = wid.z * p.strideA; let bOff = wid.z * p.strideB; let cOff = wid.z * p.strideC;`);
  // Clamped row / column indices used for loads: out-of-range rows/cols read valid (wrong) data that is never stored.
  if (vec && tA) {
    for (let r = 0; r < R; r += 4) e(`  let rv${r} = (aOff + min(m0 + ${r}u, M - 4u)) / 4u;`);
  } else if (vec) {
    for (let r = 0; r < R; r++) e(`  let ra${r} = (aOff + min(m0 + ${r}u, M - 1u) * K) / 4u;`);
  } else {
    for (let r = 0; r < R; r++) e(`  let ra${r} = min(m0 + ${r}u, M - 1u);`);
  }
  for (let j = 0; j < C; j++) {
    if (vec && !tB) e(`  let cb${j} = bOff / 4u + min(n0 + ${4 * j}u, N - 4u) / 4u;`);
    else if (vec && tB) {
      for (let q = 0; q < 4; q++) {
        e(`  let cb${j}_${q} = (bOff + min(n0 + ${4 * j + q}u, N - 1u) * K) / 4u;`);
      }
    } else for (let q = 0; q < 4; q++) e(`  let cb${j}_${q} = min(n0 + ${4 * j + q}u, N - 1u);`);
  }
  for (let r = 0; r < R; r++) for (let j = 0; j < C; j++) e(`  var acc${r}_${j} = vec4<f32>(0.0);`);

  const body = (ku: number) => {
    // B values for this k chunk: b{j}_{kk}: vec4 over the 4 columns of group j
    for (let j = 0; j < C; j++) {
      if (vec && !tB) {
        for (let kk = 0; kk < ku; kk++) {
          e(`    let b${j}_${kk} = B[cb${j} + ${
            c.nnAlt ? `(k + ${kk}u) * (N / 4u)` : `k * (N / 4u) + ${kk}u * (N / 4u)`
          }];`);
        }
      } else if (vec && tB) {
        for (let g = 0; g < ku; g += 4) {
          for (let q = 0; q < 4; q++) {
            e(`    let t${j}_${q}_${g} = B[cb${j}_${q} + k / 4u + ${g / 4}u];`);
          }
          for (let t = 0; t < 4; t++) {
            e(`    let b${j}_${g + t} = vec4<f32>(${
              [0, 1, 2, 3].map((q) => `t${j}_${q}_${g}.${xyzw[t]}`).join(", ")
            });`);
          }
        }
      } else {
        for (let kk = 0; kk < ku; kk++) {
          const ld = (q: number) =>
            ov
              ? `ldB(bOff, k + ${kk}u, cb${j}_${q})`
              : tB
              ? `B[bOff + cb${j}_${q} * K + k + ${kk}u]`
              : `B[bOff + (k + ${kk}u) * N + cb${j}_${q}]`;
          e(`    let b${j}_${kk} = vec4<f32>(${[0, 1, 2, 3].map(ld).join(", ")});`);
        }
      }
    }
    const aUpfront = c.aUpfront;
    if (vec && tA && aUpfront) {
      for (let r = 0; r < R; r += 4) {
        for (let kk = 0; kk < ku; kk++) {
          e(`    let av${r}_${kk} = A[rv${r} + (k + ${kk}u) * (M / 4u)];`);
        }
      }
    }
    for (let r = 0; r < R; r++) {
      if (vec && tA && !aUpfront && r % 4 === 0) {
        for (let kk = 0; kk < ku; kk++) {
          if (!c.tnAlt) e(`    let av${r}_${kk} = A[rv${r} + k * (M / 4u) + ${kk}u * (M / 4u)];`);
          else if (c.tnAlt === 3) e(`    let av${r}_${kk} = A[rv${r} + (k + ${kk}u) * (M / 4u)];`);
          else if (c.tnAlt === 1) {
            e(`    let av${r}_${kk} = A[(aOff + (k + ${kk}u) * M + min(m0 + ${r}u, M - 4u)) / 4u];`);
          } else if (c.tnAlt === 2) {
            e(`    let av${r}_${kk} = A[rv${r} + k * (M / 4u) + ${kk}u * (M / 4u)];`);
          }
        }
      }
      const as: string[] = [];
      if (vec && !tA) {
        for (let g = 0; g < ku; g += 4) {
          e(`    let a${r}_${g} = A[ra${r} + k / 4u + ${g / 4}u];`);
          for (let t = 0; t < 4; t++) as.push(`a${r}_${g}.${xyzw[t]}`);
        }
      } else if (vec && tA) {
        for (let kk = 0; kk < ku; kk++) as.push(`av${r - (r % 4)}_${kk}.${xyzw[r % 4]}`);
      } else {
        for (let kk = 0; kk < ku; kk++) {
          const ld = ov
            ? `ldA(aOff, ra${r}, k + ${kk}u)`
            : tA
            ? `A[aOff + (k + ${kk}u) * M + ra${r}]`
            : `A[aOff + ra${r} * K + k + ${kk}u]`;
          e(`    let a${r}_${kk} = ${ld};`);
          as.push(`a${r}_${kk}`);
        }
      }
      for (let j = 0; j < C; j++) {
        for (let kk = 0; kk < ku; kk++) {
          e(`    acc${r}_${j} = fma(vec4<f32>(${as[kk]}), b${j}_${kk}, acc${r}_${j});`);
        }
      }
    }
  };
  if (vec) {
    e(`  for (var k = 0u; k < K; k += ${KU}u) {`);
    body(KU);
    e(`  }`);
  } else {
    e(`  let Kmain = K - K % ${KU}u;`);
    e(`  for (var k = 0u; k < Kmain; k += ${KU}u) {`);
    body(KU);
    e(`  }`);
    e(`  for (var k = Kmain; k < K; k += 1u) {`);
    body(1);
    e(`  }`);
  }
  for (let r = 0; r < R; r++) {
    e(`  if (m0 + ${r}u < M) {`);
    e(`    let o${r} = cOff + (m0 + ${r}u) * N;`);
    for (let j = 0; j < C; j++) {
      if (cVec) e(`    if (n0 + ${4 * j}u < N) { Cm[(o${r} + n0) / 4u + ${j}u] = acc${r}_${j}; }`);
      else {
        for (let q = 0; q < 4; q++) {
          e(`    if (n0 + ${4 * j + q}u < N) { Cm[o${r} + n0 + ${4 * j + q}u] = acc${r}_${j}.${
            xyzw[q]
          }; }`);
        }
      }
    }
    e(`  }`);
  }
  e(`}`);
  return L.join("\n") + "\n";
}
