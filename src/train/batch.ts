/** Packing prompt/completion pairs into next-token training batches. */
import { OpError } from "../errors.ts";

export interface Example {
  prompt: number[];
  completion: number[];
}

export interface LmBatch {
  /** i32 [B, T]: input tokens, right-padded. */
  ids: Int32Array;
  /** i32 [B, T]: the next token, or -100 on prompt and padding positions. */
  labels: Int32Array;
  B: number;
  T: number;
  /** Positions that count in the loss. */
  tokens: number;
}

/**
 * Each example becomes prompt + completion, cut to maxLen tokens; the model
 * learns the completion only (the prompt tokens are masked with -100, as
 * TRL's completion-only loss).
 */
export function lmBatch(examples: Example[], maxLen: number, padId: number): LmBatch {
  if (examples.length === 0) throw new OpError("lmBatch: no examples");
  const seqs = examples.map((e) => [...e.prompt, ...e.completion].slice(0, maxLen));
  const longest = Math.max(...seqs.map((s) => s.length)) - 1;
  if (longest < 1) throw new OpError("lmBatch: every sequence is shorter than 2 tokens");
  const T = padLength(longest);
  const B = seqs.length;
  const ids = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(-100);
  let tokens = 0;
  seqs.forEach((s, b) => {
    const promptLen = examples[b].prompt.length;
    for (let t = 0; t < s.length - 1; t++) {
      ids[b * T + t] = s[t];
      if (t + 1 >= promptLen) {
        labels[b * T + t] = s[t + 1];
        tokens++;
      }
    }
  });
  return { ids, labels, B, T, tokens };
}

/**
 * Sequence lengths are padded to a multiple of 8: attention's matmuls then
 * take the vec4 kernels (a length like 150 falls back to scalar loads,
 * several times slower on the CPU adapter).
 */
export function padLength(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** Sequences right-padded with `pad` to one length (a multiple of 8): ids [B, T] row-major. */
export function padRows(seqs: number[][], pad: number): { ids: Int32Array; T: number } {
  const T = padLength(Math.max(...seqs.map((s) => s.length)));
  const ids = new Int32Array(seqs.length * T).fill(pad);
  seqs.forEach((s, b) => ids.set(s, b * T));
  return { ids, T };
}
