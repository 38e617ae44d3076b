/**
 * The fused attention kernels' block shapes side by side at the PPO shape
 * (64 sequences x 4 heads x 176 positions, head_dim 12), beside the composed
 * kernels (matmuls around a masked softmax), GPU time from timestamp queries,
 * interleaved in one process: `deno run -A bench/attention_block.ts
 * [--backward] [--qwen]` (--qwen: Qwen2.5-0.5B's attention, 8 x 512
 * positions, 14 query heads over 2 kv heads of 64; bench/gpu.sh runs it).
 */
import * as E from "../mod.ts";
import { setAttentionBlock } from "../src/tensor/impl/attention.ts";

type Block = { lanes: number; rows: number };
import { forceKernels } from "../src/tensor/kernel_choice.ts";

const gpu = await E.initGpu();
const qwen = Deno.args.includes("--qwen");
// --shape B,H,Hkv,T,D: any other.
const custom = Deno.args[Deno.args.indexOf("--shape") + 1];
const [B, H, Hkv, T, D] = Deno.args.includes("--shape")
  ? custom.split(",").map(Number)
  : qwen
  ? [8, 14, 2, 512, 64]
  : [64, 4, 4, 176, 12];
const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const x = (heads: number) =>
  E.keep(E.requiresGrad(E.tensor(rand(B * heads * T * D), [B, heads, T, D])));
const [q, k, v] = [x(H), x(Hkv), x(Hkv)];
const w = E.keep(E.tensor(rand(B * H * T * D), [B, H, T, D]));
const keyStart = E.keep(E.tensor(Int32Array.from({ length: B }, (_, i) => i % 7)));

async function time(name: string, backward: boolean) {
  const step = () =>
    E.tidy(() => {
      const o = E.attention(q, k, v, { causal: true, qOffset: 0, keyStart });
      if (backward) E.backward(E.sum(E.mul(o, w)));
      for (const t of [q, k, v]) if (t.grad) (t.grad.destroy(), (t.grad = null));
    });
  step();
  await gpu.recorder.sync();
  gpu.recorder.startProfile();
  for (let i = 0; i < 3; i++) step();
  const rep = await gpu.recorder.stopProfile();
  const ms = [...rep.values()].reduce((s, v) => s + v.ms, 0) / 3;
  const adapter = gpu.info.description;
  console.log(
    JSON.stringify({ name, backward, shape: { B, H, Hkv, T, D }, ms: +ms.toFixed(2), adapter }),
  );
}

// Forward block, then the backward kernels' block.
const shapes: [Block, Block][] = [
  [{ lanes: 8, rows: 4 }, { lanes: 8, rows: 4 }],
  [{ lanes: 8, rows: 4 }, { lanes: 8, rows: 2 }],
  [{ lanes: 8, rows: 4 }, { lanes: 8, rows: 1 }],
  [{ lanes: 8, rows: 2 }, { lanes: 8, rows: 2 }],
  [{ lanes: 8, rows: 1 }, { lanes: 8, rows: 1 }],
  [{ lanes: 64, rows: 1 }, { lanes: 64, rows: 1 }],
  [{ lanes: 32, rows: 2 }, { lanes: 64, rows: 1 }],
];
for (let rep = 0; rep < 2; rep++) {
  for (const backward of Deno.args.includes("--backward") ? [false, true] : [false]) {
    forceKernels({ attention: "composed" });
    await time("composed", backward);
    forceKernels({ attention: "fused" });
    for (const [f, b] of shapes) {
      setAttentionBlock(f, b);
      await time(`fused ${f.lanes}x${f.rows}, backward ${b.lanes}x${b.rows}`, backward);
    }
  }
}
