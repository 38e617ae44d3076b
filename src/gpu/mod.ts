import { GpuError } from "../errors.ts";
import { type DeviceInfo, requestDevice } from "./device.ts";
import { PipelineCache } from "./pipelines.ts";
import { BufferPool } from "./pool.ts";
import { Recorder } from "./recorder.ts";

export { f32bits, i32bits, type ReadRequest } from "./recorder.ts";
export type { Access, Defines, KernelSpec } from "./pipelines.ts";
export type { PooledBuffer } from "./pool.ts";

/** One device with its pool, pipeline cache and command recorder. */
export class Gpu {
  readonly device: GPUDevice;
  readonly info: DeviceInfo;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly recorder: Recorder;
  #lost: string | null = null;
  #closing = false;

  constructor(info: DeviceInfo) {
    this.info = info;
    this.device = info.device;
    this.pipelines = new PipelineCache(this.device);
    this.pool = new BufferPool(this.device, (b) => this.pipelines.forget(b));
    this.recorder = new Recorder(this.device, this.pipelines, this.pool);
    this.device.lost.then((lost) => {
      this.#lost = this.#closing
        ? "the GPU device was closed"
        : `the GPU device was lost (${lost.reason}): ${lost.message}`;
    });
  }

  /** Throws a clear error once the device is gone. */
  assertAlive(): void {
    if (this.#lost) throw new GpuError(this.#lost);
  }

  /** Frees every buffer and the device. */
  close(): void {
    this.#closing = true;
    this.pool.destroy();
    this.device.destroy();
  }
}

let current: Gpu | null = null;
let pending: Promise<Gpu> | null = null;

/** Opens the device once per process; later calls return the same one. */
export function initGpu(opts: { quiet?: boolean } = {}): Promise<Gpu> {
  if (current) return Promise.resolve(current);
  pending ??= requestDevice(opts).then((info) => (current = new Gpu(info))).finally(() => {
    pending = null;
  });
  return pending;
}

/** The open device; ops call this, so `initGpu()` must have finished. */
export function gpu(): Gpu {
  if (!current) throw new GpuError("no GPU device: await initGpu() before creating tensors");
  current.assertAlive();
  return current;
}

/** The open device, or null when none is open (a run that never touched the GPU). */
export function currentGpu(): Gpu | null {
  return current;
}

/**
 * Pooled bytes a loop whose shapes change every round (PPO's rollouts, GKD's
 * generated batches) keeps from one round to the next.
 */
export const KEEP_POOLED_BYTES = 2 * 2 ** 30;

/**
 * Submits recorded work, then frees pooled buffers beyond `maxFree` bytes (BufferPool.trimTo).
 * For loops whose shapes change every round.
 */
export function trimPooled(maxFree = KEEP_POOLED_BYTES): void {
  if (!current) return;
  current.recorder.flush();
  current.pool.trimTo(maxFree);
}

/** Closes the open device, if any; the next initGpu() opens a new one. */
export function closeGpu(): void {
  current?.close();
  current = null;
}
