/** Next-token loss of a causal LM on a packed batch. */
import * as E from "../tensor/api.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { CausalLM } from "../model/llama.ts";
import type { LmBatch } from "./batch.ts";

/** Mean cross-entropy over the batch's unmasked positions. */
export function lmLoss(model: CausalLM, batch: LmBatch): Tensor {
  const ids = E.tensor(batch.ids, [batch.B, batch.T]);
  const labels = E.tensor(batch.labels, [batch.B, batch.T]);
  return E.crossEntropy(model.logits(model.forward(ids)), labels);
}
