/** Opens the GPU once per test process (quietly) and exposes small helpers. */
import { initGpu, readAll, type Tensor, tensor } from "../../mod.ts";

export const gpu = await initGpu({ quiet: true });

export { readAll, tensor };

export async function host(t: Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

/** Random shapes for a test, odd sizes included. */
export const ODD = [1, 3, 7, 17, 33, 65];
