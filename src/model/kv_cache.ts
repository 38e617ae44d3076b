/**
 * Keys and values of past positions, one [B, kvHeads, maxLen, headDim]
 * buffer per layer, written in place so that decoding a token costs no copy
 * of the past.
 */
import { OpError } from "../errors.ts";
import * as E from "../tensor/api.ts";
import { keep, type Tensor } from "../tensor/tensor.ts";
import type { ModelConfig } from "./config.ts";

export class KVCache {
  readonly k: Tensor[];
  readonly v: Tensor[];
  readonly maxLen: number;
  /** Positions filled so far. */
  length = 0;

  constructor(config: ModelConfig, readonly batch: number, maxLen: number) {
    // A multiple of 8 keeps attention on the vec4 matmul kernels.
    this.maxLen = Math.ceil(maxLen / 8) * 8;
    const shape = [batch, config.numKvHeads, this.maxLen, config.headDim];
    this.k = Array.from({ length: config.numLayers }, () => keep(E.zeros(shape)));
    this.v = Array.from({ length: config.numLayers }, () => keep(E.zeros(shape)));
  }

  /**
   * Writes this step's k, v [B, kvHeads, T, D] and returns the whole cache:
   * positions not yet written are masked by attention's causal mask, and a
   * fixed key length keeps every decode step's kernels and bind groups the same.
   */
  update(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    const T = k.shape[2];
    if (this.length + T > this.maxLen) {
      throw new OpError(`KV cache: ${this.length} + ${T} positions exceed its ${this.maxLen}`);
    }
    E.assign(E.narrow(this.k[layer], 2, this.length, T), k);
    E.assign(E.narrow(this.v[layer], 2, this.length, T), v);
    return [this.k[layer], this.v[layer]];
  }

  /** Called once per forward, after every layer has written its T positions. */
  advance(T: number): void {
    this.length += T;
  }

  /** Fills every row b with row rows[b] of `src` (a cache of the same length and layers). */
  copyRows(src: KVCache, rows: Tensor): void {
    if (src.maxLen !== this.maxLen || rows.shape[0] !== this.batch) {
      throw new OpError(
        `KV cache: copying ${
          rows.shape[0]
        } rows of a ${src.maxLen}-position cache into ${this.batch} of ${this.maxLen}`,
      );
    }
    const copy = (dst: Tensor, from: Tensor) =>
      E.assign(dst, E.reshape(E.embedding(E.reshape(from, [src.batch, -1]), rows), dst.shape));
    this.k.forEach((k, l) => copy(k, src.k[l]));
    this.v.forEach((v, l) => copy(v, src.v[l]));
    this.length = src.length;
  }

  destroy(): void {
    for (const t of [...this.k, ...this.v]) t.destroy();
  }
}
