/**
 * A reward model that scores a response by how likely its own language
 * model finds it: score = scale · (mean log-prob of the response tokens) +
 * bias. A causal LM sees a wrong digit as an unlikely token, which a score
 * head on the last token does not learn to see at our scale (its training
 * loss stayed at ln 2; docs/effect.md). The LM is fine-tuned with the same
 * BCE as the score head, and scale and bias are a logistic fit on the
 * labelled training responses.
 */
import * as E from "../tensor/api.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { CausalLM } from "../model/llama.ts";
import { padRows } from "./batch.ts";
import { tokenLogprobs } from "./ppo.ts";

/** How the logprob reward model turns a response's log-probs into a score (a logit). */
export interface LogprobHead {
  kind: "logprob";
  /**
   * mean: the mean log-prob of the response tokens; min: the least likely one's, so that a
   * response is as good as its weakest step (the min aggregation of process reward models,
   * Lightman et al. 2023), and a short response is not favoured for being short. Absent: mean.
   */
  reduce?: "mean" | "min";
  scale: number;
  bias: number;
}

/**
 * log π(token) at every position [B, T - 1] (position j scores token j + 1), which positions
 * score a response token (`starts[b]` is the index of the first one: the prompt's length), and
 * how many each sequence has.
 */
function responseLogprobs(model: CausalLM, seqs: number[][], starts: number[], pad: number) {
  const B = seqs.length;
  const { ids, T } = padRows(seqs, pad);
  const mask = new Float32Array(B * (T - 1));
  const counts = new Float32Array(B);
  seqs.forEach((s, b) => {
    for (let j = Math.max(starts[b], 1) - 1; j < s.length - 1; j++) {
      mask[b * (T - 1) + j] = 1;
      counts[b]++;
    }
  });
  const { logp } = tokenLogprobs(model, E.tensor(ids, [B, T]));
  return { logp, mask, counts, shape: [B, T - 1] };
}

/** Masked positions lose every max: below any log-prob a float32 softmax gives. */
const NOT_A_RESPONSE_TOKEN = -1e4;

/**
 * The mean, or the least, log π(token) over each sequence's response tokens, [B] (0 for a
 * sequence without response tokens). The least one's gradient reaches that one token.
 */
export function responseLogprob(
  model: CausalLM,
  seqs: number[][],
  starts: number[],
  pad: number,
  reduce: "mean" | "min" = "mean",
): Tensor {
  const { logp, mask, counts, shape } = responseLogprobs(model, seqs, starts, pad);
  if (reduce === "mean") {
    const total = E.sum(E.mul(logp, E.tensor(mask, shape)), -1);
    return E.div(total, E.tensor(counts.map((c) => Math.max(c, 1))));
  }
  const perRow = shape[1];
  const offset = mask.map((m, i) =>
    m || !counts[Math.floor(i / perRow)] ? 0 : NOT_A_RESPONSE_TOKEN
  );
  // min x = −max(−x), over the response's positions only.
  const negated = E.add(E.mul(E.affine(logp, -1), E.tensor(mask, shape)), E.tensor(offset, shape));
  return E.affine(E.max(negated, -1), -1);
}

/** The score (a logit) of each sequence under a logprob reward model, [B]. */
export function logprobScores(
  model: CausalLM,
  head: LogprobHead,
  seqs: number[][],
  starts: number[],
  pad: number,
): Tensor {
  return E.affine(responseLogprob(model, seqs, starts, pad, head.reduce), head.scale, head.bias);
}

const RIDGE = 1e-4;

/**
 * Logistic regression of y on one feature x by Newton's method, in float64:
 * the scale and bias that minimise the (optionally class-balanced) mean BCE.
 * Balanced, each class weighs half, as the balanced batches of the score head.
 * A ridge of 1e-4 · scale² / 2 bounds the fit on separable data.
 */
export function fitLogistic(x: ArrayLike<number>, y: ArrayLike<number>, balance: boolean) {
  const n = x.length;
  const pos = Array.from(y).filter((v) => v === 1).length;
  const w = (i: number) =>
    balance && pos > 0 && pos < n ? (y[i] === 1 ? 0.5 / pos : 0.5 / (n - pos)) : 1 / n;
  let a = 0;
  let b = 0;
  for (let iter = 0; iter < 50; iter++) {
    let ga = 0, gb = 0, haa = 0, hab = 0, hbb = 0;
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-(a * x[i] + b)));
      const wi = w(i);
      const r = wi * (p - y[i]);
      ga += r * x[i];
      gb += r;
      const h = wi * p * (1 - p);
      haa += h * x[i] * x[i];
      hab += h * x[i];
      hbb += h;
    }
    // An L2 penalty on the scale keeps separable data from sending it to infinity.
    ga += RIDGE * a;
    haa += RIDGE;
    const det = haa * hbb - hab * hab;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    a -= da;
    b -= db;
    if (Math.abs(da) + Math.abs(db) < 1e-10) break;
  }
  return { scale: a, bias: b };
}
