/**
 * Which kernel family runs each op on each kind of adapter: the one place
 * that says so. On the CPU adapter a workgroup runs on one thread and a
 * barrier costs more than the reuse it buys, so kernels there are
 * barrier-free and give each invocation a large block of work; a hardware
 * GPU wants workgroup memory, many threads per row and coalesced loads.
 */
import { gpu } from "../gpu/mod.ts";

export type AdapterKind = "software" | "hardware";

export interface KernelChoice {
  /** matmul: register-blocked (matmul_plan.ts) or workgroup-tiled vec4 (matmul_gpu_plan.ts). */
  matmul: "blocked" | "gpu";
  /** Row kernels (softmax, RMSNorm, cross-entropy, row reductions): one invocation or one workgroup per row. */
  rows: "invocation" | "workgroup";
  /** Reductions with few outputs (a whole-tensor sum): one pass, or chunks of each row first and then the chunks' results. */
  reduce: "one-pass" | "two-pass";
  /**
   * Attention over many queries: fused kernels (impl/attention.ts), matmuls around a masked
   * softmax, or fused only where no gradient is needed. On the CPU adapter `bench:ppo --attention`
   * measured fused 15.5-15.8 rollouts/s against 13.7-14.0 for fused-inference (update phase 4.3-4.4
   * s against 5.3). On an H200 at Qwen2.5-0.5B's attention (docs/gpu-matmul.md) composed took
   * 0.74 ms forward and 2.05 with backward, the best fused 6.78 and 31.8: hardware keeps composed.
   */
  attention: "fused" | "composed" | "fused-inference";
  /**
   * The widest head the fused attention takes; wider heads go to the composed kernels. On the CPU
   * adapter (bench/attention_block.ts, forward + backward, GPU ms) the fused kernels won only at
   * head_dim 12 (the student's); at 16 they took 176-289 against 142-202, at 24 283-301 against
   * 181-184, at 32 108 against 52-54, at 64 247-262 against 82-84: wider heads spill llvmpipe's
   * registers, and the composed matmuls' K grows with them. `bench:model` (head_dim 32 and 64)
   * trained at 0.34 / 0.19 of PyTorch with them against 0.44 / 0.44 without.
   */
  attentionMaxHeadDim: number;
}

export const KERNEL_CHOICE: Record<AdapterKind, KernelChoice> = {
  software: {
    matmul: "blocked",
    rows: "invocation",
    reduce: "one-pass",
    attention: "fused",
    attentionMaxHeadDim: 12,
  },
  hardware: {
    matmul: "gpu",
    rows: "workgroup",
    reduce: "two-pass",
    attention: "composed",
    attentionMaxHeadDim: 128,
  },
};

let forced: Partial<KernelChoice> = {};

/** Overrides the table's entries for this process (tests run hardware kernels on the CPU adapter). */
export function forceKernels(choice: Partial<KernelChoice>): void {
  forced = choice;
}

/**
 * llvmpipe (Mesa's CPU driver, under Vulkan and GL alike) ends every loop of a shader invocation
 * once that invocation has taken 65,535 loop iterations in all, silently: a softmax over a row of
 * 100,000 left the tail at 0, and an argmax never looked past index 65,534. Loops with a constant
 * trip count of at most 32 are unrolled and do not count. On the software adapter a kernel keeps
 * each invocation under this budget (a margin below the limit), by its flavour or by chunks.
 */
export const SOFTWARE_LOOP_BUDGET = 60_000;

/** Whether one invocation may take `iterations` loop iterations on this adapter. */
export function fitsLoopBudget(iterations: number): boolean {
  return adapterKind() === "hardware" || iterations <= SOFTWARE_LOOP_BUDGET;
}

export function adapterKind(): AdapterKind {
  return gpu().info.software ? "software" : "hardware";
}

export function kernelChoice(): KernelChoice {
  return { ...KERNEL_CHOICE[adapterKind()], ...forced };
}
