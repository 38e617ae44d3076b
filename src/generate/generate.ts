/**
 * Batched sampling with a KV cache. The decode loop stays on the GPU: each
 * sampled token feeds the next step as a GPU tensor, tokens and log-probs
 * collect in GPU buffers, and the host reads them back only every
 * `checkEvery` steps, to learn which sequences have finished.
 */
import { OpError } from "../errors.ts";
import { noGrad } from "../autograd/tape.ts";
import * as E from "../tensor/api.ts";
import { keep, readAll, type Tensor, tidy } from "../tensor/tensor.ts";
import { KVCache } from "../model/kv_cache.ts";
import type { CausalLM } from "../model/llama.ts";

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Generation stops at any of these ids (kept in `ids`, not in `text`). */
  eosTokenIds?: number[];
  /** Generation stops when the text contains one (cut from `text` and `ids`). */
  stopStrings?: string[];
  /** Left-padding id; any id works since padded keys are masked. */
  padTokenId?: number;
  /** Decode steps between host checks for finished sequences. */
  checkEvery?: number;
  /**
   * Called at each host check with every row's tokens so far (for streaming;
   * rows may run past their EOS, which the final result cuts).
   */
  onTokens?: (rows: number[][]) => void;
  /** Rows with the same prompt run its prefill once (default true; false: once per row). */
  sharePrefill?: boolean;
}

export interface Generation {
  /** The new tokens only. */
  ids: number[];
  text: string;
  /** log p(token) under softmax(logits / temperature), per new token. */
  logprobs: number[];
  finishReason: "eos" | "stop" | "length";
}

export interface Decoder {
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
}

/** Samples a continuation of every prompt (token ids), all in one batch. */
export async function generate(
  model: CausalLM,
  decoder: Decoder,
  prompts: number[][],
  opts: GenerateOptions,
): Promise<Generation[]> {
  const B = prompts.length;
  if (B === 0) return [];
  if (prompts.some((p) => p.length === 0)) throw new OpError("generate: a prompt is empty");
  const maxNew = opts.maxNewTokens;
  // Padded to a multiple of 8 for the vec4 matmul kernels.
  const P = Math.ceil(Math.max(...prompts.map((p) => p.length)) / 8) * 8;
  const limit = model.config.maxPositionEmbeddings;
  if (P + maxNew > limit) {
    throw new OpError(
      `generate: ${P} prompt + ${maxNew} new tokens exceed the model's ${limit} positions`,
    );
  }
  const temperature = opts.temperature ?? 1;
  const eos = new Set(opts.eosTokenIds ?? model.config.eosTokenIds);
  const stops = opts.stopStrings ?? [];
  const checkEvery = opts.checkEvery ?? 16;

  // Left padding: every prompt ends at position P - 1 of the batch.
  const pad = opts.padTokenId ?? 0;
  const keyStartHost = prompts.map((p) => P - p.length);
  const ids = new Int32Array(B * P).fill(pad);
  const pos = new Int32Array(B * P);
  prompts.forEach((p, b) => {
    ids.set(p, b * P + keyStartHost[b]);
    for (let t = 0; t < P; t++) pos[b * P + t] = Math.max(0, t - keyStartHost[b]);
  });

  const cache = new KVCache(model.config, B, P + maxNew);
  const keyStart = keep(E.tensor(Int32Array.from(keyStartHost)));
  const outIds = keep(E.zeros([B, maxNew], "i32"));
  const outLp = keep(E.zeros([B, maxNew]));
  let token: Tensor | null = null;
  const finished = new Array<boolean>(B).fill(false);

  const lastRow = (hidden: Tensor) =>
    E.reshape(E.narrow(hidden, 1, hidden.shape[1] - 1, 1), [
      hidden.shape[0],
      model.config.hiddenSize,
    ]);
  // Samples step s's token of every row from its last hidden state [B, hidden].
  const pick = (last: Tensor, s: number) => {
    const logits = model.logits(last);
    const t = E.sample(logits, {
      temperature,
      topK: opts.topK,
      topP: opts.topP,
      seed: opts.seed,
      counter: s,
    });
    const scaled = temperature > 0 && temperature !== 1
      ? E.affine(logits, 1 / temperature)
      : logits;
    const lp = E.gatherLast(E.logSoftmax(scaled), t);
    E.assign(E.narrow(outIds, 1, s, 1), E.reshape(t, [B, 1]));
    E.assign(E.narrow(outLp, 1, s, 1), E.reshape(lp, [B, 1]));
    return t;
  };
  const setToken = (next: Tensor) => {
    token?.destroy();
    token = keep(next);
  };
  const step = (input: Tensor, positions: Tensor, s: number) =>
    setToken(tidy(() => pick(lastRow(model.forward(input, { positions, keyStart, cache })), s)));
  // Rows that repeat a prompt (n samples of a question) share its prefill, the costliest forward:
  // it runs once per distinct prompt, and each row gets a copy of its prompt's keys, values and
  // last hidden state: the same numbers as its own prefill wherever a matmul row's sum does not
  // depend on how many rows it is batched with (the CPU adapter; split-K on a GPU may round apart).
  const prefill = () => {
    const { distinct, rowOf } = distinctPrompts(prompts);
    if (distinct.length === B || opts.sharePrefill === false) {
      return step(E.tensor(ids, [B, P]), E.tensor(pos, [B, P]), 0);
    }
    const U = distinct.length;
    const shared = new KVCache(model.config, U, P + maxNew);
    try {
      setToken(tidy(() => {
        const ofDistinct = (t: Int32Array) =>
          Int32Array.from(distinct.flatMap((b) => [...t.subarray(b * P, (b + 1) * P)]));
        const hidden = model.forward(E.tensor(ofDistinct(ids), [U, P]), {
          positions: E.tensor(ofDistinct(pos), [U, P]),
          keyStart: E.tensor(Int32Array.from(distinct, (b) => keyStartHost[b])),
          cache: shared,
        });
        const rows = E.tensor(rowOf);
        cache.copyRows(shared, rows);
        return pick(E.embedding(lastRow(hidden), rows), 0);
      }));
    } finally {
      shared.destroy();
    }
  };

  let done = 0;
  try {
    noGrad(() => tidy(prefill));
    done = 1;
    while (done < maxNew) {
      const s = done;
      noGrad(() =>
        tidy(() => {
          const positions = E.tensor(Int32Array.from(keyStartHost, (k) => P + s - 1 - k), [B, 1]);
          step(E.reshape(token!, [B, 1]), positions, s);
        })
      );
      done++;
      if (done % checkEvery === 0 && done < maxNew) {
        const [host] = await readAll([outIds]);
        opts.onTokens?.(
          prompts.map((_, b) => Array.from(host.subarray(b * maxNew, b * maxNew + done))),
        );
        if (markFinished(host as Int32Array, maxNew, done, finished, eos, stops, decoder)) break;
      }
    }
    const [idsHost, lpHost] = await readAll([outIds, outLp]);
    return prompts.map((_, b) => {
      const row = Array.from((idsHost as Int32Array).subarray(b * maxNew, b * maxNew + done));
      const lps = Array.from((lpHost as Float32Array).subarray(b * maxNew, b * maxNew + done));
      return finish(row, lps, eos, stops, decoder);
    });
  } finally {
    (token as Tensor | null)?.destroy();
    [keyStart, outIds, outLp].forEach((t) => t.destroy());
    cache.destroy();
  }
}

/** The first row of each distinct prompt, and each row's index among them. */
export function distinctPrompts(prompts: number[][]): { distinct: number[]; rowOf: Int32Array } {
  const index = new Map<string, number>();
  const distinct: number[] = [];
  const rowOf = Int32Array.from(prompts, (p, b) => {
    const key = p.join(",");
    let u = index.get(key);
    if (u === undefined) {
      u = distinct.length;
      index.set(key, u);
      distinct.push(b);
    }
    return u;
  });
  return { distinct, rowOf };
}

/** Marks rows that hold an EOS id or a stop string; true when all have finished. */
function markFinished(
  host: Int32Array,
  width: number,
  n: number,
  finished: boolean[],
  eos: Set<number>,
  stops: string[],
  decoder: Decoder,
): boolean {
  finished.forEach((f, b) => {
    if (f) return;
    const row = Array.from(host.subarray(b * width, b * width + n));
    if (row.some((t) => eos.has(t))) finished[b] = true;
    else if (stops.length && stops.some((st) => decoder.decode(row).includes(st))) {
      finished[b] = true;
    }
  });
  return finished.every(Boolean);
}

/** Cuts a row at its first EOS id or stop string. */
function finish(
  row: number[],
  lps: number[],
  eos: Set<number>,
  stops: string[],
  decoder: Decoder,
): Generation {
  const eosAt = row.findIndex((t) => eos.has(t));
  let n = eosAt >= 0 ? eosAt + 1 : row.length;
  let reason: Generation["finishReason"] = eosAt >= 0 ? "eos" : "length";
  let text = decoder.decode(row.slice(0, eosAt >= 0 ? eosAt : n), { skipSpecialTokens: true });
  let cut = -1;
  for (const st of stops) {
    const at = text.indexOf(st);
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  if (cut >= 0) {
    text = text.slice(0, cut);
    reason = "stop";
    // Keep the tokens up to the one that completes the stop string.
    for (let k = 1; k <= n; k++) {
      const prefix = decoder.decode(row.slice(0, k), { skipSpecialTokens: true });
      if (stops.some((st) => prefix.includes(st))) {
        n = k;
        break;
      }
    }
  }
  return { ids: row.slice(0, n), text, logprobs: lps.slice(0, n), finishReason: reason };
}
