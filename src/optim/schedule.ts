/**
 * Learning-rate schedules as Hugging Face transformers defines them: a linear
 * warm-up from 0, then cosine (half a cycle) or linear decay to minRatio·lr.
 */
export interface ScheduleConfig {
  kind: "constant" | "cosine" | "linear";
  warmupSteps: number;
  totalSteps: number;
  /** Floor as a fraction of the peak learning rate (0 in transformers). */
  minRatio?: number;
}

/** The multiplier of the peak learning rate at `step` (0-based). */
export function lrFactor(step: number, cfg: ScheduleConfig): number {
  const { kind, warmupSteps, totalSteps } = cfg;
  const floor = cfg.minRatio ?? 0;
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  if (kind === "constant") return 1;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  const decay = kind === "cosine" ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return floor + (1 - floor) * decay;
}
