/**
 * `deno task distill`: the distillation pipeline (arXiv 2502.19557). The
 * engine it runs on is in place; the stages land next (see README).
 */
import { initGpu, runMain } from "../../mod.ts";

await runMain(async () => {
  const gpu = await initGpu();
  console.log(`engine ready on ${gpu.info.description}`);
  console.log(
    "the distillation stages are not built yet: this release is the engine " +
      "(tensor ops, autodiff, AdamW); run `deno task test` and `deno task bench` to exercise it",
  );
});
