/**
 * IMPL: for every primitive op, the function that checks its inputs, sizes
 * its output and records its kernels. Keyed by the op list in ops.ts.
 */
import { BINARY, COMPARE, type OpAttrs, type OpName, UNARY, UNARY_HELPERS } from "./ops.ts";
import type { Tensor } from "./tensor.ts";
import { binary, cast, unary, where } from "./impl/elementwise.ts";
import { concat, contiguous, expand, pad, permute, reshape, slice } from "./impl/views.ts";
import {
  argmax,
  attentionSoftmax,
  crossEntropy,
  crossEntropyBackward,
  decodeAttention,
  reduce,
  rmsNorm,
  rmsNormBackwardW,
  rmsNormBackwardX,
  rope,
  sample,
  softmax,
  softmaxBackward,
} from "./impl/rows.ts";
import { embedding, embeddingBackward, gatherLast, scatterLast } from "./impl/indexing.ts";
import { matmul } from "./impl/matmul.ts";
import { attentionBackwardKV, attentionBackwardQ, fusedAttention } from "./impl/attention.ts";

export type OpImpl<K extends OpName> = (inputs: Tensor[], attrs: OpAttrs[K]) => Tensor;

type Table = { [K in OpName]: OpImpl<K> };

const elementwise = Object.fromEntries([
  ...Object.keys(UNARY).map((op) => [op, unary(op)]),
  ...Object.keys(UNARY_HELPERS).map((op) => [op, unary(op)]),
  ...Object.keys(BINARY).map((op) => [op, binary(op)]),
  ...Object.keys(COMPARE).map((op) => [op, binary(op)]),
]) as Pick<
  Table,
  keyof typeof UNARY | keyof typeof UNARY_HELPERS | keyof typeof BINARY | keyof typeof COMPARE
>;

export const IMPL: Table = {
  ...elementwise,
  where,
  contiguous,
  cast,
  reshape,
  permute,
  slice,
  expand,
  pad,
  concat,
  sum: reduce(false),
  max: reduce(true),
  argmax,
  softmax: softmax(false),
  logSoftmax: softmax(true),
  softmaxBackward,
  attentionSoftmax,
  decodeAttention,
  fusedAttention,
  attentionBackwardQ,
  attentionBackwardKV,
  crossEntropy,
  crossEntropyBackward,
  rmsNorm,
  rmsNormBackwardX,
  rmsNormBackwardW,
  rope,
  embedding,
  embeddingBackward,
  gatherLast,
  scatterLast,
  matmul,
  sample,
};
