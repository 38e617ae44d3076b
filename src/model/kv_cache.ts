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
    this.maxLen = maxLen;
    const shape = [batch, config.numKvHeads, maxLen, config.headDim];
    this.k = Array.from({ length: config.numLayers }, () => keep(E.zeros(shape)));
    this.v = Array.from({ length: config.numLayers }, () => keep(E.zeros(shape)));
  }

  /** Writes this step's k, v [B, kvHeads, T, D] and returns views of all positions so far. */
  update(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    const T = k.shape[2];
    if (this.length + T > this.maxLen) {
      throw new OpError(`KV cache: ${this.length} + ${T} positions exceed its ${this.maxLen}`);
    }
    E.assign(E.narrow(this.k[layer], 2, this.length, T), k);
    E.assign(E.narrow(this.v[layer], 2, this.length, T), v);
    return [
      E.narrow(this.k[layer], 2, 0, this.length + T),
      E.narrow(this.v[layer], 2, 0, this.length + T),
    ];
  }

  /** Called once per forward, after every layer has written its T positions. */
  advance(T: number): void {
    this.length += T;
  }

  destroy(): void {
    for (const t of [...this.k, ...this.v]) t.destroy();
  }
}
