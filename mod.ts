/**
 * Public API: a WebGPU tensor engine with autodiff and AdamW, for distilling
 * a large language model into a small one (arXiv 2502.19557).
 */
export { EngineError, GpuError, OpError, runMain } from "./src/errors.ts";
export { closeGpu, Gpu, gpu, initGpu } from "./src/gpu/mod.ts";
export { keep, readAll, type Shape, Tensor, tensor, tidy } from "./src/tensor/tensor.ts";
export * from "./src/tensor/api.ts";
export { backward, isGradEnabled, noGrad, requiresGrad } from "./src/autograd/tape.ts";
export { AdamW, type AdamWConfig, type AdamWState, type ParamGroup } from "./src/optim/adamw.ts";
export { lrFactor, type ScheduleConfig } from "./src/optim/schedule.ts";
