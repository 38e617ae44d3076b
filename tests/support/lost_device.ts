// Run as a subprocess by errors_test.ts: an op after the device is lost
// (here, destroyed) must end in one clear line, or with no adapter at all.
import * as E from "../../mod.ts";

await E.runMain(async () => {
  const gpu = await E.initGpu({ quiet: true });
  const x = E.tensor([1, 2, 3]);
  if (Deno.args[0] === "lose") {
    gpu.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
  }
  await E.exp(x).data();
  console.log("ok");
});
