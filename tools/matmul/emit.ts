/**
 * Prints the generated WGSL of a matmul variant, for reading; writes no file.
 *   deno run tools/matmul/emit.ts                     # the variants planMatmul can pick
 *   deno run tools/matmul/emit.ts mm_v4_nn_r64c8_c4   # one variant's WGSL on stdout
 */
import { matmulVariants } from "../../src/tensor/matmul_plan.ts";
import { matmulVariantName, matmulWgsl } from "../../src/tensor/matmul_wgsl.ts";

const byName = new Map(matmulVariants().map((v) => [matmulVariantName(v), v]));
const name = Deno.args[0];
if (!name) console.log([...byName.keys()].join("\n"));
else {
  const v = byName.get(name.replace(/\.wgsl$/, ""));
  if (!v) {
    console.error(`unknown variant ${name}; run without arguments for the list`);
    Deno.exit(1);
  }
  console.log(matmulWgsl(v).trimEnd());
}
