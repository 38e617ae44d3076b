import { GpuError } from "../errors.ts";

/** The device and what we learned about the adapter that made it. */
export interface DeviceInfo {
  device: GPUDevice;
  /** Adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** The backend chosen through DENO_WEBGPU_BACKEND, or "auto". */
  backend: string;
  /** True for a CPU rasteriser (llvmpipe, lavapipe, SwiftShader, WARP). */
  software: boolean;
  hasF16: boolean;
  /** Every numeric limit the adapter reports: what the device was asked for. */
  adapterLimits: Record<string, number>;
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|warp|software/i;

const NO_ADAPTER = "no WebGPU adapter found: install a GPU driver, or Debian's " +
  "mesa-vulkan-drivers for the CPU software adapter (then DENO_WEBGPU_BACKEND=vulkan)";

/**
 * Takes a hardware GPU when there is one, else the software adapter (saying so
 * on stderr once), with every limit raised to the adapter's maximum.
 */
export async function requestDevice(opts: { quiet?: boolean } = {}): Promise<DeviceInfo> {
  if (typeof navigator === "undefined" || !("gpu" in navigator)) throw new GpuError(NO_ADAPTER);
  const backend = Deno.env.get("DENO_WEBGPU_BACKEND") ?? "auto";
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch {
    adapter = null;
  }
  if (!adapter) throw new GpuError(`${NO_ADAPTER} (backend: ${backend})`);

  const description = adapter.info.description || adapter.info.vendor || "unknown adapter";
  const software = adapter.info.isFallbackAdapter || SOFTWARE_NAMES.test(description);
  if (software && !opts.quiet) {
    console.error(
      `webgpu: no hardware GPU found; using the software adapter ${description} (backend: ${backend})`,
    );
  }

  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === "number") requiredLimits[key] = value;
  }
  const hasF16 = adapter.features.has("shader-f16");
  const requiredFeatures: GPUFeatureName[] = hasF16 ? ["shader-f16"] : [];
  // For the per-kernel profiler (Recorder.startProfile).
  if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  return { device, description, backend, software, hasF16, adapterLimits: requiredLimits };
}
