/**
 * What each method row of the eval table cost beyond the SFT student it
 * starts from: the teacher's samples, the labels and SFT are shared by every
 * row, so a row's compute is the stages only it needed (issue 16's compute
 * account). Read from the stages' own summaries.
 */
export interface Compute {
  tokensGenerated: number;
  tokensTrained: number;
  wallSeconds: number;
}

/** The best-of-n samples eval drew (n = nMax; smaller n use the first n of them). */
export interface BestOfCost {
  nMax: number;
  ns: number[];
  tokensGenerated: number;
  wallSeconds: number;
}

type Summary = Record<string, unknown> | null | undefined;

const ZERO: Compute = { tokensGenerated: 0, tokensTrained: 0, wallSeconds: 0 };

function cost(s: Summary): Compute {
  const n = (k: string) => (typeof s?.[k] === "number" ? s[k] as number : 0);
  return {
    tokensGenerated: n("tokensGenerated"),
    tokensTrained: n("tokensTrained"),
    wallSeconds: n("wallSeconds"),
  };
}

function minus(a: Compute, b: Compute): Compute {
  return {
    tokensGenerated: a.tokensGenerated - b.tokensGenerated,
    tokensTrained: a.tokensTrained - b.tokensTrained,
    wallSeconds: a.wallSeconds - b.wallSeconds,
  };
}

function plus(...cs: Compute[]): Compute {
  return cs.reduce((a, c) => ({
    tokensGenerated: a.tokensGenerated + c.tokensGenerated,
    tokensTrained: a.tokensTrained + c.tokensTrained,
    wallSeconds: a.wallSeconds + c.wallSeconds,
  }), ZERO);
}

/** Row name -> compute beyond the SFT student, for the rows whose stages ran. */
export function methodCompute(
  stages: Record<string, Summary>,
  bestOf: BestOfCost | null,
  /** Reward source -> its PPO row's name (eval's PPO_ROWS). */
  ppoRows: Record<string, string>,
): Record<string, Compute> {
  const out: Record<string, Compute> = { "SFT student": ZERO };
  // The learned reward model needs the student's samples and its own training; the
  // reward-train stage's totals include the ablation's reward model when it ran.
  const ablation = cost(stages["reward-train"]?.teacherOnly as Summary);
  const rewardModel = plus(
    cost(stages["student-generate"]),
    minus(cost(stages["reward-train"]), ablation),
  );
  const ppo = stages.ppo ?? {};
  for (const [reward, row] of Object.entries(ppoRows)) {
    const arm = ppo[reward] as Summary;
    if (!arm) continue;
    // The ablation's reward model trains on responses the teacher already gave: no student samples.
    out[row] = reward === "model"
      ? plus(rewardModel, cost(arm))
      : reward === "model-teacher"
      ? plus(ablation, cost(arm))
      : cost(arm);
  }
  const gkd = stages.gkd;
  if (gkd && (gkd.steps as number) > 0) out["GKD student"] = cost(gkd);
  const baselines = stages["sft-baselines"] ?? {};
  const equal = baselines.equalComputeSft as Summary;
  // Equal-compute SFT trains on the student's positive samples too.
  if (equal) {
    out["SFT student (equal compute)"] = plus(cost(stages["student-generate"]), cost(equal));
  }
  const tuned = baselines.teacherSft as Summary;
  if (tuned) out["fine-tuned teacher pass@1"] = cost(tuned);
  if (bestOf) {
    for (const n of bestOf.ns) {
      out[`Best-of-${n} (reward model)`] = plus(rewardModel, {
        tokensGenerated: bestOf.tokensGenerated * n / bestOf.nMax,
        tokensTrained: 0,
        wallSeconds: bestOf.wallSeconds * n / bestOf.nMax,
      });
    }
  }
  return out;
}
