/** Whole training loops: falling loss, bit-exact reruns, flat memory, one submit per step. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import { gpu } from "./support/gpu.ts";
import { randint, randn, rng } from "./support/reference.ts";
import {
  mlpLoss,
  mlpParams,
  type Params,
  type TransformerConfig,
  transformerLoss,
  transformerParams,
} from "./support/tiny_models.ts";

function destroyAll(p: Params) {
  for (const t of Object.values(p)) t.destroy();
}

/** Two Gaussian blobs per class in 8-D, labelled by class. */
function blobs(n: number, seed: number) {
  const r = rng(seed);
  const x = randn(n * 8, r, 0.5);
  const y = randint(n, 4, r);
  for (let i = 0; i < n; i++) x[i * 8 + y[i]] += 2;
  return { x, y };
}

async function trainMlp(seed: number, steps: number): Promise<number[]> {
  const p = mlpParams(8, 32, 4, seed);
  const opt = new E.AdamW(Object.values(p), { lr: 0.02, weightDecay: 0.01, maxGradNorm: 1 });
  const { x, y } = blobs(256, seed + 1);
  const xt = E.keep(E.tensor(x, [256, 8]));
  const yt = E.keep(E.tensor(y, [256]));
  const losses: E.Tensor[] = [];
  for (let s = 0; s < steps; s++) {
    losses.push(E.tidy(() => {
      const loss = mlpLoss(p, xt, yt);
      E.backward(loss);
      opt.stepUpdate();
      opt.zeroGrad();
      return E.keep(loss);
    }));
  }
  const values = (await E.readAll(losses)).map((v) => v[0]);
  [...losses, xt, yt].forEach((t) => t.destroy());
  opt.destroy();
  destroyAll(p);
  return values;
}

Deno.test("a 2-layer MLP trains for 50 steps with falling loss, bit-identically on rerun", async () => {
  const a = await trainMlp(3, 50);
  assert.ok(a[49] < 0.3 * a[0], `loss ${a[0]} -> ${a[49]}`);
  assert.ok(a.slice(40).every((v) => v < a[0]));
  const b = await trainMlp(3, 50);
  assert.deepEqual(b, a);
});

const CFG: TransformerConfig = { vocab: 16, dim: 32, heads: 4, kvHeads: 2, hidden: 64, maxPos: 32 };

/** Sequences that follow a fixed random permutation of the vocabulary: learnable from one token. */
function sequences(batch: number, len: number, seed: number): Int32Array {
  const r = rng(seed);
  const next = Array.from({ length: CFG.vocab }, (_, i) => i).sort(() => r() - 0.5);
  const out = new Int32Array(batch * len);
  for (let b = 0; b < batch; b++) {
    let t = Math.floor(r() * CFG.vocab);
    for (let i = 0; i < len; i++) {
      out[b * len + i] = t;
      t = next[t];
    }
  }
  return out;
}

class TransformerRun {
  p: Params;
  opt: E.AdamW;
  tables: { cos: E.Tensor; sin: E.Tensor };
  ids: E.Tensor;
  constructor(seed: number) {
    this.p = transformerParams(CFG, seed);
    this.opt = new E.AdamW(Object.values(this.p), { lr: 0.01, maxGradNorm: 1 });
    this.tables = E.ropeTables(CFG.dim / CFG.heads, CFG.maxPos);
    E.keep(this.tables.cos);
    E.keep(this.tables.sin);
    this.ids = E.keep(E.tensor(sequences(8, 17, seed), [8, 17]));
  }
  step(): E.Tensor {
    return E.tidy(() => {
      const loss = transformerLoss(this.p, CFG, this.ids, this.tables);
      E.backward(loss);
      this.opt.stepUpdate();
      this.opt.zeroGrad();
      return E.keep(loss);
    });
  }
  destroy() {
    destroyAll(this.p);
    this.opt.destroy();
    [this.tables.cos, this.tables.sin, this.ids].forEach((t) => t.destroy());
  }
}

Deno.test("a 1-layer transformer trains for 50 steps with falling loss, bit-identically on rerun", async () => {
  const run = async () => {
    const t = new TransformerRun(11);
    const losses: E.Tensor[] = [];
    for (let s = 0; s < 50; s++) losses.push(t.step());
    const values = (await E.readAll(losses)).map((v) => v[0]);
    losses.forEach((l) => l.destroy());
    t.destroy();
    return values;
  };
  const a = await run();
  assert.ok(a[0] > 2 && a[49] < 0.5 * a[0], `loss ${a[0]} -> ${a[49]}`);
  assert.deepEqual(await run(), a);
});

Deno.test("a training step is one submit, and reuses its bind groups and buffers", async () => {
  const t = new TransformerRun(5);
  await t.step().data();
  const rec = gpu.recorder;
  const submits = rec.submits;
  const allocated = gpu.pool.allocatedBytes;
  const loss = t.step();
  rec.flush();
  assert.equal(rec.submits - submits, 1);
  assert.equal(gpu.pool.allocatedBytes, allocated);
  loss.destroy();
  t.destroy();
});

Deno.test("memory stays flat over 1,000 transformer steps", async () => {
  const t = new TransformerRun(7);
  let at10 = -1;
  let alloc10 = -1;
  for (let s = 1; s <= 1000; s++) {
    const loss = t.step();
    // An occasional readback keeps the CPU from queueing far ahead of the GPU.
    if (s % 100 === 0) await loss.data();
    loss.destroy();
    if (s === 10) {
      at10 = gpu.pool.liveBytes;
      alloc10 = gpu.pool.allocatedBytes;
    }
  }
  assert.equal(gpu.pool.liveBytes, at10);
  assert.equal(gpu.pool.allocatedBytes, alloc10);
  t.destroy();
});
