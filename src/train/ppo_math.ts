/**
 * The host-side arithmetic of PPO (as TRL's PPOTrainer and Ziegler et al.
 * 2019): per-token rewards with a KL penalty, GAE, advantage whitening and
 * the adaptive KL controller. Arrays are [B, T] row-major with a mask of
 * response tokens.
 */

/** r_t = -β·(logp_t - logp_ref_t), plus the sequence score at its last response token. */
export function klRewards(
  logp: Float32Array,
  refLogp: Float32Array,
  mask: Float32Array,
  scores: ArrayLike<number>,
  B: number,
  T: number,
  beta: number,
): { rewards: Float32Array; kl: Float32Array } {
  const rewards = new Float32Array(B * T);
  const kl = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    let last = -1;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (!mask[i]) continue;
      kl[i] = logp[i] - refLogp[i];
      rewards[i] = -beta * kl[i];
      last = i;
    }
    if (last >= 0) rewards[last] += scores[b];
  }
  return { rewards, kl };
}

/**
 * Generalised advantage estimation over each row's masked positions:
 * δ_t = r_t + γ·V_{t+1} - V_t, A_t = δ_t + γλ·A_{t+1}; returns = A + V.
 */
export function gae(
  rewards: Float32Array,
  values: Float32Array,
  mask: Float32Array,
  B: number,
  T: number,
  gamma: number,
  lambda: number,
): { advantages: Float32Array; returns: Float32Array } {
  const advantages = new Float32Array(B * T);
  const returns = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    let next = 0;
    let nextValue = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = b * T + t;
      if (!mask[i]) continue;
      const delta = rewards[i] + gamma * nextValue - values[i];
      next = delta + gamma * lambda * next;
      advantages[i] = next;
      returns[i] = next + values[i];
      nextValue = values[i];
    }
  }
  return { advantages, returns };
}

/**
 * RLOO's advantages (Ahmadian et al. 2024): rows come in groups of `k`
 * responses to one prompt; each row's return (its rewards summed over the
 * response, KL penalty included) minus the mean return of the other k - 1,
 * on every response token of the row.
 */
export function groupAdvantages(
  rewards: Float32Array,
  mask: Float32Array,
  B: number,
  T: number,
  k: number,
): Float32Array {
  if (k < 2 || B % k !== 0) {
    throw new Error(`groupAdvantages: ${B} rows do not form groups of ${k} (need k >= 2)`);
  }
  const ret = new Float64Array(B);
  for (let i = 0; i < B * T; i++) if (mask[i]) ret[Math.floor(i / T)] += rewards[i];
  const out = new Float32Array(B * T);
  for (let g = 0; g < B; g += k) {
    let sum = 0;
    for (let b = g; b < g + k; b++) sum += ret[b];
    for (let b = g; b < g + k; b++) {
      const a = ret[b] - (sum - ret[b]) / (k - 1);
      for (let t = 0; t < T; t++) if (mask[b * T + t]) out[b * T + t] = a;
    }
  }
  return out;
}

/** The rows of groups of `k` whose scores are not all equal (DAPO's dynamic sampling). */
export function mixedGroups(scores: ArrayLike<number>, k: number): number[] {
  const rows: number[] = [];
  for (let g = 0; g < scores.length; g += k) {
    let mixed = false;
    for (let b = g + 1; b < g + k; b++) if (scores[b] !== scores[g]) mixed = true;
    if (mixed) { for (let b = g; b < g + k; b++) rows.push(b); }
  }
  return rows;
}

/** Shifts and scales the masked entries to mean 0, variance 1 (TRL's masked_whiten). */
export function whiten(x: Float32Array, mask: Float32Array, shiftMean = true): Float32Array {
  let n = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    if (mask[i]) {
      n++;
      sum += x[i];
    }
  }
  if (n === 0) return new Float32Array(x.length);
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) sq += (x[i] - mean) ** 2;
  // Unbiased variance, as torch.var in TRL.
  const std = Math.sqrt(sq / Math.max(n - 1, 1) + 1e-8);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    if (mask[i]) out[i] = ((x[i] - mean) / std) + (shiftMean ? 0 : mean);
  }
  return out;
}

/** Ziegler et al.'s adaptive KL coefficient: steer the observed KL towards `target`. */
export class AdaptiveKl {
  constructor(public beta: number, readonly target: number, readonly horizon: number) {}
  update(kl: number, steps: number): number {
    const error = Math.max(-0.2, Math.min(0.2, kl / this.target - 1));
    this.beta *= 1 + (error * steps) / this.horizon;
    return this.beta;
  }
}
