import { GpuError, OpError } from "../errors.ts";
import { type Kernel, PARAMS_BYTES, type PipelineCache } from "./pipelines.ts";
import type { BufferPool, PooledBuffer } from "./pool.ts";

/** A region of a pooled buffer to read back. */
export interface ReadRequest {
  buf: PooledBuffer;
  /** Byte offset and length; both multiples of 4. */
  offset: number;
  bytes: number;
}

/**
 * Records every dispatch of a step into one command encoder and submits it
 * once, because each GPU wait in Deno costs ~10 ms.
 *
 * Kernel parameters (shapes, scalars) go into one uniform buffer at dynamic
 * offsets, written with a single writeBuffer just before the submit, so a
 * step's thousand dispatches share one upload and their bind groups are
 * reused from step to step.
 */
export class Recorder {
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #params: GPUBuffer;
  #paramsHost: ArrayBuffer;
  #paramsU32: Uint32Array;
  #paramsUsed = 0;
  #stride: number;
  #error: string | null = null;
  #checkIds = new Map<string, number>();
  #checkNames: string[] = [""];
  /** Where kernels report a bad index: [check id, the index]. */
  readonly flags: PooledBuffer;
  /** Dispatches recorded since the last submit. */
  pending = 0;
  /** Totals since start, for benchmarks and tests. */
  submits = 0;
  dispatches = 0;
  readbacks = 0;

  constructor(
    private device: GPUDevice,
    private cache: PipelineCache,
    pool: BufferPool,
    private paramsCapacity = 1 << 20,
  ) {
    this.flags = pool.acquire(16);
    device.queue.writeBuffer(this.flags.buffer, 0, new Uint32Array(4));
    this.#stride = Math.max(device.limits.minUniformBufferOffsetAlignment, 16);
    this.#paramsHost = new ArrayBuffer(paramsCapacity + PARAMS_BYTES);
    this.#paramsU32 = new Uint32Array(this.#paramsHost);
    this.#params = this.#makeParams();
    device.addEventListener("uncapturederror", (e) => {
      const lines = (e as GPUUncapturedErrorEvent).error.message.split("\n").map((l) => l.trim());
      this.#error ??= lines.filter(Boolean).slice(0, 2).join(": ") || "unknown error";
    });
  }

  /** Throws if the GPU reported an error since the last check. */
  checkError(): void {
    if (this.#error) {
      const msg = this.#error;
      this.#error = null;
      throw new GpuError(`GPU rejected a command: ${msg}`);
    }
  }

  /**
   * An id for a kernel to write into `flags` when it meets a bad index; the
   * next readback turns it into an OpError that says `what` ("embedding:
   * ids [2,8] into a table of 64 rows").
   */
  check(what: string): number {
    let id = this.#checkIds.get(what);
    if (id === undefined) {
      id = this.#checkNames.length;
      this.#checkIds.set(what, id);
      this.#checkNames.push(what);
    }
    return id;
  }

  /** Records one dispatch. `params` are 32-bit words (see `f32bits`). */
  dispatch(
    kernel: Kernel,
    buffers: readonly PooledBuffer[],
    params: ArrayLike<number>,
    workgroups: readonly [number, number, number],
  ): void {
    if (workgroups[0] === 0 || workgroups[1] === 0 || workgroups[2] === 0) return;
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups[0] > max || workgroups[1] > max || workgroups[2] > max) {
      throw new GpuError(`dispatch of ${workgroups.join("x")} workgroups exceeds ${max}`);
    }
    if (params.length * 4 > PARAMS_BYTES) throw new GpuError("kernel params exceed 256 bytes");
    if (this.#paramsUsed + PARAMS_BYTES > this.paramsCapacity) this.flush();
    const offset = this.#paramsUsed;
    this.#paramsU32.set(params, offset / 4);
    this.#paramsUsed += Math.ceil(Math.max(params.length * 4, 4) / this.#stride) * this.#stride;

    const profiled = this.#profile?.begin(this, kernel.key);
    const pass = profiled ?? this.#computePass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, this.cache.bindGroup(kernel, this.#params, buffers), [offset]);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    if (profiled) profiled.end();
    this.pending++;
    this.dispatches++;
  }

  #profile: Profiler | null = null;
  #profiler: Profiler | null = null;

  /**
   * Times every dispatch from here on with timestamp queries (each in its own
   * compute pass, so totals run a little above unprofiled ones).
   */
  startProfile(): void {
    if (!this.device.features.has("timestamp-query")) {
      throw new GpuError("profiling needs the adapter's timestamp-query feature");
    }
    this.flush();
    // One query set for the recorder's life, not one made and destroyed per profile: the GPU
    // benches start and stop thousands of profiles.
    this.#profiler ??= new Profiler(this.device);
    this.#profile = this.#profiler;
  }

  /** Stops profiling; GPU milliseconds and dispatch counts per kernel. */
  async stopProfile(): Promise<Map<string, { count: number; ms: number }>> {
    const p = this.#profile;
    if (!p) return new Map();
    this.flush();
    this.#profile = null;
    return await p.report();
  }

  /** A new command encoder for the profiler's own passes. */
  encoder(): GPUCommandEncoder {
    this.#endPass();
    return this.#enc();
  }

  /** Records a buffer-to-buffer copy (ends the current compute pass). */
  copy(src: PooledBuffer, srcOffset: number, dst: PooledBuffer, dstOffset: number, bytes: number) {
    if (bytes === 0) return;
    this.#endPass();
    this.#enc().copyBufferToBuffer(src.buffer, srcOffset, dst.buffer, dstOffset, bytes);
    this.pending++;
  }

  /**
   * Writes host data into a buffer. Commands recorded earlier run first:
   * they may still read what the buffer held before it was reused.
   */
  upload(dst: PooledBuffer, dstOffset: number, data: ArrayBufferView): void {
    if (this.pending > 0) this.flush();
    this.device.queue.writeBuffer(
      dst.buffer,
      dstOffset,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  /** Submits what has been recorded. Costs no wait. */
  flush(): void {
    this.checkError();
    if (!this.#encoder) return;
    this.#endPass();
    if (this.#paramsUsed > 0) {
      this.device.queue.writeBuffer(this.#params, 0, this.#paramsHost, 0, this.#paramsUsed);
    }
    this.#profile?.resolve(this.#encoder);
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#paramsUsed = 0;
    this.pending = 0;
    this.submits++;
  }

  /** Reads several regions back with one submit and one wait. */
  async read(wanted: readonly ReadRequest[]): Promise<ArrayBuffer[]> {
    const requests = [...wanted, { buf: this.flags, offset: 0, bytes: 8 }];
    let total = 0;
    const offsets = requests.map((r) => {
      const o = total;
      total += Math.ceil(r.bytes / 4) * 4;
      return o;
    });
    const staging = this.device.createBuffer({
      size: Math.max(total, 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    requests.forEach((r, i) =>
      this.copy(r.buf, r.offset, { id: 0, buffer: staging, size: total }, offsets[i], r.bytes)
    );
    this.flush();
    this.readbacks++;
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (err) {
      this.checkError();
      throw new GpuError(`readback failed: ${(err as Error).message}`);
    }
    const mapped = staging.getMappedRange();
    const out = requests.map((r, i) => mapped.slice(offsets[i], offsets[i] + r.bytes));
    staging.unmap();
    staging.destroy();
    this.checkError();
    const [id, bad] = new Int32Array(out.pop()!);
    if (id !== 0) {
      this.upload(this.flags, 0, new Uint32Array(4));
      throw new OpError(`${this.#checkNames[id] ?? "an op"}: index ${bad} is out of range`);
    }
    return out;
  }

  /** Waits until the GPU has run everything submitted. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkError();
  }

  #makeParams(): GPUBuffer {
    return this.device.createBuffer({
      size: this.paramsCapacity + PARAMS_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  #enc(): GPUCommandEncoder {
    return this.#encoder ??= this.device.createCommandEncoder();
  }

  #computePass(): GPUComputePassEncoder {
    return this.#pass ??= this.#enc().beginComputePass();
  }

  #endPass() {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The bit pattern of an f32, for a params word that WGSL reads as f32. */
export function f32bits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0];
}

/** The bit pattern of an i32, for a params word that WGSL reads as i32. */
export function i32bits(x: number): number {
  return x >>> 0;
}

/** Timestamp queries around each dispatch, resolved at every flush. */
class Profiler {
  #set: GPUQuerySet;
  #capacity = 4096;
  #used = 0;
  #labels: string[] = [];
  #batches: { labels: string[]; resolved: GPUBuffer; buffer: GPUBuffer }[] = [];

  constructor(private device: GPUDevice) {
    this.#set = device.createQuerySet({ type: "timestamp", count: this.#capacity });
  }

  begin(rec: Recorder, label: string): GPUComputePassEncoder & { end(): void } {
    if (this.#used + 2 > this.#capacity) rec.flush();
    const i = this.#used;
    this.#used += 2;
    this.#labels.push(label);
    return rec.encoder().beginComputePass({
      timestampWrites: {
        querySet: this.#set,
        beginningOfPassWriteIndex: i,
        endOfPassWriteIndex: i + 1,
      },
    });
  }

  resolve(encoder: GPUCommandEncoder): void {
    if (this.#used === 0) return;
    const bytes = this.#used * 8;
    const resolved = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const read = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.#set, 0, this.#used, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, read, 0, bytes);
    this.#batches.push({ labels: this.#labels, resolved, buffer: read });
    this.#labels = [];
    this.#used = 0;
  }

  async report(): Promise<Map<string, { count: number; ms: number }>> {
    const out = new Map<string, { count: number; ms: number }>();
    for (const { labels, resolved, buffer } of this.#batches) {
      await buffer.mapAsync(GPUMapMode.READ);
      const t = new BigInt64Array(buffer.getMappedRange());
      labels.forEach((label, i) => {
        const e = out.get(label) ?? { count: 0, ms: 0 };
        e.count++;
        e.ms += Number(t[2 * i + 1] - t[2 * i]) / 1e6;
        out.set(label, e);
      });
      buffer.unmap();
      buffer.destroy();
      resolved.destroy();
    }
    this.#batches = [];
    return out;
  }
}
