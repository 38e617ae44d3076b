// Writes every shader file the plan can pick into shaders/matmul/:
//   deno run -A tools/matmul/emit_all.ts
import { genKernel, type KCfg } from "./emit.ts";
import { matmulShaderFiles } from "../../src/tensor/matmul_plan.ts";
const dir = new URL("../../shaders/matmul/", import.meta.url).pathname;
Deno.mkdirSync(dir, { recursive: true });
for (const f of Deno.readDirSync(dir)) if (f.name.endsWith(".wgsl")) Deno.removeSync(dir + f.name);
let bytes = 0;
for (const f of matmulShaderFiles()) {
  let m = f.match(/^mm_v4_([nt])([nt])_r(\d+)c(\d+)(_c4)?\.wgsl$/);
  let cfg: KCfg;
  if (m) cfg = { R: +m[3], C: +m[4], tA: m[1] === "t", tB: m[2] === "t", vec: true, cVec: !!m[5] };
  else {
    m = f.match(/^mm_f32_any_r(\d+)c(\d+)\.wgsl$/)!;
    cfg = { R: +m[1], C: +m[2], tA: "override", tB: "override", vec: false, cVec: false };
  }
  const code = genKernel(cfg);
  Deno.writeTextFileSync(dir + f, code);
  bytes += code.length;
}
console.log(matmulShaderFiles().length, "files", (bytes / 1024).toFixed(0), "KiB");
