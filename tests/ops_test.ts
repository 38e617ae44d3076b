/** Every forward op against a float64 CPU reference, on random shapes including odd sizes. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import { vec4Walks } from "../src/tensor/launch.ts";
import * as R from "./support/reference.ts";
import { assertClose } from "./support/assert.ts";
import "./support/gpu.ts";

const r = R.rng(1234);

const UNARY_REF: Record<string, [(x: number) => number, (x: E.Tensor) => E.Tensor, "any" | "pos"]> =
  {
    neg: [(x) => -x, E.neg, "any"],
    exp: [Math.exp, E.exp, "any"],
    log: [Math.log, E.log, "pos"],
    sqrt: [Math.sqrt, E.sqrt, "pos"],
    rsqrt: [(x) => 1 / Math.sqrt(x), E.rsqrt, "pos"],
    abs: [Math.abs, E.abs, "any"],
    sin: [Math.sin, E.sin, "any"],
    cos: [Math.cos, E.cos, "any"],
    square: [(x) => x * x, E.square, "any"],
    recip: [(x) => 1 / x, E.recip, "pos"],
    relu: [(x) => Math.max(x, 0), E.relu, "any"],
    sigmoid: [(x) => 1 / (1 + Math.exp(-x)), E.sigmoid, "any"],
    tanh: [Math.tanh, E.tanh, "any"],
    silu: [(x) => x / (1 + Math.exp(-x)), E.silu, "any"],
    gelu: [
      (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
      E.gelu,
      "any",
    ],
    affine: [(x) => x * 1.5 - 0.25, (x) => E.affine(x, 1.5, -0.25), "any"],
    clamp: [(x) => Math.min(Math.max(x, -0.5), 0.7), (x) => E.clamp(x, -0.5, 0.7), "any"],
  };

for (const [name, [ref, op, domain]] of Object.entries(UNARY_REF)) {
  Deno.test(`unary ${name} matches float64 on odd shapes, strided views too`, async () => {
    // [4, 12], [3, 8, 16] and [4096] take the vec4 kernels (rows of a multiple of 4), the rest not.
    for (const shape of [[1], [7], [3, 17], [2, 5, 33], [4099], [4, 12], [3, 8, 16], [4096]]) {
      let data = R.randn(R.numel(shape), r, 2);
      if (domain === "pos") data = data.map((v) => Math.abs(v) + 0.1);
      const x = E.tensor(data, shape);
      assertClose(await (op(x)).data(), Array.from(data, ref), {
        what: `${name}${shape}`,
        rtol: 2e-5,
        atol: 1e-6,
      });
      if (shape.length >= 2) {
        const t = E.transpose(x);
        const expected = R.permute(
          Array.from(data, ref),
          shape,
          shape.map((_, i) => i).reverse().slice(0, 0).concat(
            shape.map((_, i) => i).slice(0, -2),
            [shape.length - 1, shape.length - 2],
          ),
        );
        assertClose(await op(t).data(), expected, {
          what: `${name} transposed`,
          rtol: 2e-5,
          atol: 1e-6,
        });
      }
    }
  });
}

Deno.test("tanh, sigmoid, silu and gelu stay finite at |x| = 100", async () => {
  const x = E.tensor([-100, 100, -50, 50]);
  for (const op of [E.tanh, E.sigmoid, E.silu, E.gelu]) {
    for (const v of await op(x).data()) assert.ok(Number.isFinite(v));
  }
});

const BINARY_REF: Record<
  string,
  [(a: number, b: number) => number, (a: E.Tensor, b: E.Tensor) => E.Tensor]
> = {
  add: [(a, b) => a + b, E.add],
  sub: [(a, b) => a - b, E.sub],
  mul: [(a, b) => a * b, E.mul],
  div: [(a, b) => a / b, E.div],
  maximum: [Math.max, E.maximum],
  minimum: [Math.min, E.minimum],
  eq: [(a, b) => +(a === b), E.eq],
  ne: [(a, b) => +(a !== b), E.ne],
  lt: [(a, b) => +(a < b), E.lt],
  le: [(a, b) => +(a <= b), E.le],
  gt: [(a, b) => +(a > b), E.gt],
  ge: [(a, b) => +(a >= b), E.ge],
};

const BROADCASTS: [number[], number[]][] = [
  [[7], [7]],
  [[3, 17], [17]],
  [[3, 1, 5], [1, 4, 5]],
  [[2, 3, 4, 5], [3, 1, 1]],
  [[1], [5, 3]],
  [[65, 33], [65, 1]],
  // vec4 kernels: rows of a multiple of 4, broadcast on outer axes only.
  [[6, 8], [6, 8]],
  [[6, 8], [8]],
  [[2, 3, 12], [2, 1, 12]],
  // scalar kernels again: broadcast along the row.
  [[5, 8], [5, 1]],
];

for (const [name, [ref, op]] of Object.entries(BINARY_REF)) {
  Deno.test(`binary ${name} matches float64 with broadcasting`, async () => {
    for (const [sa, sb] of BROADCASTS) {
      // Round to a coarse grid so that the comparisons see ties.
      const a = R.randn(R.numel(sa), r).map((v) => Math.round(v * 4) / 4);
      const b = R.randn(R.numel(sb), r).map((v) => Math.round(v * 4) / 4 || 0.5);
      const want = R.broadcastMap([sa, sb], [a, b], ref);
      const got = op(E.tensor(a, sa), E.tensor(b, sb));
      assert.deepEqual(got.shape, want.shape);
      assertClose(await got.data(), want.data, { what: `${name} ${sa} ${sb}` });
    }
  });
}

Deno.test("elementwise ops on row and column slices: vec4 kernels where aligned, scalar where not", async () => {
  const [rows, cols] = [6, 12];
  const a = R.randn(rows * cols, r);
  const b = R.randn(rows * cols, r);
  const x = E.tensor(a, [rows, cols]);
  const y = E.tensor(b, [rows, cols]);
  // [starts, ends], and whether the view's rows are aligned to vec4.
  const views: [number[], number[], boolean][] = [
    [[2, 0], [5, 12], true],
    [[0, 4], [6, 12], true],
    [[1, 1], [6, 9], false],
    [[0, 2], [6, 6], false],
  ];
  for (const [starts, ends, aligned] of views) {
    const xs = E.slice(x, starts, ends);
    const ys = E.slice(y, starts, ends);
    const walk = (t: E.Tensor) => ({ offset: t.offset, strides: t.strides });
    const out = { offset: 0, strides: [ends[1] - starts[1], 1] };
    assert.equal(vec4Walks(xs.shape, [walk(xs), walk(ys), out]) !== null, aligned);
    const pick = (d: Float32Array) => {
      const got: number[] = [];
      for (let i = starts[0]; i < ends[0]; i++) {
        for (let j = starts[1]; j < ends[1]; j++) got.push(d[i * cols + j]);
      }
      return got;
    };
    const [pa, pb] = [pick(a), pick(b)];
    const what = `[${starts}]..[${ends}]`;
    assertClose(await E.mul(xs, ys).data(), pa.map((v, i) => v * pb[i]), { what });
    assertClose(await E.silu(xs).data(), pa.map((v) => v / (1 + Math.exp(-v))), {
      what,
      rtol: 2e-5,
      atol: 1e-6,
    });
    assertClose(await E.affine(xs, 2, 0.5).data(), pa.map((v) => 2 * v + 0.5), { what });
  }
});

Deno.test("where and maskedFill broadcast condition and values", async () => {
  const cond = E.tensor([1, 0, 0, 1, 1, 0], [2, 3]);
  const a = E.tensor([10, 20, 30], [3]);
  const b = E.tensor([-1, -2], [2, 1]);
  assert.deepEqual(Array.from(await E.where(cond, a, b).data()), [10, -1, -1, 10, 20, -2]);
  const x = E.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  assert.deepEqual(Array.from(await E.maskedFill(x, cond, -9).data()), [-9, 2, 3, -9, -9, 6]);
});

Deno.test("sum, mean and max over every axis match float64", async () => {
  for (const shape of [[5], [3, 7], [2, 17, 3], [4, 1, 6, 5]]) {
    const data = R.randn(R.numel(shape), r);
    const x = E.tensor(data, shape);
    for (let axis = 0; axis < shape.length; axis++) {
      const s = R.reduce(data, shape, axis, (v) => v.reduce((a, b) => a + b, 0));
      assertClose(await E.sum(x, axis).data(), s, { what: `sum ${shape} axis ${axis}` });
      assertClose(await E.mean(x, axis).data(), s.map((v) => v / shape[axis]), { what: "mean" });
      assertClose(await E.max(x, axis).data(), R.reduce(data, shape, axis, (v) => Math.max(...v)), {
        what: "max",
      });
      const kept = E.sum(x, axis, true);
      assert.deepEqual(kept.shape, shape.map((d, i) => (i === axis ? 1 : d)));
    }
    assertClose(await E.sum(x).data(), [data.reduce((a, b) => a + b, 0)], {
      what: "sum all",
      rtol: 1e-4,
    });
  }
});

Deno.test("sum and max over long rows and whole tensors (two passes on hardware GPUs) match float64", async () => {
  // Long enough that a hardware adapter's choice cuts each row into chunks and reduces those.
  for (const [shape, axis] of [[[20_001], 0], [[3, 5000, 2], 1], [[2, 9000], 1]] as const) {
    const data = R.randn(R.numel([...shape]), r);
    const x = E.tensor(data, [...shape]);
    const s = R.reduce(data, [...shape], axis, (v) => v.reduce((a, b) => a + b, 0));
    // float32 sums of thousands of N(0, 1) terms: an absolute error of ~1e-3 is rounding.
    assertClose(await E.sum(x, axis).data(), s, { what: `sum ${shape}`, atol: 3e-3 });
    const m = R.reduce(
      data,
      [...shape],
      axis,
      (v) => v.reduce((a, b) => Math.max(a, b), -Infinity),
    );
    assertClose(await E.max(x, axis).data(), m, { what: `max ${shape}`, rtol: 0, atol: 0 });
  }
  const data = R.randn(50_000, r);
  assertClose(await E.sum(E.tensor(data, [100, 500])).data(), [data.reduce((a, b) => a + b, 0)], {
    what: "sum of a whole [100, 500]",
    atol: 1e-2,
  });
});

Deno.test("argmax takes the first maximum, as torch.argmax", async () => {
  const x = E.tensor([1, 3, 3, 0, -1, -5, -1, -7], [2, 4]);
  assert.deepEqual(Array.from(await E.argmax(x).data()), [1, 0]);
  const data = R.randn(17 * 33, r);
  const want = R.reduce(data, [17, 33], 1, (v) => v.indexOf(Math.max(...v)));
  assert.deepEqual(Array.from(await E.argmax(E.tensor(data, [17, 33])).data()), Array.from(want));
});

Deno.test("softmax and logSoftmax match float64, large logits included", async () => {
  for (const shape of [[1], [3, 7], [5, 65], [2, 3, 129]]) {
    const n = shape[shape.length - 1];
    const data = R.randn(R.numel(shape), r, 30);
    const x = E.tensor(data, shape);
    assertClose(await E.softmax(x).data(), R.rows(data, n, R.softmaxRow), { what: "softmax" });
    assertClose(await E.logSoftmax(x).data(), R.rows(data, n, R.logSoftmaxRow), {
      what: "logSoftmax",
      rtol: 1e-5,
      atol: 1e-4,
    });
  }
});

Deno.test("crossEntropy gathers labels, honours the mask and ignore_index", async () => {
  for (const [rows, n] of [[1, 2], [7, 5], [33, 65], [130, 17]]) {
    const logits = R.randn(rows * n, r, 3);
    const labels = R.randint(rows, n, r);
    labels[0] = -100;
    const mask = Float32Array.from({ length: rows }, () => (r() < 0.3 ? 0 : 1));
    const lt = E.tensor(logits, [rows, n]);
    const yt = E.tensor(labels, [rows]);
    const mt = E.tensor(mask, [rows]);
    assertClose(
      await E.crossEntropy(lt, yt, { reduction: "none" }).data(),
      R.crossEntropy(logits, labels, n),
      { what: "ce" },
    );
    const masked = R.crossEntropy(logits, labels, n, mask);
    assertClose(await E.crossEntropy(lt, yt, { mask: mt, reduction: "none" }).data(), masked, {
      what: "ce masked",
    });
    const weight = Array.from(labels).reduce((s, l, i) => s + (l === -100 ? 0 : mask[i]), 0);
    const mean = masked.reduce((a, b) => a + b, 0) / Math.max(weight, 1e-12);
    assertClose(await E.crossEntropy(lt, yt, { mask: mt }).data(), [mean], {
      what: "ce mean",
      rtol: 1e-4,
    });
  }
});

Deno.test("rmsNorm matches float64", async () => {
  for (const shape of [[1, 1], [3, 7], [17, 64], [2, 5, 33], [5, 12]]) {
    const n = shape[shape.length - 1];
    const x = R.randn(R.numel(shape), r, 2);
    const w = R.randn(n, r);
    const got = E.rmsNorm(E.tensor(x, shape), E.tensor(w), 1e-5);
    assertClose(await got.data(), R.rmsNorm(x, w, n, 1e-5), { what: `rmsNorm ${shape}` });
  }
});

Deno.test("rope matches float64 in both conventions", async () => {
  for (const [B, T, H, D] of [[1, 1, 1, 2], [2, 5, 3, 8], [3, 17, 2, 16]]) {
    const x = R.randn(B * T * H * D, r);
    const pos = Int32Array.from({ length: B * T }, (_, i) => (i % T) + (i >= T ? 3 : 0));
    const tables = E.ropeTables(D, 64, 10000);
    for (const interleaved of [false, true]) {
      const got = E.rope(E.tensor(x, [B, T, H, D]), E.tensor(pos, [B, T]), tables, { interleaved });
      const want = R.rope(x, pos, [B, T, H, D], 10000, interleaved);
      assertClose(await got.data(), want, { what: `rope ${interleaved}`, atol: 2e-5 });
    }
  }
});

Deno.test("attention: causal, grouped-query heads, KV-cache offset and left padding", async () => {
  const cases = [
    { B: 1, Hq: 1, Hkv: 1, Tq: 1, Tk: 1, D: 4, causal: true, qOffset: 0 },
    { B: 2, Hq: 4, Hkv: 2, Tq: 7, Tk: 7, D: 8, causal: true, qOffset: 0 },
    { B: 3, Hq: 6, Hkv: 3, Tq: 1, Tk: 9, D: 16, causal: true, qOffset: 8 },
    { B: 2, Hq: 2, Hkv: 1, Tq: 3, Tk: 10, D: 5, causal: true, qOffset: 7, keyStart: [0, 4] },
    { B: 2, Hq: 3, Hkv: 3, Tq: 5, Tk: 6, D: 3, causal: false, qOffset: 0 },
    // Keys in multiples of 4 (the vec4 softmax), masks ending inside a chunk of 4.
    { B: 2, Hq: 2, Hkv: 1, Tq: 5, Tk: 12, D: 8, causal: true, qOffset: 6, keyStart: [2, 5] },
    { B: 1, Hq: 2, Hkv: 2, Tq: 16, Tk: 16, D: 4, causal: true, qOffset: 0 },
    { B: 2, Hq: 1, Hkv: 1, Tq: 3, Tk: 8, D: 4, causal: false, qOffset: 0, keyStart: [0, 7] },
  ];
  for (const c of cases) {
    const q = R.randn(c.B * c.Hq * c.Tq * c.D, r);
    const k = R.randn(c.B * c.Hkv * c.Tk * c.D, r);
    const v = R.randn(c.B * c.Hkv * c.Tk * c.D, r);
    const got = E.attention(
      E.tensor(q, [c.B, c.Hq, c.Tq, c.D]),
      E.tensor(k, [c.B, c.Hkv, c.Tk, c.D]),
      E.tensor(v, [c.B, c.Hkv, c.Tk, c.D]),
      {
        causal: c.causal,
        qOffset: c.qOffset,
        keyStart: c.keyStart ? E.tensor(Int32Array.from(c.keyStart)) : undefined,
      },
    );
    const want = R.attention(q, k, v, [c.B, c.Hq, c.Tq, c.D], c.Hkv, c.Tk, c);
    assertClose(await got.data(), want, { what: JSON.stringify(c) });
    // Scores over the per-binding limit: the batch goes in chunks, one row each here.
    const split = E.attention(
      E.tensor(q, [c.B, c.Hq, c.Tq, c.D]),
      E.tensor(k, [c.B, c.Hkv, c.Tk, c.D]),
      E.tensor(v, [c.B, c.Hkv, c.Tk, c.D]),
      {
        causal: c.causal,
        qOffset: c.qOffset,
        keyStart: c.keyStart ? E.tensor(Int32Array.from(c.keyStart)) : undefined,
        maxScoreBytes: 1,
      },
    );
    assertClose(await split.data(), want, { what: `split ${JSON.stringify(c)}` });
  }
});

Deno.test("embedding and gatherLast pick the right rows and entries", async () => {
  const V = 13;
  const D = 5;
  const table = R.randn(V * D, r);
  const ids = R.randint(2 * 7, V, r);
  const got = E.embedding(E.tensor(table, [V, D]), E.tensor(ids, [2, 7]));
  assert.deepEqual(got.shape, [2, 7, D]);
  const want = Array.from(ids).flatMap((id) => Array.from(table.slice(id * D, id * D + D)));
  assertClose(await got.data(), want, { what: "embedding" });
  const x = R.randn(7 * V, r);
  const g = E.gatherLast(E.tensor(x, [7, V]), E.tensor(ids.slice(0, 7), [7]));
  assertClose(await g.data(), Array.from(ids.slice(0, 7), (id, i) => x[i * V + id]), {
    what: "gatherLast",
  });
});

Deno.test("slice, concat, transpose, reshape and contiguous keep values in place", async () => {
  const shape = [3, 4, 5];
  const data = Float32Array.from({ length: 60 }, (_, i) => i);
  const x = E.tensor(data, shape);
  const s = E.slice(x, [1, 0, 2], [3, 3, 5]);
  const want: number[] = [];
  for (let i = 1; i < 3; i++) {
    for (let j = 0; j < 3; j++) for (let k = 2; k < 5; k++) want.push(i * 20 + j * 5 + k);
  }
  assert.deepEqual(Array.from(await s.data()), want);
  const t = E.permute(x, [2, 0, 1]);
  assert.deepEqual(
    Array.from(await E.contiguous(t).data()),
    Array.from(R.permute(data, shape, [2, 0, 1])),
  );
  const rs = E.reshape(t, [5, -1]);
  assert.deepEqual(rs.shape, [5, 12]);
  assert.deepEqual(Array.from(await rs.data()), Array.from(R.permute(data, shape, [2, 0, 1])));
  const c = E.concat([E.narrow(x, 1, 0, 1), E.narrow(x, 1, 3, 1)], 1);
  assert.deepEqual(c.shape, [3, 2, 5]);
  assert.deepEqual(Array.from(await c.data()), [
    0,
    1,
    2,
    3,
    4,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    35,
    36,
    37,
    38,
    39,
    40,
    41,
    42,
    43,
    44,
    55,
    56,
    57,
    58,
    59,
  ]);
  const ids = E.tensor(new Int32Array([5, -7, 2 ** 31 - 1, 0]), [2, 2]);
  assert.deepEqual(Array.from(await E.transpose(ids).data()), [5, 2 ** 31 - 1, -7, 0]);
});

Deno.test("cast converts between i32 and f32", async () => {
  assert.deepEqual(Array.from(await E.cast(E.tensor(new Int32Array([-3, 0, 7])), "f32").data()), [
    -3,
    0,
    7,
  ]);
  assert.deepEqual(Array.from(await E.cast(E.tensor([-2.7, 0.2, 9.9]), "i32").data()), [-2, 0, 9]);
});
