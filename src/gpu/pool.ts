import { GpuError } from "../errors.ts";

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/**
 * Sizes are rounded up to one of 8 steps per power of two: at most 12.5% waste. A buffer is bound
 * whole, so a request within the per-binding limit never rounds past it (an H200's limit is
 * 2 GiB − 4 bytes: a 2.147 GB chunk of logits would otherwise get a 2 GiB buffer it cannot bind).
 */
export function sizeClass(bytes: number, maxBinding = Infinity): number {
  const b = Math.max(256, Math.ceil(bytes / 16) * 16);
  const pow = 2 ** Math.floor(Math.log2(b));
  const step = Math.max(16, pow / 8);
  const size = Math.ceil(b / step) * step;
  if (bytes > maxBinding || size <= maxBinding) return size;
  return Math.max(Math.ceil(bytes / 4) * 4, Math.floor(maxBinding / 4) * 4);
}

let nextBufferId = 1;

/** A pooled storage buffer. `id` keys the bind-group cache. */
export interface PooledBuffer {
  readonly id: number;
  readonly buffer: GPUBuffer;
  readonly size: number;
}

/**
 * Storage buffers reused by size class. WebGPU frees memory only when a buffer
 * is garbage-collected or destroyed, so every buffer comes from here and goes
 * back here, and `destroy()` frees them all.
 */
export class BufferPool {
  #free = new Map<number, PooledBuffer[]>();
  #all = new Set<PooledBuffer>();
  #destroyed = false;
  /** Bytes handed out and not yet released. */
  liveBytes = 0;
  /** Bytes allocated on the device, live or pooled. */
  allocatedBytes = 0;

  constructor(private device: GPUDevice, private onDestroy?: (b: PooledBuffer) => void) {}

  acquire(bytes: number): PooledBuffer {
    if (this.#destroyed) throw new GpuError("buffer pool used after destroy()");
    const size = sizeClass(bytes, this.device.limits.maxStorageBufferBindingSize);
    const list = this.#free.get(size);
    let buf = list?.pop();
    if (!buf) {
      buf = { id: nextBufferId++, buffer: this.device.createBuffer({ size, usage: USAGE }), size };
      this.#all.add(buf);
      this.allocatedBytes += size;
    }
    this.liveBytes += size;
    return buf;
  }

  release(buf: PooledBuffer): void {
    if (this.#destroyed) return;
    this.liveBytes -= buf.size;
    // Re-inserted, so the map's order is least recently released size class first.
    const list = this.#free.get(buf.size) ?? [];
    this.#free.delete(buf.size);
    this.#free.set(buf.size, list);
    list.push(buf);
  }

  /** Bytes pooled and not handed out. */
  get freeBytes(): number {
    return this.allocatedBytes - this.liveBytes;
  }

  /**
   * Frees pooled buffers, least recently released size classes first, until at most `maxFree`
   * bytes stay pooled. A loop whose shapes change every round (PPO's rollouts differ in length)
   * otherwise keeps a copy of its buffers in every size class it ever used. Only between
   * submits: a buffer in an unsubmitted command must not be destroyed.
   */
  trimTo(maxFree: number): void {
    for (const [size, list] of this.#free) {
      if (this.freeBytes <= maxFree) break;
      while (list.length && this.freeBytes > maxFree) this.#free_(list.pop()!);
      if (!list.length) this.#free.delete(size);
    }
  }

  /** Frees pooled (not live) buffers, e.g. after a phase that needed more memory. */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const buf of list) this.#free_(buf);
    }
    this.#free.clear();
  }

  /** Frees every buffer, live ones included; the pool cannot be used again. */
  destroy(): void {
    for (const buf of this.#all) this.#free_(buf);
    this.#free.clear();
    this.#destroyed = true;
    this.liveBytes = 0;
  }

  #free_(buf: PooledBuffer) {
    this.onDestroy?.(buf);
    buf.buffer.destroy();
    this.#all.delete(buf);
    this.allocatedBytes -= buf.size;
  }
}
