/**
 * Reward-model losses on a scalar head: pointwise binary cross-entropy on
 * the last token's score, and an optional pairwise Bradley–Terry term.
 */
import * as E from "../tensor/api.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** log(1 + e^x), stable for large |x|: max(x, 0) + log(1 + e^-|x|). */
export function softplus(x: Tensor): Tensor {
  return E.add(E.relu(x), E.log(E.affine(E.exp(E.neg(E.abs(x))), 1, 1)));
}

/** Mean BCE-with-logits of scores s [N] against labels y [N] in {0, 1}. */
export function bceWithLogits(s: Tensor, y: Tensor): Tensor {
  return E.mean(E.sub(softplus(s), E.mul(y, s)));
}

/** Mean -log σ(s_pos - s_neg) over pairs. */
export function bradleyTerry(sPos: Tensor, sNeg: Tensor): Tensor {
  return E.mean(softplus(E.sub(sNeg, sPos)));
}
