/**
 * AdamW (PyTorch semantics, decoupled weight decay) as one fused kernel per
 * parameter, with optional global-norm clipping computed and applied on the
 * GPU: a whole optimizer step records without a single readback.
 */
import { OpError } from "../errors.ts";
import { gpu } from "../gpu/mod.ts";
import { rowLaunch } from "../tensor/impl/rows.ts";
import { f32bits, fillDense, grid, launch } from "../tensor/launch.ts";
import { keep, readAll, Tensor, tensor } from "../tensor/tensor.ts";

export interface AdamWConfig {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this (0 or undefined: no clipping). */
  maxGradNorm?: number;
}

export interface ParamGroup {
  params: Tensor[];
  /** Overrides the optimizer's weight decay, e.g. 0 for norms and biases. */
  weightDecay?: number;
}

/** Saved optimizer state, in the order of the parameters. */
export interface AdamWState {
  step: number;
  exp_avg: Float32Array[];
  exp_avg_sq: Float32Array[];
}

const CHUNK = 4096;

export class AdamW {
  readonly groups: ParamGroup[];
  readonly params: Tensor[];
  lr: number;
  step = 0;
  #cfg: Required<Omit<AdamWConfig, "lr">>;
  #m: Tensor[];
  #v: Tensor[];
  #partials: Tensor;
  /** [clip coefficient, global grad norm] of the last step. */
  readonly clipState: Tensor;

  constructor(groups: Tensor[] | ParamGroup[], cfg: AdamWConfig) {
    this.groups = groups.length && !("params" in groups[0])
      ? [{ params: groups as Tensor[] }]
      : (groups as ParamGroup[]);
    this.params = this.groups.flatMap((g) => g.params);
    this.lr = cfg.lr;
    this.#cfg = {
      betas: cfg.betas ?? [0.9, 0.999],
      eps: cfg.eps ?? 1e-8,
      weightDecay: cfg.weightDecay ?? 0.01,
      maxGradNorm: cfg.maxGradNorm ?? 0,
    };
    this.#m = this.params.map((p) => zerosLike(p));
    this.#v = this.params.map((p) => zerosLike(p));
    const chunks = this.params.reduce((s, p) => s + Math.ceil(p.size / CHUNK), 0);
    this.#partials = keep(tensor(new Float32Array(Math.max(chunks, 1))));
    this.clipState = keep(tensor(new Float32Array([1, 0])));
  }

  /** Frees the gradients (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.destroy();
      p.grad = null;
    }
  }

  /**
   * One update from the parameters' `.grad`. Parameters without a gradient
   * are skipped. Nothing is read back: the norm stays in `clipState`.
   */
  stepUpdate(): void {
    this.step++;
    const [b1, b2] = this.#cfg.betas;
    const withGrad = this.params.map((p, i) => ({ p, i })).filter(({ p }) => p.grad);
    for (const { p } of withGrad) {
      if (!p.grad!.isContiguous || p.grad!.offset !== 0 || p.grad!.size !== p.size) {
        throw new OpError(`AdamW: the gradient of a parameter of shape [${p.shape}] is not dense`);
      }
    }
    this.#clip(withGrad.map(({ p }) => p));
    for (const group of this.groups) {
      const wd = group.weightDecay ?? this.#cfg.weightDecay;
      for (const p of group.params) {
        if (!p.grad) continue;
        const i = this.params.indexOf(p);
        launch(
          { shader: "optim/adamw.wgsl", bindings: ["rw", "read", "rw", "rw", "read"] },
          [p, p.grad, this.#m[i], this.#v[i], this.clipState],
          [
            p.size,
            f32bits(this.lr),
            f32bits(b1),
            f32bits(b2),
            f32bits(this.#cfg.eps),
            f32bits(wd),
            f32bits(1 - b1 ** this.step),
            f32bits(1 - b2 ** this.step),
          ],
          grid(p.size),
        );
      }
    }
  }

  /** Writes [coef, norm] into clipState: coef = min(1, maxNorm / (norm + 1e-6)). */
  #clip(params: Tensor[]): void {
    const maxNorm = this.#cfg.maxGradNorm;
    // The chunks and the partials are rows (impl/rows.ts): the adapter's row-kernel flavour, and
    // a workgroup on the CPU adapter where one invocation could not walk them all.
    const shader = "optim/grad_norm.wgsl";
    const writes = [1, 2];
    let offset = 0;
    for (const p of params) {
      const chunks = Math.ceil(p.size / CHUNK);
      rowLaunch(
        shader,
        {},
        [p.grad!, this.#partials, this.clipState],
        [p.size, offset, CHUNK, 0, f32bits(maxNorm)],
        chunks,
        { entry: "partial", walk: CHUNK, writes },
      );
      offset += chunks;
    }
    const first = params[0]?.grad ?? this.#partials;
    rowLaunch(
      shader,
      {},
      [first, this.#partials, this.clipState],
      [0, 0, CHUNK, offset, f32bits(maxNorm)],
      1,
      { entry: "finish", walk: offset, writes },
    );
  }

  /** The global gradient norm of the last step (one readback). */
  async gradNorm(): Promise<number> {
    return (await this.clipState.data())[1];
  }

  async stateDict(): Promise<AdamWState> {
    const data = await readAll([...this.#m, ...this.#v]);
    const n = this.params.length;
    return {
      step: this.step,
      exp_avg: data.slice(0, n) as Float32Array[],
      exp_avg_sq: data.slice(n) as Float32Array[],
    };
  }

  loadStateDict(state: AdamWState): void {
    const n = this.params.length;
    if (state.exp_avg.length !== n || state.exp_avg_sq.length !== n) {
      throw new OpError(
        `AdamW.loadStateDict: state has ${state.exp_avg.length} tensors, optimizer has ${n}`,
      );
    }
    this.step = state.step;
    const { recorder } = gpu();
    this.params.forEach((p, i) => {
      for (
        const [arr, t] of [[state.exp_avg[i], this.#m[i]], [
          state.exp_avg_sq[i],
          this.#v[i],
        ]] as const
      ) {
        if (arr.length !== p.size) {
          throw new OpError(
            `AdamW.loadStateDict: state tensor ${i} has ${arr.length} values, parameter has ${p.size}`,
          );
        }
        recorder.upload(t.buffer("loadStateDict"), 0, arr);
      }
    });
  }

  destroy(): void {
    for (const t of [...this.#m, ...this.#v, this.#partials, this.clipState]) t.destroy();
  }
}

function zerosLike(p: Tensor): Tensor {
  const z = keep(Tensor.empty(p.shape));
  fillDense(z, 0);
  return z;
}
