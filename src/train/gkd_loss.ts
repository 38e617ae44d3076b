/**
 * The generalised Jensen-Shannon divergence of on-policy distillation (GKD, Agarwal et al. 2024),
 * with TRL's `generalized_jsd_loss` semantics: both logits divided by `temperature`; with
 * M = (1 - beta) * student + beta * teacher per position,
 *   beta = 0: KL(teacher || student)  (forward KL),
 *   beta = 1: KL(student || teacher)  (reverse KL),
 *   else:     beta * KL(teacher || M) + (1 - beta) * KL(student || M),
 * summed over the vocabulary and averaged over the positions `mask` keeps.
 */
import * as E from "../tensor/api.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** `student` and `teacher` [N, V] logits, `mask` [N] (1: a response position); a scalar. */
export function gkdLoss(
  student: Tensor,
  teacher: Tensor,
  mask: Tensor,
  beta: number,
  temperature: number,
): Tensor {
  const s = E.logSoftmax(E.affine(student, 1 / temperature));
  const t = E.logSoftmax(E.affine(teacher, 1 / temperature));
  // KL(p || q) per row from log-probabilities, summed over the vocabulary.
  const kl = (logP: Tensor, logQ: Tensor) => E.sum(E.mul(E.exp(logP), E.sub(logP, logQ)), -1);
  let perRow: Tensor;
  if (beta === 0) perRow = kl(t, s);
  else if (beta === 1) perRow = kl(s, t);
  else {
    // The mixture's probabilities, floored where both underflow (the weights are ~0 there).
    const m = E.log(
      E.clamp(E.add(E.affine(E.exp(s), 1 - beta), E.affine(E.exp(t), beta)), 1e-37, 1),
    );
    perRow = E.add(E.affine(kl(t, m), beta), E.affine(kl(s, m), 1 - beta));
  }
  return E.div(E.sum(E.mul(perRow, mask)), E.maximum(E.sum(mask), 1));
}
