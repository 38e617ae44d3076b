/**
 * Two small models written with the public ops, for the engine's training
 * tests: a 2-layer MLP and a 1-layer Llama-style transformer.
 */
import * as E from "../../mod.ts";
import { randn, rng } from "./reference.ts";

export type Params = Record<string, E.Tensor>;

function param(shape: number[], r: () => number, scale: number): E.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return E.keep(E.requiresGrad(E.tensor(randn(size, r, scale), shape)));
}

export function mlpParams(inDim: number, hidden: number, outDim: number, seed: number): Params {
  const r = rng(seed);
  return {
    w1: param([hidden, inDim], r, 1 / Math.sqrt(inDim)),
    b1: param([hidden], r, 0),
    w2: param([outDim, hidden], r, 1 / Math.sqrt(hidden)),
    b2: param([outDim], r, 0),
  };
}

export function mlpLoss(p: Params, x: E.Tensor, labels: E.Tensor): E.Tensor {
  const h = E.gelu(E.linear(x, p.w1, p.b1));
  return E.crossEntropy(E.linear(h, p.w2, p.b2), labels);
}

export interface TransformerConfig {
  vocab: number;
  dim: number;
  heads: number;
  kvHeads: number;
  hidden: number;
  maxPos: number;
}

export function transformerParams(c: TransformerConfig, seed: number): Params {
  const r = rng(seed);
  const hd = c.dim / c.heads;
  const s = 1 / Math.sqrt(c.dim);
  const ones = (n: number) => E.keep(E.requiresGrad(E.ones([n])));
  return {
    embed: param([c.vocab, c.dim], r, 1),
    norm1: ones(c.dim),
    wq: param([c.heads * hd, c.dim], r, s),
    wk: param([c.kvHeads * hd, c.dim], r, s),
    wv: param([c.kvHeads * hd, c.dim], r, s),
    wo: param([c.dim, c.heads * hd], r, s),
    norm2: ones(c.dim),
    w1: param([c.hidden, c.dim], r, s),
    w3: param([c.hidden, c.dim], r, s),
    w2: param([c.dim, c.hidden], r, 1 / Math.sqrt(c.hidden)),
    normf: ones(c.dim),
    head: param([c.vocab, c.dim], r, s),
  };
}

/** Mean next-token loss of ids [B, T+1]. */
export function transformerLoss(
  p: Params,
  c: TransformerConfig,
  ids: E.Tensor,
  tables: { cos: E.Tensor; sin: E.Tensor },
): E.Tensor {
  const [B, T1] = ids.shape;
  const T = T1 - 1;
  const hd = c.dim / c.heads;
  const input = E.narrow(ids, 1, 0, T);
  const target = E.narrow(ids, 1, 1, T);
  const pos = E.tensor(Int32Array.from({ length: B * T }, (_, i) => i % T), [B, T]);

  let x = E.embedding(p.embed, input);
  const h = E.rmsNorm(x, p.norm1, 1e-5);
  const heads = (w: E.Tensor, n: number) =>
    E.permute(E.rope(E.reshape(E.linear(h, w), [B, T, n, hd]), pos, tables), [0, 2, 1, 3]);
  const q = heads(p.wq, c.heads);
  const k = heads(p.wk, c.kvHeads);
  const v = E.permute(E.reshape(E.linear(h, p.wv), [B, T, c.kvHeads, hd]), [0, 2, 1, 3]);
  const a = E.attention(q, E.contiguous(k), E.contiguous(v), { causal: true });
  x = E.add(x, E.linear(E.reshape(E.permute(a, [0, 2, 1, 3]), [B, T, c.dim]), p.wo));
  const h2 = E.rmsNorm(x, p.norm2, 1e-5);
  x = E.add(x, E.linear(E.mul(E.silu(E.linear(h2, p.w1)), E.linear(h2, p.w3)), p.w2));
  const logits = E.linear(E.rmsNorm(x, p.normf, 1e-5), p.head);
  return E.crossEntropy(logits, E.contiguous(target));
}
