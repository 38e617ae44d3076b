/**
 * The loop every stage trains with: AdamW over a model's parameters (no
 * weight decay on norms and biases), warm-up and decay, global-norm
 * clipping, gradient accumulation, and checkpoints that resume exactly.
 */
import { EngineError, OpError } from "../errors.ts";
import { backward } from "../autograd/tape.ts";
import * as E from "../tensor/api.ts";
import { keep, type Tensor, tidy } from "../tensor/tensor.ts";
import { AdamW } from "../optim/adamw.ts";
import { lrFactor, type ScheduleConfig } from "../optim/schedule.ts";
import { type CausalLM, isNoDecay } from "../model/llama.ts";
import { savePretrained } from "../model/checkpoint.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { readSafetensorsFile, writeSafetensors } from "../model/safetensors.ts";
import { exists, readJsonObject, writeJsonFile } from "../model/files.ts";

export interface TrainConfig {
  lr: number;
  totalSteps: number;
  warmupSteps?: number;
  schedule?: ScheduleConfig["kind"];
  minLrRatio?: number;
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  maxGradNorm?: number;
  /** Micro-batches per optimizer step. */
  gradAccum?: number;
}

/** Training stopped on a NaN or infinite loss. */
export class NonFiniteLossError extends EngineError {}

export class Trainer {
  readonly model: CausalLM;
  readonly opt: AdamW;
  readonly cfg: TrainConfig;
  #names: string[];

  constructor(model: CausalLM, cfg: TrainConfig) {
    this.model = model;
    this.cfg = cfg;
    this.#names = Object.keys(model.params);
    const decay = this.#names.filter((n) => !isNoDecay(n)).map((n) => model.params[n]);
    const noDecay = this.#names.filter(isNoDecay).map((n) => model.params[n]);
    this.opt = new AdamW([{ params: decay }, { params: noDecay, weightDecay: 0 }], {
      lr: cfg.lr,
      betas: cfg.betas,
      eps: cfg.eps,
      weightDecay: cfg.weightDecay ?? 0,
      maxGradNorm: cfg.maxGradNorm ?? 1,
    });
  }

  get step(): number {
    return this.opt.step;
  }

  /** The learning rate the next step uses. */
  currentLr(): number {
    return this.cfg.lr * lrFactor(this.opt.step, {
      kind: this.cfg.schedule ?? "cosine",
      warmupSteps: this.cfg.warmupSteps ?? 0,
      totalSteps: this.cfg.totalSteps,
      minRatio: this.cfg.minLrRatio,
    });
  }

  /**
   * One optimizer step over micro-batches; each function returns its mean
   * loss. Their gradients average. Returns the mean loss as a GPU scalar:
   * nothing is read back, so steps queue without waiting.
   */
  trainStep(micro: (() => Tensor)[]): Tensor {
    if (micro.length === 0) throw new OpError("trainStep: no micro-batches");
    const loss = tidy(() => {
      let total: Tensor | null = null;
      for (const fn of micro) {
        const l = E.affine(fn(), 1 / micro.length);
        backward(l);
        total = total ? E.add(total, l) : l;
      }
      this.opt.lr = this.currentLr();
      this.opt.stepUpdate();
      this.opt.zeroGrad();
      return keep(total!);
    });
    return loss;
  }

  /** Throws NonFiniteLossError naming the stage and step of the first bad loss. */
  static checkFinite(stage: string, firstStep: number, losses: ArrayLike<number>): void {
    for (let i = 0; i < losses.length; i++) {
      if (!Number.isFinite(losses[i])) {
        throw new NonFiniteLossError(`${stage}: loss is ${losses[i]} at step ${firstStep + i}`);
      }
    }
  }

  /** Model, tokenizer, optimizer state and step, in HF layout plus optimizer.safetensors. */
  async save(
    dir: string,
    tokenizer: Tokenizer,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    await savePretrained(dir, this.model, tokenizer);
    const state = await this.opt.stateDict();
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    this.#names.forEach((n) => {
      const i = this.opt.params.indexOf(this.model.params[n]);
      const shape = [...this.model.params[n].shape];
      tensors[`exp_avg.${n}`] = { shape, data: state.exp_avg[i] };
      tensors[`exp_avg_sq.${n}`] = { shape, data: state.exp_avg_sq[i] };
    });
    await writeSafetensors(`${dir}/optimizer.safetensors`, tensors, { step: String(state.step) });
    await writeJsonFile(`${dir}/trainer_state.json`, { global_step: state.step, ...extra });
  }

  /** Restores optimizer state and step saved by save(); the model is loaded separately. */
  async resume(dir: string): Promise<Record<string, unknown>> {
    const host = await readSafetensorsFile(`${dir}/optimizer.safetensors`);
    const meta = await readJsonObject(`${dir}/trainer_state.json`);
    const pick = (prefix: string) =>
      this.opt.params.map((p) => {
        const n = this.#names.find((name) => this.model.params[name] === p)!;
        const t = host.get(`${prefix}.${n}`);
        if (!t) throw new OpError(`${dir}/optimizer.safetensors: missing ${prefix}.${n}`);
        return t.data;
      });
    this.opt.loadStateDict({
      step: Number(meta.global_step),
      exp_avg: pick("exp_avg"),
      exp_avg_sq: pick("exp_avg_sq"),
    });
    return meta;
  }

  static async hasCheckpoint(dir: string): Promise<boolean> {
    return await exists(`${dir}/trainer_state.json`) &&
      await exists(`${dir}/optimizer.safetensors`);
  }

  destroy(): void {
    this.opt.destroy();
  }
}
