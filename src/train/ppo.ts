/**
 * The GPU side of PPO (TRL's PPOTrainer): per-token log-probs and entropy
 * of a policy on given sequences, the clipped policy loss and the clipped
 * value loss. Sequences are right-padded [B, T]; position j scores token j+1.
 */
import * as E from "../tensor/api.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { CausalLM } from "../model/llama.ts";

/** log π(token j+1 | ..j) and the entropy at each position j < T-1, both [B, T-1]. */
export function tokenLogprobs(
  model: CausalLM,
  ids: Tensor,
  temperature = 1,
): { logp: Tensor; entropy: Tensor } {
  const [B, T] = ids.shape;
  // The last token is only a target: forwarding T-1 tokens (a multiple of 8 in a
  // rollout) keeps attention on the vec4 matmul kernels.
  const logits = model.logits(model.forward(E.contiguous(E.narrow(ids, 1, 0, T - 1))));
  const lsm = E.logSoftmax(temperature === 1 ? logits : E.affine(logits, 1 / temperature));
  const targets = E.contiguous(E.narrow(ids, 1, 1, T - 1));
  const logp = E.gatherLast(lsm, targets);
  const entropy = E.neg(E.sum(E.mul(E.exp(lsm), lsm), -1));
  void B;
  return { logp, entropy };
}

/** The value head at positions 0..T-2, [B, T-1]. */
export function tokenValues(model: CausalLM, ids: Tensor): Tensor {
  const T = ids.shape[1];
  return model.scores(model.forward(E.contiguous(E.narrow(ids, 1, 0, T - 1))));
}

/** Mean of x over the positions where mask is 1. */
export function maskedMean(x: Tensor, mask: Tensor): Tensor {
  return E.div(E.sum(E.mul(x, mask)), E.maximum(E.sum(mask), 1));
}

/** PPO-clip policy loss and its diagnostics, masked to response tokens. */
export function policyLoss(
  logp: Tensor,
  oldLogp: Tensor,
  advantages: Tensor,
  mask: Tensor,
  clip: number,
): { loss: Tensor; clipfrac: Tensor; approxKl: Tensor } {
  const ratio = E.exp(E.sub(logp, oldLogp));
  const pg1 = E.mul(E.neg(advantages), ratio);
  const pg2 = E.mul(E.neg(advantages), E.clamp(ratio, 1 - clip, 1 + clip));
  const loss = maskedMean(E.maximum(pg1, pg2), mask);
  const clipfrac = maskedMean(E.gt(E.abs(E.affine(ratio, 1, -1)), clip), mask);
  const approxKl = maskedMean(E.affine(E.square(E.sub(logp, oldLogp)), 0.5), mask);
  return { loss, clipfrac, approxKl };
}

/** Clipped value loss: 0.5 · max((v - R)², (clip(v, v_old ± ε) - R)²), masked mean. */
export function valueLoss(
  v: Tensor,
  oldV: Tensor,
  returns: Tensor,
  mask: Tensor,
  clip: number,
): Tensor {
  const vClipped = E.add(oldV, E.clamp(E.sub(v, oldV), -clip, clip));
  const l1 = E.square(E.sub(v, returns));
  const l2 = E.square(E.sub(vClipped, returns));
  return E.affine(maskedMean(E.maximum(l1, l2), mask), 0.5);
}
