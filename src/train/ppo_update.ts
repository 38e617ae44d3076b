/**
 * One PPO update on a scored rollout (TRL's PPOTrainer, or RLOOTrainer when
 * there is no value model): old and reference log-probs, KL-penalised
 * rewards, GAE or group advantages, whitening, then epochs of shuffled
 * minibatch steps of the policy (and value) trainers. The stage samples and
 * scores the rollout; this is the part a float64 reference can check.
 */
import { noGrad } from "../autograd/tape.ts";
import * as E from "../tensor/api.ts";
import { keep, readAll, type Tensor, tidy } from "../tensor/tensor.ts";
import type { CausalLM } from "../model/llama.ts";
import { gae, groupAdvantages, klRewards, mixedGroups, whiten } from "./ppo_math.ts";
import { maskedMean, policyLoss, tokenLogprobs, tokenValues, valueLoss } from "./ppo.ts";
import { Trainer } from "./trainer.ts";

/** Right-padded [B, T] sequences; mask [B, T-1] marks the positions that score response tokens. */
export interface ScoredRollout {
  B: number;
  T: number;
  ids: Int32Array;
  mask: Float32Array;
  /** One score per row, added at its last response token. */
  scores: Float32Array;
}

export interface PpoModels {
  policy: CausalLM;
  /** The frozen SFT reference of the KL penalty. */
  ref: CausalLM;
  policyTrainer: Trainer;
  /** null: group (RLOO) advantages, rows in groups of samplesPerPrompt. */
  valueTrainer: Trainer | null;
}

export interface PpoUpdateConfig {
  temperature: number;
  /** KL coefficient this iteration. */
  beta: number;
  gamma: number;
  lam: number;
  clip: number;
  valueClip: number;
  epochs: number;
  miniBatch: number;
  whitenAdvantages: boolean;
  samplesPerPrompt: number;
  /** false while the value model warms up: only the value trainer steps. */
  updatePolicy: boolean;
}

export interface PpoUpdateStats {
  /** Mean per-response KL to the reference (sum over response tokens). */
  kl: number;
  policyLoss: number;
  clipfrac: number;
  entropy: number;
  valueLoss: number;
  /** Rows trained on: all with a value model, the mixed-score groups without. */
  trainedRows: number;
  tokensTrained: number;
  /**
   * Wall seconds of the two parts (for bench/ppo_bench.ts): old and reference
   * log-probs and values, read back; then the advantages and every minibatch
   * step, up to the read-back of their statistics.
   */
  seconds: { logprobs: number; update: number };
}

/** Gathers the given rows of a [B, width] array. */
function pickRows<A extends Float32Array | Int32Array>(src: A, rows: number[], width: number): A {
  const out = new (src.constructor as { new (n: number): A })(rows.length * width);
  rows.forEach((row, i) => out.set(src.subarray(row * width, (row + 1) * width), i * width));
  return out;
}

/** Old and reference log-probs, and values, read back in one wait. */
async function scoreRollout(
  ro: ScoredRollout,
  m: PpoModels,
  temperature: number,
): Promise<{ logp: Float32Array; refLogp: Float32Array; values: Float32Array }> {
  const outs = noGrad(() =>
    tidy(() => {
      const ids = E.tensor(ro.ids, [ro.B, ro.T]);
      return [
        tokenLogprobs(m.policy, ids, temperature).logp,
        tokenLogprobs(m.ref, ids, temperature).logp,
        ...(m.valueTrainer ? [tokenValues(m.valueTrainer.model, ids)] : []),
      ];
    })
  );
  const [logp, refLogp, values] = (await readAll(outs)) as Float32Array[];
  outs.forEach((t) => t.destroy());
  return { logp, refLogp, values: values ?? new Float32Array(0) };
}

export async function ppoUpdate(
  ro: ScoredRollout,
  m: PpoModels,
  cfg: PpoUpdateConfig,
  rand: () => number,
  where = { stage: "ppo", iteration: 0 },
): Promise<PpoUpdateStats> {
  const { B, T } = ro;
  const W = T - 1;
  const started = performance.now();
  const { logp, refLogp, values } = await scoreRollout(ro, m, cfg.temperature);
  const scored = performance.now();
  const { rewards, kl: klTok } = klRewards(logp, refLogp, ro.mask, ro.scores, B, W, cfg.beta);
  const group = m.valueTrainer === null;
  const { advantages, returns } = group
    ? {
      advantages: groupAdvantages(rewards, ro.mask, B, W, cfg.samplesPerPrompt),
      returns: new Float32Array(0),
    }
    : gae(rewards, values, ro.mask, B, W, cfg.gamma, cfg.lam);
  const adv = cfg.whitenAdvantages ? whiten(advantages, ro.mask) : advantages;
  // With group advantages, a group whose scores are all equal differs only by its KL.
  const trained = group
    ? mixedGroups(ro.scores, cfg.samplesPerPrompt)
    : Array.from({ length: B }, (_, i) => i);

  const policyStats: Tensor[] = [];
  const valueStats: Tensor[] = [];
  let tokensTrained = 0;
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    const order = [...trained].sort(() => rand() - 0.5);
    for (let at = 0; at < order.length; at += cfg.miniBatch) {
      const rows = order.slice(at, at + cfg.miniBatch);
      const shape = [rows.length, W];
      const mb = (src: Float32Array) => E.tensor(pickRows(src, rows, W), shape);
      const mbIds = pickRows(ro.ids, rows, T);
      tokensTrained += rows.length * T;
      if (cfg.updatePolicy) {
        let out: Tensor[] = [];
        policyStats.push(m.policyTrainer.trainStep([() => {
          const ids = E.tensor(mbIds, [rows.length, T]);
          const { logp: lp, entropy } = tokenLogprobs(m.policy, ids, cfg.temperature);
          const mask = mb(ro.mask);
          const p = policyLoss(lp, mb(logp), mb(adv), mask, cfg.clip);
          out = [p.clipfrac, maskedMean(entropy, mask)].map((t) => keep(t));
          return p.loss;
        }]));
        policyStats.push(...out);
      }
      const vt = m.valueTrainer;
      if (vt) {
        valueStats.push(vt.trainStep([() => {
          const ids = E.tensor(mbIds, [rows.length, T]);
          return valueLoss(
            tokenValues(vt.model, ids),
            mb(values),
            mb(returns),
            mb(ro.mask),
            cfg.valueClip,
          );
        }]));
      }
    }
  }
  // One GPU wait for every minibatch's statistics.
  const host = (await readAll([...policyStats, ...valueStats])).map((h) => h[0]);
  const p = host.slice(0, policyStats.length);
  const v = host.slice(policyStats.length);
  [...policyStats, ...valueStats].forEach((t) => t.destroy());
  Trainer.checkFinite(where.stage, where.iteration, [...p, ...v]);
  const updated = performance.now();
  const mean = (xs: number[]) => xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
  const every = (k: number) => p.filter((_, i) => i % 3 === k);
  let kl = 0;
  for (let i = 0; i < klTok.length; i++) kl += klTok[i];
  return {
    kl: kl / B,
    policyLoss: mean(every(0)),
    clipfrac: mean(every(1)),
    entropy: mean(every(2)),
    valueLoss: mean(v),
    trainedRows: trained.length,
    tokensTrained,
    seconds: { logprobs: (scored - started) / 1000, update: (updated - scored) / 1000 },
  };
}
