/** Bad input gets one clear line naming the op and the shapes, never a raw GPU dump. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import "./support/gpu.ts";

function assertOneLine(fn: () => unknown, ...parts: string[]) {
  assert.throws(fn, (err: Error) => {
    assert.ok(err instanceof E.OpError, `${err.name}: ${err.message}`);
    checkMessage(err.message, parts);
    return true;
  });
}

async function assertRejects(p: Promise<unknown>, ...parts: string[]) {
  await assert.rejects(p, (err: Error) => {
    assert.ok(err instanceof E.EngineError, `${err.name}: ${err.message}`);
    checkMessage(err.message, parts);
    return true;
  });
}

function checkMessage(msg: string, parts: string[]) {
  assert.ok(!msg.includes("\n"), `not one line: ${msg}`);
  assert.ok(!/validation|wgsl|GPUBuffer/i.test(msg), `raw GPU text: ${msg}`);
  for (const p of parts) assert.ok(msg.includes(p), `"${msg}" does not mention "${p}"`);
}

Deno.test("shape mismatches name the op and the shapes", () => {
  const a = E.tensor(new Float32Array(6), [2, 3]);
  const b = E.tensor(new Float32Array(20), [4, 5]);
  assertOneLine(
    () => E.matmul(a, b),
    "matmul",
    "inner dimensions differ (3 vs 4)",
    "f32[2,3]",
    "f32[4,5]",
  );
  assertOneLine(() => E.add(a, E.tensor([1, 2])), "add", "broadcast", "[2,3]", "[2]");
  assertOneLine(() => E.rmsNorm(a, E.tensor([1, 1])), "rmsNorm", "weight must be [3]");
  assertOneLine(
    () => E.crossEntropy(a, E.tensor(new Int32Array(3))),
    "crossEntropy",
    "labels",
    "i32[3]",
  );
  assertOneLine(() => E.embedding(a, E.tensor([0, 1])), "embedding", "ids must be i32");
  assertOneLine(() => E.reshape(a, [4, 2]), "reshape", "cannot view 6 elements as [4,2]");
  assertOneLine(() => E.slice(a, [0, 1], [2, 4]), "slice", "out of bounds");
  assertOneLine(() => E.tensor([1, 2, 3], [2, 2]), "3 values do not fill shape [2,2]");
});

Deno.test("an out-of-range index is reported at the next readback, naming the op", async () => {
  const table = E.tensor(new Float32Array(64 * 4), [64, 4]);
  const ids = E.tensor(new Int32Array([1, 70, 3, 4, 5, 6]), [2, 3]);
  await assertRejects(
    E.embedding(table, ids).data(),
    "embedding",
    "ids [2,3]",
    "table of 64 rows",
    "index 70",
  );
  // The flag is cleared: good input reads back normally afterwards.
  assert.equal((await E.embedding(table, E.tensor(new Int32Array([2]))).data()).length, 4);
  const logits = E.tensor(new Float32Array(10), [2, 5]);
  await assertRejects(
    E.crossEntropy(logits, E.tensor(new Int32Array([1, 5]))).data(),
    "crossEntropy",
    "index 5",
  );
  await assertRejects(
    E.gatherLast(logits, E.tensor(new Int32Array([-2, 0]))).data(),
    "gatherLast",
    "index -2",
  );
});

Deno.test("use after destroy() names the op and the tensor", async () => {
  const a = E.tensor([1, 2, 3, 4], [2, 2]);
  const b = E.tensor([1, 2, 3, 4], [2, 2]);
  b.destroy();
  assertOneLine(() => E.matmul(a, b), "matmul", "[2,2]", "used after destroy()");
  await assert.rejects(b.data(), /used after destroy\(\)/);
  const v = E.transpose(a);
  a.destroy();
  // A view keeps its storage alive.
  assert.deepEqual(Array.from(await v.data()), [1, 3, 2, 4]);
});

async function runScript(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./support/lost_device.ts", import.meta.url).pathname, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr).split("\n").filter((l) =>
    l && !l.includes("XDG_RUNTIME_DIR")
  );
  return { code: out.code, stderr, stdout: new TextDecoder().decode(out.stdout) };
}

Deno.test("a lost device is one clear error line", async () => {
  const { code, stderr } = await runScript(["lose"]);
  assert.equal(code, 1);
  assert.equal(stderr.length, 1, stderr.join("\n"));
  assert.match(stderr[0], /^error: the GPU device was lost \(destroyed\)/);
});

Deno.test("no adapter at all: one line naming what to install, no stack trace", async () => {
  // Deno's WebGPU finds no adapter for a backend this OS lacks.
  const { code, stderr } = await runScript([], { DENO_WEBGPU_BACKEND: "metal" });
  assert.equal(code, 1);
  assert.equal(stderr.length, 1, stderr.join("\n"));
  assert.match(
    stderr[0],
    /^error: no WebGPU adapter found: install a GPU driver, or Debian's mesa-vulkan-drivers/,
  );
});
