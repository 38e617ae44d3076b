/**
 * The pure parts of a PPO rollout, shared by the ppo stage and bench:ppo:
 * which prompts an iteration draws, how sampled sequences become a padded
 * batch with a response mask, and how raw scores become rewards.
 */
import { padLength } from "./batch.ts";

/**
 * `promptsPerIteration` prompts drawn with replacement by `rand`, each
 * repeated `samplesPerPrompt` times in a row (the groups RLOO compares).
 */
export function drawPrompts<Q>(
  pool: Q[],
  promptsPerIteration: number,
  samplesPerPrompt: number,
  rand: () => number,
): Q[] {
  return Array.from({ length: promptsPerIteration }, () => pool[Math.floor(rand() * pool.length)])
    .flatMap((q) => Array<Q>(samplesPerPrompt).fill(q));
}

/**
 * Right-padded ids [B, T] and the mask [B, T-1] of the positions that score
 * response tokens (position j scores token j+1, so T-1, the scored width, is
 * padded to a multiple of 8).
 */
export function rolloutBatch(
  seqs: number[][],
  promptLengths: number[],
  pad: number,
): { B: number; T: number; ids: Int32Array; mask: Float32Array } {
  const B = seqs.length;
  const T = padLength(Math.max(...seqs.map((s) => s.length)) - 1) + 1;
  const ids = new Int32Array(B * T).fill(pad);
  const mask = new Float32Array(B * (T - 1));
  seqs.forEach((s, b) => {
    ids.set(s, b * T);
    for (let j = promptLengths[b] - 1; j < s.length - 1; j++) mask[b * (T - 1) + j] = 1;
  });
  return { B, T, ids, mask };
}

export interface Penalties {
  /** Subtracted when a response has no final answer. */
  noAnswer: number;
  /** Subtracted when a response ends without EOS. */
  noEos: number;
}

/**
 * Raw scores less the penalties each response earned (a new array), each
 * subtraction rounded to f32 as it is stored.
 */
export function penalisedScores(
  scores: Float32Array,
  responses: { hasAnswer: boolean; endedWithEos: boolean }[],
  p: Penalties,
): Float32Array {
  return scores.map((s, b) => {
    let v = s;
    if (!responses[b].hasAnswer) v = Math.fround(v - p.noAnswer);
    if (!responses[b].endedWithEos) v = Math.fround(v - p.noEos);
    return v;
  });
}
