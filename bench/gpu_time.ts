/**
 * GPU time of a piece of work from timestamp queries (the recorder's profiler), for the
 * hardware-GPU benches: `run` is recorded in batches that double up to 64 until `seconds` of GPU
 * time have passed.
 */
import * as E from "../mod.ts";

export async function gpuTime(
  run: () => void,
  seconds: number,
): Promise<{ ms: number; reps: number }> {
  const gpu = E.gpu();
  let total = 0, reps = 0, batch = 1;
  while (reps === 0 || total < seconds * 1000) {
    gpu.recorder.startProfile();
    for (let i = 0; i < batch; i++) E.tidy(run);
    const rep = await gpu.recorder.stopProfile();
    total += [...rep.values()].reduce((sum, v) => sum + v.ms, 0);
    reps += batch;
    batch = Math.min(batch * 2, 64);
  }
  return { ms: total / reps, reps };
}

/** Runs `run` `warm` seconds untimed (the GPU clock ramps up under load), then times it. */
export async function warmThenTime(
  run: () => void,
  warm: number,
  timed: number,
): Promise<{ ms: number; reps: number }> {
  E.tidy(run);
  await E.gpu().recorder.sync();
  await gpuTime(run, warm);
  return await gpuTime(run, timed);
}
