/** The GPU layer: pool, caches, batched readbacks. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import { BufferPool, sizeClass } from "../src/gpu/pool.ts";
import { gpu } from "./support/gpu.ts";

Deno.test("size classes waste at most 12.5% and are reused", () => {
  for (const b of [1, 100, 256, 1000, 4097, 1 << 20, 3e6 + 7]) {
    const c = sizeClass(b);
    assert.ok(c >= b && c % 16 === 0);
    assert.ok(c <= Math.max(256, b * 1.125 + 16), `${b} -> ${c}`);
  }
  // An H200's per-binding limit is 2 GiB − 4; 3,533 rows of 151,936 logits fit it, their class did not.
  const h200 = 2 ** 31 - 4, logits = 3533 * 151936 * 4;
  assert.ok(sizeClass(logits) > h200);
  assert.ok(sizeClass(logits, h200) <= h200 && sizeClass(logits, h200) >= logits);
  assert.equal(sizeClass(h200, h200), h200);
  assert.equal(sizeClass(h200 + 4, h200), sizeClass(h200 + 4));
  const before = gpu.pool.allocatedBytes;
  const a = E.tensor(new Float32Array(1000));
  a.destroy();
  const b = E.tensor(new Float32Array(990));
  assert.equal(gpu.pool.allocatedBytes - before, sizeClass(4000));
  b.destroy();
});

Deno.test("tidy frees what it made, keeps what it returns", () => {
  const live = gpu.pool.liveBytes;
  const kept = E.tidy(() => {
    const a = E.tensor([1, 2, 3]);
    const b = E.exp(a);
    E.add(a, b);
    return E.mul(b, 2);
  });
  assert.equal(kept.destroyed, false);
  kept.destroy();
  assert.equal(gpu.pool.liveBytes, live);
});

Deno.test("readAll reads many tensors with one GPU wait", async () => {
  const ts = Array.from({ length: 20 }, (_, i) => E.tensor([i, i + 1]));
  const before = gpu.recorder.readbacks;
  const out = await E.readAll(ts);
  assert.equal(gpu.recorder.readbacks - before, 1);
  assert.deepEqual(out.map((a) => a[1]), Array.from({ length: 20 }, (_, i) => i + 1));
});

Deno.test("the pipeline cache compiles each kernel once", () => {
  const spec = {
    shader: "softmax.wgsl",
    defines: { LOG: "true", ROWS: "invocation" },
    constants: { WG: 8 },
    bindings: ["read", "rw"] as const,
  };
  assert.equal(gpu.pipelines.kernel(spec), gpu.pipelines.kernel({ ...spec }));
  assert.notEqual(
    gpu.pipelines.kernel(spec),
    gpu.pipelines.kernel({ ...spec, constants: { WG: 16 } }),
  );
});

Deno.test("the device's limits are the adapter's maxima, not WebGPU's defaults", async () => {
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  assert.ok(adapter, "no adapter");
  const device = gpu.device.limits as unknown as Record<string, number>;
  const maxima = adapter.limits as unknown as Record<string, number>;
  const keys = Object.keys(gpu.info.adapterLimits);
  assert.ok(keys.includes("maxStorageBufferBindingSize") && keys.includes("maxBufferSize"));
  for (const key of keys) {
    assert.equal(gpu.info.adapterLimits[key], maxima[key], `${key}: asked for another value`);
    assert.equal(device[key], maxima[key], `${key}: device ${device[key]}, adapter ${maxima[key]}`);
  }
});

Deno.test("trimTo frees the least recently released size classes first, down to the limit", () => {
  const pool = new BufferPool(gpu.device);
  const MB = 2 ** 20;
  const [a, b, c] = [1 * MB, 2 * MB, 4 * MB].map((n) => pool.acquire(n));
  const a2 = pool.acquire(1 * MB);
  // Released in the order a, c, b, a2: class 1 MB was released last (by a2).
  for (const buf of [a, c, b, a2]) pool.release(buf);
  assert.equal(pool.freeBytes, 8 * MB);
  pool.trimTo(4 * MB);
  // c's class (4 MB, least recent once a2 moved 1 MB to the back) went first: 4 MB left.
  assert.equal(pool.freeBytes, 4 * MB);
  assert.equal(pool.acquire(4 * MB).id === c.id, false);
  pool.trimTo(0);
  assert.equal(pool.liveBytes, 4 * MB);
  assert.equal(pool.allocatedBytes, 4 * MB);
  pool.destroy();
});

Deno.test("the profiler counts every dispatch across flushes and many profiles", async () => {
  const a = E.keep(E.tensor(new Float32Array(64).fill(1)));
  try {
    // 2,100 dispatches take 4,200 timestamps, past one query set's 4,096: a flush mid-profile.
    gpu.recorder.startProfile();
    for (let i = 0; i < 2100; i++) E.tidy(() => void E.exp(a));
    const big = await gpu.recorder.stopProfile();
    assert.deepEqual([...big.values()].map((v) => v.count), [2100]);
    for (let p = 0; p < 200; p++) {
      gpu.recorder.startProfile();
      E.tidy(() => void E.exp(a));
      const one = [...(await gpu.recorder.stopProfile()).values()];
      assert.ok(one.length === 1 && one[0].count === 1 && one[0].ms >= 0, JSON.stringify(one));
    }
  } finally {
    a.destroy();
  }
});
