/**
 * Float64 CPU reference implementations, written independently of the
 * kernels, that the GPU ops are checked against. Arrays are flat, row-major.
 */
import { mulberry32 } from "../../src/util/rng.ts";

export type F64 = Float64Array;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function strides(shape: readonly number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Elementwise f over operands broadcast to a common shape. */
export function broadcastMap(
  shapes: readonly (readonly number[])[],
  arrays: readonly ArrayLike<number>[],
  f: (...v: number[]) => number,
): { shape: number[]; data: F64 } {
  const rank = Math.max(...shapes.map((s) => s.length));
  const shape = Array.from(
    { length: rank },
    (_, i) => Math.max(...shapes.map((s) => s[s.length - rank + i] ?? 1)),
  );
  const out = new Float64Array(numel(shape));
  const os = strides(shape);
  const ins = shapes.map((s) => strides(s));
  for (let i = 0; i < out.length; i++) {
    const vals = shapes.map((s, k) => {
      let off = 0;
      for (let d = 0; d < rank; d++) {
        const idx = Math.floor(i / os[d]) % shape[d];
        const sd = d - (rank - s.length);
        if (sd >= 0 && s[sd] !== 1) off += idx * ins[k][sd];
      }
      return arrays[k][off];
    });
    out[i] = f(...vals);
  }
  return { shape, data: out };
}

export function matmul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  batch: number,
  M: number,
  N: number,
  K: number,
  transA = false,
  transB = false,
  shareA = false,
  shareB = false,
): F64 {
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ao = shareA ? 0 : z * M * K;
    const bo = shareB ? 0 : z * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = transA ? a[ao + k * M + i] : a[ao + i * K + k];
          const bv = transB ? b[bo + j * K + k] : b[bo + k * N + j];
          s += av * bv;
        }
        out[z * M * N + i * N + j] = s;
      }
    }
  }
  return out;
}

/** Applies f to each row of length n. */
export function rows(x: ArrayLike<number>, n: number, f: (row: number[]) => number[]): F64 {
  const out = new Float64Array(x.length);
  for (let r = 0; r * n < x.length; r++) {
    const row = Array.from({ length: n }, (_, i) => x[r * n + i]);
    out.set(f(row), r * n);
  }
  return out;
}

export function softmaxRow(row: number[]): number[] {
  const m = row.reduce((a, b) => Math.max(a, b), -Infinity);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export function logSoftmaxRow(row: number[]): number[] {
  const m = row.reduce((a, b) => Math.max(a, b), -Infinity);
  const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
  return row.map((v) => v - lse);
}

export function crossEntropy(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  n: number,
  mask?: ArrayLike<number>,
  ignoreIndex = -100,
): F64 {
  const out = new Float64Array(labels.length);
  for (let r = 0; r < labels.length; r++) {
    if (labels[r] === ignoreIndex) continue;
    const row = Array.from({ length: n }, (_, i) => logits[r * n + i]);
    out[r] = -logSoftmaxRow(row)[labels[r]] * (mask ? mask[r] : 1);
  }
  return out;
}

export function rmsNorm(x: ArrayLike<number>, w: ArrayLike<number>, n: number, eps: number): F64 {
  return rows(x, n, (row) => {
    const ms = row.reduce((a, v) => a + v * v, 0) / n;
    const inv = 1 / Math.sqrt(ms + eps);
    return row.map((v, i) => v * inv * w[i]);
  });
}

/** RoPE on x [B, T, H, D] with float64 angles pos · theta^(-2i/D). */
export function rope(
  x: ArrayLike<number>,
  pos: ArrayLike<number>,
  [B, T, H, D]: number[],
  theta: number,
  interleaved: boolean,
): F64 {
  const out = new Float64Array(x.length);
  const half = D / 2;
  for (let bt = 0; bt < B * T; bt++) {
    for (let h = 0; h < H; h++) {
      const base = (bt * H + h) * D;
      for (let i = 0; i < half; i++) {
        const angle = pos[bt] * Math.pow(theta, (-2 * i) / D);
        const [i0, i1] = interleaved ? [2 * i, 2 * i + 1] : [i, i + half];
        const x0 = x[base + i0];
        const x1 = x[base + i1];
        out[base + i0] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
        out[base + i1] = x0 * Math.sin(angle) + x1 * Math.cos(angle);
      }
    }
  }
  return out;
}

/**
 * Attention with grouped-query heads, q: [B, Hq, Tq, D], k, v: [B, Hkv, Tk, D];
 * query t sits at position qOffset + t; keys before keyStart[b] are masked.
 */
export function attention(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  [B, Hq, Tq, D]: number[],
  Hkv: number,
  Tk: number,
  opts: { causal: boolean; qOffset: number; keyStart?: number[]; scale?: number },
): F64 {
  const out = new Float64Array(B * Hq * Tq * D);
  const G = Hq / Hkv;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / G);
      for (let t = 0; t < Tq; t++) {
        const lo = opts.keyStart ? opts.keyStart[b] : 0;
        const hi = opts.causal ? Math.min(Tk, opts.qOffset + t + 1) : Tk;
        const scores: number[] = [];
        for (let j = lo; j < hi; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) {
            s += q[((b * Hq + h) * Tq + t) * D + d] * k[((b * Hkv + kh) * Tk + j) * D + d];
          }
          scores.push(s * scale);
        }
        const p = scores.length ? softmaxRow(scores) : [];
        for (let d = 0; d < D; d++) {
          let s = 0;
          for (let j = lo; j < hi; j++) s += p[j - lo] * v[((b * Hkv + kh) * Tk + j) * D + d];
          out[((b * Hq + h) * Tq + t) * D + d] = s;
        }
      }
    }
  }
  return out;
}

/** Reduction over one axis of `shape`. */
export function reduce(
  x: ArrayLike<number>,
  shape: readonly number[],
  axis: number,
  f: (vals: number[]) => number,
): F64 {
  const outer = numel(shape.slice(0, axis));
  const n = shape[axis];
  const inner = numel(shape.slice(axis + 1));
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const vals = Array.from({ length: n }, (_, j) => x[(o * n + j) * inner + i]);
      out[o * inner + i] = f(vals);
    }
  }
  return out;
}

/** Permutes a row-major array of `shape` by `dims` (as torch.permute). */
export function permute(
  x: ArrayLike<number>,
  shape: readonly number[],
  dims: readonly number[],
): F64 {
  const outShape = dims.map((d) => shape[d]);
  const inS = strides(shape);
  const outS = strides(outShape);
  const out = new Float64Array(x.length);
  for (let i = 0; i < out.length; i++) {
    let off = 0;
    for (let d = 0; d < dims.length; d++) {
      off += (Math.floor(i / outS[d]) % outShape[d]) * inS[dims[d]];
    }
    out[i] = x[off];
  }
  return out;
}

/** A seeded PRNG (mulberry32) so every test input is reproducible. */
export function rng(seed: number): () => number {
  return mulberry32(seed);
}

export function randn(n: number, r: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export function randint(n: number, hi: number, r: () => number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(r() * hi));
}
