/**
 * GPU-side kernel times from timestamp queries (no host waits counted):
 * `deno run -A bench/kernel_times.ts [--json]`. On a hardware GPU a wait
 * costs more than many kernels, so deno bench's wall times understate them.
 * `--torch` adds PyTorch's own CPU matmul on the same products, measured in
 * the same run (bench/torch_matmul.py), so a ratio never mixes two days.
 */
import * as E from "../mod.ts";
import { useMatmulKernel } from "../src/tensor/impl/matmul.ts";
import { runTorchScript, torchThreads } from "./torch_run.ts";

const gpu = await E.initGpu();
const json = Deno.args.includes("--json");
// --kernel tiled --kernel tiled128: time these matmul kernels side by side (default: the adapter's own).
const kernels = Deno.args.flatMap((a, i) => (Deno.args[i - 1] === "--kernel" ? [a] : []));
let kernel = "auto";
const REPS = 20;

function rand(n: number): Float32Array {
  let s = 1;
  return Float32Array.from(
    { length: n },
    () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5,
  );
}

async function time(name: string, flops: number, run: () => void) {
  E.tidy(run);
  await gpu.recorder.sync();
  gpu.recorder.startProfile();
  for (let i = 0; i < REPS; i++) E.tidy(run);
  const rep = await gpu.recorder.stopProfile();
  const ms = [...rep.values()].reduce((s, v) => s + v.ms, 0) / REPS;
  const row = {
    name,
    kernel,
    ms: +ms.toFixed(4),
    gflops: +(flops / ms / 1e6).toFixed(1),
    adapter: gpu.info.description,
  };
  console.log(
    json
      ? JSON.stringify(row)
      : `${kernel.padEnd(9)} ${name.padEnd(36)} ${
        ms.toFixed(3).padStart(9)
      } ms  ${row.gflops} GFLOP/s`,
  );
}

for (const k of kernels.length ? kernels : ["auto"]) {
  kernel = k;
  useMatmulKernel(k as "auto");
  await timeAll();
}
if (Deno.args.includes("--torch")) await torchMatmul();

/** PyTorch's rows on the same products, printed as they come. */
async function torchMatmul() {
  const lines = await runTorchScript("torch_matmul.py", [String(torchThreads())]);
  if (!lines) return;
  for (const line of lines) {
    const row = JSON.parse(line);
    console.log(
      json
        ? line
        : `${"torch".padEnd(9)} ${row.name.padEnd(36)} ${
          row.ms.toFixed(3).padStart(9)
        } ms  ${row.gflops} GFLOP/s`,
    );
  }
}

async function timeAll() {
  for (const n of [256, 512, 1024, 2048, 4096]) {
    const a = E.keep(E.tensor(rand(n * n), [n, n]));
    const b = E.keep(E.tensor(rand(n * n), [n, n]));
    await time(`matmul ${n}x${n}x${n} nn`, 2 * n ** 3, () => void E.matmul(a, b));
    a.destroy();
    b.destroy();
  }
  for (const d of [128, 256]) {
    const T = 4096;
    const x = E.keep(E.tensor(rand(T * d), [T, d]));
    const w = E.keep(E.tensor(rand(4 * d * d), [4 * d, d]));
    const g = E.keep(E.tensor(rand(T * 4 * d), [T, 4 * d]));
    await time(
      `linear fwd ${T}x${4 * d}x${d} nt`,
      2 * T * 4 * d * d,
      () => void E.matmul(x, w, { transB: true }),
    );
    await time(`linear dX ${T}x${d}x${4 * d} nn`, 2 * T * 4 * d * d, () => void E.matmul(g, w));
    await time(
      `linear dW ${4 * d}x${d}x${T} tn`,
      2 * T * 4 * d * d,
      () => void E.matmul(g, x, { transA: true }),
    );
    [x, w, g].forEach((t) => t.destroy());
  }
  // A head permute of the teacher's prefill, [B, T, H, D] -> [B, H, T, D]: a strided copy, which
  // ran 4-6 times slower over GL than over Vulkan until strided.wgsl indexed its uniforms in place.
  // Its figure is GB/s (bytes read and written), printed in the GFLOP/s column.
  const shape = [64, 136, 4, 24];
  const n = shape.reduce((a, b) => a * b);
  const x = E.keep(E.tensor(rand(n), shape));
  await time(
    `permute ${shape.join("x")} (GB/s)`,
    2 * 4 * n,
    () => void E.contiguous(E.permute(x, [0, 2, 1, 3])),
  );
  x.destroy();
}
