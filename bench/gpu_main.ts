/**
 * One entry point for the hardware-GPU measurements of bench/gpu.sh, so that
 * a single bundle travels to a machine without Deno's package cache:
 * `gpu_main.ts matmul [--json]` (bench/gpu_matmul.ts) or
 * `gpu_main.ts rows [--json]` (bench/gpu_rows.ts) or
 * `gpu_main.ts model --preset qwen2.5-0.5b [...]` (bench/model_bench.ts) or
 * `gpu_main.ts attention [--backward] [--qwen]` (bench/attention_block.ts).
 */
const [what] = Deno.args;
if (what === "matmul") await import("./gpu_matmul.ts");
else if (what === "rows") await import("./gpu_rows.ts");
else if (what === "model") await import("./model_bench.ts");
else if (what === "attention") await import("./attention_block.ts");
else throw new Error(`gpu_main: say "matmul", "rows", "model" or "attention", got ${what}`);
