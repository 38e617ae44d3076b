/** The logprob reward model: its score against float64, and its logistic fit at the optimum. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import { smallConfig } from "../src/model/config.ts";
import { CausalLM } from "../src/model/llama.ts";
import { fitLogistic, logprobScores } from "../src/train/logprob_reward.ts";
import { fitSubset } from "../src/stages/reward_train.ts";
import { assertClose } from "./support/assert.ts";
import { logSoftmaxRow, rng } from "./support/reference.ts";
import "./support/gpu.ts";

const config = smallConfig({
  vocabSize: 19,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  maxPositionEmbeddings: 64,
});

/** Float64 log π of each response token of `s` (from index `start` on), from the model's logits. */
async function responseLogprobs64(model: CausalLM, s: number[], start: number): Promise<number[]> {
  const logits = E.noGrad(() =>
    model.logits(model.forward(E.tensor(Int32Array.from(s), [1, s.length])))
  );
  const [h] = await E.readAll([logits]);
  logits.destroy();
  const out: number[] = [];
  for (let j = start; j < s.length; j++) {
    const row = Array.from(h.slice((j - 1) * config.vocabSize, j * config.vocabSize));
    out.push(logSoftmaxRow(row)[s[j]]);
  }
  return out;
}

Deno.test("logprob score = scale · mean log-prob of the response tokens + bias, as float64", async () => {
  // Random weights at std 0.3, so that log-probs differ from token to token.
  const model = CausalLM.init(config, 5, 0.3);
  const r = rng(3);
  const seqs = [9, 14, 5].map((n) => Array.from({ length: n }, () => 1 + Math.floor(r() * 18)));
  const starts = [4, 11, 1];
  const head = { kind: "logprob" as const, scale: 2.5, bias: -0.75 };
  const got = E.noGrad(() => logprobScores(model, head, seqs, starts, 0));
  const want = await Promise.all(seqs.map(async (s, b) => {
    const lp = await responseLogprobs64(model, s, starts[b]);
    return head.scale * lp.reduce((a, x) => a + x, 0) / lp.length + head.bias;
  }));
  const [scores] = await E.readAll([got]);
  assertClose(scores, want, { rtol: 1e-4, atol: 1e-4 });
  got.destroy();
  model.destroy();
});

Deno.test("min-logprob score = scale · least log-prob of a response token + bias, as float64, and its gradient reaches that token only", async () => {
  const model = CausalLM.init(config, 6, 0.3);
  const r = rng(4);
  const seqs = [9, 14, 5].map((n) => Array.from({ length: n }, () => 1 + Math.floor(r() * 18)));
  const starts = [4, 11, 1];
  const head = { kind: "logprob" as const, reduce: "min" as const, scale: 1.5, bias: 0.25 };
  const got = E.noGrad(() => logprobScores(model, head, seqs, starts, 0));
  const want = await Promise.all(
    seqs.map(async (s, b) =>
      head.scale * Math.min(...await responseLogprobs64(model, s, starts[b])) + head.bias
    ),
  );
  const [scores] = await E.readAll([got]);
  assertClose(scores, want, { rtol: 1e-4, atol: 1e-4 });
  got.destroy();
  // The score's gradient is its least likely token's log-prob gradient (scaled): that of the
  // same sequence cut after that token and scored by the mean over that one token.
  const one = [seqs[1]];
  const params = Object.values(model.params);
  const grad = async (f: () => E.Tensor) => {
    for (const p of params) {
      p.grad?.destroy();
      p.grad = null;
    }
    E.tidy(() => E.backward(E.sum(f())));
    return await E.readAll(params.map((p) => p.grad!));
  };
  const gMin = await grad(() => logprobScores(model, head, one, [starts[1]], 0));
  const lp = await responseLogprobs64(model, seqs[1], starts[1]);
  const at = starts[1] + lp.indexOf(Math.min(...lp));
  const cut = seqs[1].slice(0, at + 1);
  const gOne = await grad(() =>
    logprobScores(model, { kind: "logprob", scale: 1.5, bias: 0.25 }, [cut], [at], 0)
  );
  gMin.forEach((g, i) => assertClose(g, gOne[i], { rtol: 1e-3, atol: 1e-5 }));
  model.destroy();
});

Deno.test("the logistic fit sits at the minimum of the (balanced) BCE", () => {
  const r = rng(11);
  const x = Array.from({ length: 400 }, () => -3 * r());
  // Positives grow likelier with x; 1 in 4 positive overall.
  const y = x.map((v) => (r() < 1 / (1 + Math.exp(-(4 * v + 5))) ? 1 : 0));
  for (const balance of [false, true]) {
    const { scale, bias } = fitLogistic(x, y, balance);
    const pos = y.filter((v) => v).length;
    const loss = (a: number, b: number) =>
      x.reduce((acc, v, i) => {
        const w = balance ? (y[i] ? 0.5 / pos : 0.5 / (x.length - pos)) : 1 / x.length;
        const z = a * v + b;
        return acc + w * (Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))) - y[i] * z);
      }, 0) + 1e-4 * a * a / 2;
    const best = loss(scale, bias);
    for (const [da, db] of [[1e-3, 0], [-1e-3, 0], [0, 1e-3], [0, -1e-3]]) {
      assert.ok(loss(scale + da, bias + db) > best, `balance ${balance}: a step of ${da},${db}`);
    }
    assert.ok(scale > 1, `balance ${balance}: scale ${scale}`);
  }
});

Deno.test("reward.fitRows: the fit's rows are at most that many, evenly spread, and fit as all do", () => {
  for (const n of [0, 1, 1000, 1024, 1025, 5000, 9000]) {
    const rows = Array.from({ length: n }, (_, i) => i);
    const got = fitSubset(rows, 1024);
    assert.ok(got.length <= 1024, `${n} rows: ${got.length} kept`);
    if (n <= 1024) assert.deepEqual(got, rows);
    else {
      const gap = got[1] - got[0];
      assert.ok(got.every((v, i) => v === i * gap), `${n} rows: even gaps of ${gap}`);
      assert.ok(got.length > 512 && got.at(-1)! + 2 * gap > n, `${n} rows: spread to the end`);
    }
  }
  // Two parameters from 1,024 of 8,192 responses: near the fit on all of them.
  const r = rng(12);
  const x = Array.from({ length: 8192 }, () => -3 * r());
  const y = x.map((v) => (r() < 1 / (1 + Math.exp(-(4 * v + 5))) ? 1 : 0));
  const all = fitLogistic(x, y, true);
  const few = fitLogistic(fitSubset(x, 1024), fitSubset(y, 1024), true);
  assert.ok(Math.abs(few.scale / all.scale - 1) < 0.2, `scale ${few.scale} vs ${all.scale}`);
  assert.ok(
    Math.abs(few.bias - all.bias) < 0.2 * Math.abs(all.bias),
    `bias ${few.bias} vs ${all.bias}`,
  );
});
