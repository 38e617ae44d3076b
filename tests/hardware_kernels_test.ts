/**
 * The hardware GPU's kernel choice (kernel_choice.ts: workgroup-per-row row
 * kernels, vec4 workgroup-tiled matmuls, two-pass reductions) run on whatever adapter this is,
 * through the same float64 and finite-difference checks as the CPU adapter's
 * kernels: ops_test.ts, grad_test.ts, sample_test.ts, optim_test.ts and long_rows_test.ts are imported with the choice forced,
 * so their tests run twice, once per flavour (a failure here names the file
 * the test was written in).
 */
import { forceKernels } from "../src/tensor/kernel_choice.ts";

forceKernels({ rows: "workgroup", matmul: "gpu", reduce: "two-pass" });
await import("./ops_test.ts");
await import("./grad_test.ts");
await import("./sample_test.ts");
await import("./optim_test.ts");
await import("./long_rows_test.ts");
