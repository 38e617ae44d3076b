import type { PooledBuffer } from "./pool.ts";

/** How a kernel uses each storage binding after the uniform at binding 0. */
export type Access = "read" | "rw";

/** `{{NAME}}` substitutions, or the parameters of a generated kernel. */
export type Defines = Record<string, string | number | boolean>;

/** Everything that makes one compiled pipeline distinct. */
export interface KernelSpec {
  /** File under shaders/, e.g. "unary.wgsl"; with `generate`, the kernel's name. */
  shader: string;
  /** `{{NAME}}` text substitutions in the shader source, or the arguments of `generate`. */
  defines?: Defines;
  /**
   * Writes the WGSL from `defines` instead of reading `shader` from shaders/;
   * called when the pipeline is first created. Must depend on `defines` only:
   * they are the cache key.
   */
  generate?: (defines: Defines) => string;
  /** WGSL `override` constants. */
  constants?: Record<string, number>;
  /** Entry point; "main" if omitted. */
  entry?: string;
  /** Storage bindings 1..n. */
  bindings: readonly Access[];
}

/** Bytes of the uniform block every kernel sees at binding 0. */
export const PARAMS_BYTES = 256;

export interface Kernel {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  key: string;
}

const shaderRoot = new URL("../../shaders/", import.meta.url);
const sourceCache = new Map<string, string>();

function readShader(file: string): string {
  let src = sourceCache.get(file);
  if (src === undefined) {
    src = Deno.readTextFileSync(new URL(file, shaderRoot));
    sourceCache.set(file, src);
  }
  return src;
}

export function shaderSource(file: string, defines: Defines = {}): string {
  const fill = (text: string) =>
    text.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
      if (!(name in defines)) throw new Error(`shader ${file}: no value for {{${name}}}`);
      return String(defines[name]);
    });
  // WGSL has no include; shared code lives in shaders/lib/. An include's path
  // may name a define ("lib/rows_{{ROWS}}.wgsl" picks a row-kernel flavour).
  return fill(readShader(file)).replace(
    /^#include "([^"]+)"$/gm,
    (_, inc: string) => fill(readShader(inc)),
  );
}

/**
 * Compiles each distinct kernel once, and keeps one bind group per distinct
 * set of buffers: pooled buffers come back in the same order every step, so a
 * training loop stops creating bind groups after its first step.
 */
export class PipelineCache {
  #kernels = new Map<string, Kernel>();
  #layouts = new Map<string, GPUBindGroupLayout>();
  #bindGroups = new Map<string, GPUBindGroup>();
  #byBuffer = new Map<number, string[]>();

  constructor(private device: GPUDevice) {}

  kernel(spec: KernelSpec): Kernel {
    const key = `${spec.shader}:${spec.entry ?? "main"}|${JSON.stringify(spec.defines ?? {})}|${
      JSON.stringify(spec.constants ?? {})
    }|${spec.bindings.join(",")}`;
    let k = this.#kernels.get(key);
    if (k) return k;
    const layout = this.#layout(spec.bindings);
    const module = this.device.createShaderModule({
      label: spec.shader,
      code: spec.generate
        ? spec.generate(spec.defines ?? {})
        : shaderSource(spec.shader, spec.defines),
    });
    const pipeline = this.device.createComputePipeline({
      label: spec.shader,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entry ?? "main", constants: spec.constants },
    });
    k = { pipeline, layout, key };
    this.#kernels.set(key, k);
    return k;
  }

  bindGroup(kernel: Kernel, params: GPUBuffer, buffers: readonly PooledBuffer[]): GPUBindGroup {
    const key = `${kernel.key}#${buffers.map((b) => b.id).join(",")}`;
    let bg = this.#bindGroups.get(key);
    if (bg) return bg;
    bg = this.device.createBindGroup({
      layout: kernel.layout,
      entries: [
        { binding: 0, resource: { buffer: params, size: PARAMS_BYTES } },
        ...buffers.map((b, i) => ({ binding: i + 1, resource: { buffer: b.buffer } })),
      ],
    });
    this.#bindGroups.set(key, bg);
    for (const b of buffers) {
      let keys = this.#byBuffer.get(b.id);
      if (!keys) this.#byBuffer.set(b.id, keys = []);
      keys.push(key);
    }
    return bg;
  }

  /** Drops the bind groups that name a buffer about to be destroyed. */
  forget(buf: PooledBuffer): void {
    for (const key of this.#byBuffer.get(buf.id) ?? []) this.#bindGroups.delete(key);
    this.#byBuffer.delete(buf.id);
  }

  /** Drops every bind group, e.g. when the params buffer is replaced. */
  forgetAll(): void {
    this.#bindGroups.clear();
    this.#byBuffer.clear();
  }

  #layout(bindings: readonly Access[]): GPUBindGroupLayout {
    const key = bindings.join(",");
    let layout = this.#layouts.get(key);
    if (layout) return layout;
    layout = this.device.createBindGroupLayout({
      entries: [
        {
          binding: 0,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: PARAMS_BYTES },
        },
        ...bindings.map((access, i) => ({
          binding: i + 1,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: access === "read" ? "read-only-storage" as const : "storage" as const },
        })),
      ],
    });
    this.#layouts.set(key, layout);
    return layout;
  }
}
