/** On-policy distillation's loss (TRL's generalized_jsd_loss) against a float64 reference. */
import { gkdLoss } from "../src/train/gkd_loss.ts";
import { gradcheck } from "./support/gradcheck.ts";
import { logSoftmaxRow, randn, rng } from "./support/reference.ts";
import "./support/gpu.ts";

const N = 5;
const V = 7;

/** TRL's formula in float64: per-position divergences over the vocabulary, masked mean. */
function reference(
  s: Float64Array,
  t: Float64Array,
  mask: Float64Array,
  beta: number,
  temp: number,
) {
  let total = 0;
  let count = 0;
  for (let n = 0; n < N; n++) {
    const ls = logSoftmaxRow(Array.from(s.subarray(n * V, n * V + V), (x) => x / temp));
    const lt = logSoftmaxRow(Array.from(t.subarray(n * V, n * V + V), (x) => x / temp));
    const kl = (p: number[], q: number[]) =>
      p.reduce((a, lp, v) => a + Math.exp(lp) * (lp - q[v]), 0);
    let d: number;
    if (beta === 0) d = kl(lt, ls);
    else if (beta === 1) d = kl(ls, lt);
    else {
      // log((1 - beta) e^s + beta e^t), by log-sum-exp as TRL computes it.
      const lm = ls.map((x, v) => {
        const a = x + Math.log(1 - beta);
        const b = lt[v] + Math.log(beta);
        const hi = Math.max(a, b);
        return hi + Math.log(Math.exp(a - hi) + Math.exp(b - hi));
      });
      d = beta * kl(lt, lm) + (1 - beta) * kl(ls, lm);
    }
    total += mask[n] * d;
    count += mask[n];
  }
  return [total / Math.max(count, 1)];
}

for (const beta of [0, 0.5, 1, 0.1]) {
  Deno.test(`gkdLoss beta ${beta}: value and student gradient against float64`, async () => {
    const r = rng(11 + beta * 10);
    const student = randn(N * V, r, 2);
    const teacher = randn(N * V, r, 2);
    const mask = new Float32Array([1, 1, 0, 1, 1]);
    await gradcheck(
      `gkd beta ${beta}`,
      [
        { data: student, shape: [N, V] },
        { data: teacher, shape: [N, V], grad: false },
        { data: mask, shape: [N], grad: false },
      ],
      (s, t, m) => gkdLoss(s, t, m, beta, 0.9),
      (s, t, m) => reference(s, t, m, beta, 0.9),
    );
  });
}
