/** Next-token loss of a causal LM on a packed batch. */
import * as E from "../tensor/api.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { CausalLM } from "../model/llama.ts";
import type { LmBatch } from "./batch.ts";
import { gpu } from "../gpu/mod.ts";

/**
 * Mean cross-entropy over the batch's unmasked positions. The logits of all
 * positions are one buffer; where that would pass the adapter's per-binding
 * limit (a 151,936-word vocabulary at 8 × 512 tokens is 2.5 GB, over an
 * H200's 2 GiB), the head and the loss run over chunks of positions and the
 * chunk sums are added, which gives the same loss and gradients.
 */
export function lmLoss(
  model: CausalLM,
  batch: LmBatch,
  opts: { maxLogitBytes?: number } = {},
): Tensor {
  const ids = E.tensor(batch.ids, [batch.B, batch.T]);
  const labels = E.tensor(batch.labels, [batch.B, batch.T]);
  const hidden = model.forward(ids);
  const rows = batch.B * batch.T;
  const rowBytes = model.config.vocabSize * 4;
  const maxBytes = opts.maxLogitBytes ?? gpu().device.limits.maxStorageBufferBindingSize;
  if (rows * rowBytes <= maxBytes) return E.crossEntropy(model.logits(hidden), labels);

  const h = E.reshape(hidden, [rows, hidden.shape[2]]);
  const y = E.reshape(labels, [rows]);
  const per = Math.max(1, Math.floor(maxBytes / rowBytes));
  let total: Tensor | null = null;
  for (let at = 0; at < rows; at += per) {
    const n = Math.min(per, rows - at);
    const part = E.crossEntropy(model.logits(E.narrow(h, 0, at, n)), E.narrow(y, 0, at, n), {
      reduction: "sum",
    });
    total = total ? E.add(total, part) : part;
  }
  const counted = E.sum(E.ne(E.cast(labels, "f32"), -100));
  return E.div(total!, E.maximum(counted, 1e-12));
}
