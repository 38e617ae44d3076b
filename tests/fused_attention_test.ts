/**
 * The fused attention kernels (src/tensor/impl/attention.ts): outputs against
 * the float64 reference and gradients against finite differences of it, on the
 * cases their indexing has to get right: rows spread over several workgroups,
 * grouped-query heads, a KV offset, left padding that leaves whole query rows
 * with no key, no causal mask, and q, k, v read in place from llama's
 * [B, T, heads, D] layout. The same cases run through the composed kernels
 * (matmuls around a masked softmax), which hardware adapters use.
 */
import * as E from "../mod.ts";
import { forceKernels } from "../src/tensor/kernel_choice.ts";
import { setAttentionBlock } from "../src/tensor/impl/attention.ts";
import { assertClose } from "./support/assert.ts";
import { gradcheck, type GradInput } from "./support/gradcheck.ts";
import * as R from "./support/reference.ts";
import "./support/gpu.ts";

const r = R.rng(31);

interface Case {
  B: number;
  Hq: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  D: number;
  causal: boolean;
  qOffset: number;
  keyStart?: number[];
}

const CASES: Case[] = [
  // 37 queries: three workgroups of 16 rows, the last one part-full.
  { B: 2, Hq: 4, Hkv: 2, Tq: 37, Tk: 37, D: 4, causal: true, qOffset: 0 },
  // Left padding past some queries' positions: those rows attend to nothing.
  { B: 2, Hq: 2, Hkv: 1, Tq: 20, Tk: 20, D: 8, causal: true, qOffset: 0, keyStart: [3, 11] },
  // Queries after a KV cache, and keys spread over several workgroups in the backward.
  { B: 1, Hq: 3, Hkv: 1, Tq: 5, Tk: 40, D: 12, causal: true, qOffset: 35, keyStart: [2] },
  { B: 2, Hq: 2, Hkv: 2, Tq: 18, Tk: 9, D: 4, causal: false, qOffset: 0, keyStart: [0, 4] },
];

const input = (shape: number[]): GradInput => ({ data: R.randn(R.numel(shape), r), shape });

/** Random q, k, v for a case: [B, heads, T, D], or llama's [B, T, heads, D] with `llama`. */
function qkv(c: Case, llama = false): GradInput[] {
  const shape = (h: number, t: number) => (llama ? [c.B, t, h, c.D] : [c.B, h, t, c.D]);
  return [input(shape(c.Hq, c.Tq)), input(shape(c.Hkv, c.Tk)), input(shape(c.Hkv, c.Tk))];
}

/** [B, T, H, D] -> [B, H, T, D] in float64, as E.permute(x, [0, 2, 1, 3]). */
function toHeads(x: ArrayLike<number>, B: number, T: number, H: number, D: number): Float64Array {
  const out = new Float64Array(B * T * H * D);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        for (let d = 0; d < D; d++) {
          out[((b * H + h) * T + t) * D + d] = x[((b * T + t) * H + h) * D + d];
        }
      }
    }
  }
  return out;
}

function opts(c: Case) {
  return {
    causal: c.causal,
    qOffset: c.qOffset,
    keyStart: c.keyStart ? E.tensor(Int32Array.from(c.keyStart)) : undefined,
  };
}

for (const kernels of ["fused", "composed"] as const) {
  Deno.test(`${kernels} attention matches the float64 reference, and its gradients finite differences`, async () => {
    forceKernels({ attention: kernels });
    try {
      for (const c of CASES) {
        const what = `${kernels} ${JSON.stringify(c)}`;
        const ref = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) =>
          R.attention(q, k, v, [c.B, c.Hq, c.Tq, c.D], c.Hkv, c.Tk, c);
        await gradcheck(
          what,
          qkv(c),
          (q, k, v) => E.attention(q, k, v, opts(c)),
          ref,
        );
      }
    } finally {
      forceKernels({});
    }
  });

  Deno.test(`${kernels} attention reads q, k, v as views of llama's [B, T, heads, D] layout`, async () => {
    forceKernels({ attention: kernels });
    try {
      const c = CASES[0];
      const heads = (t: E.Tensor) => E.permute(t, [0, 2, 1, 3]);
      await gradcheck(
        `${kernels} strided`,
        qkv(c, true),
        (q, k, v) => E.attention(heads(q), heads(k), heads(v), opts(c)),
        (q, k, v) =>
          R.attention(
            toHeads(q, c.B, c.Tq, c.Hq, c.D),
            toHeads(k, c.B, c.Tk, c.Hkv, c.D),
            toHeads(v, c.B, c.Tk, c.Hkv, c.D),
            [c.B, c.Hq, c.Tq, c.D],
            c.Hkv,
            c.Tk,
            c,
          ),
      );
    } finally {
      forceKernels({});
    }
  });
}

Deno.test("fused and composed attention agree at the PPO shape (176 keys, head_dim 12)", async () => {
  const [B, H, T, D] = [3, 4, 176, 12];
  const q = R.randn(B * H * T * D, r);
  const k = R.randn(B * H * T * D, r);
  const v = R.randn(B * H * T * D, r);
  const keyStart = [0, 40, 100];
  const want = R.attention(q, k, v, [B, H, T, D], H, T, { causal: true, qOffset: 0, keyStart });
  for (const kernels of ["fused", "composed"] as const) {
    forceKernels({ attention: kernels });
    try {
      const got = E.attention(
        E.tensor(q, [B, H, T, D]),
        E.tensor(k, [B, H, T, D]),
        E.tensor(v, [
          B,
          H,
          T,
          D,
        ]),
        { causal: true, qOffset: 0, keyStart: E.tensor(Int32Array.from(keyStart)) },
      );
      assertClose(await got.data(), want, { what: kernels, rtol: 1e-4, atol: 1e-5 });
      got.destroy();
    } finally {
      forceKernels({});
    }
  }
});

Deno.test("fused attention with a hardware GPU's block shape (64 rows a workgroup, one a thread) matches too", async () => {
  forceKernels({ attention: "fused" });
  setAttentionBlock({ lanes: 64, rows: 1 });
  try {
    for (const c of CASES.slice(0, 3)) {
      await gradcheck(
        `64x1 ${JSON.stringify(c)}`,
        qkv(c),
        (q, k, v) => E.attention(q, k, v, opts(c)),
        (q, k, v) => R.attention(q, k, v, [c.B, c.Hq, c.Tq, c.D], c.Hkv, c.Tk, c),
      );
    }
  } finally {
    setAttentionBlock(null);
    forceKernels({});
  }
});
