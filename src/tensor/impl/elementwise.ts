/** Unary, binary, comparison and where kernels: strided, with broadcasting. */
import { BINARY, COMPARE, type ScalarAttrs, UNARY, UNARY_HELPERS } from "../ops.ts";
import { broadcastShapes, broadcastStrides, expectDtype, stridedLaunch } from "../launch.ts";
import { contiguousStrides, Tensor } from "../tensor.ts";

const EXPR: Record<string, string> = { ...UNARY, ...UNARY_HELPERS, ...BINARY, ...COMPARE };

function run(op: string, shader: string, inputs: Tensor[], attrs: ScalarAttrs): Tensor {
  for (const t of inputs) expectDtype(op, t, "f32", "input");
  const shape = broadcastShapes(op, ...inputs);
  const out = Tensor.empty(shape);
  if (out.size === 0) return out;
  stridedLaunch(
    { shader, defines: { EXPR: EXPR[op] ?? "0.0" } },
    [...inputs, out],
    shape,
    inputs.map((t) => ({ offset: t.offset, strides: broadcastStrides(t, shape) })),
    { offset: 0, strides: contiguousStrides(shape) },
    attrs.s0 ?? 0,
    attrs.s1 ?? 0,
  );
  return out;
}

export const unary = (op: string) => (inputs: Tensor[], attrs: ScalarAttrs) =>
  run(op, "unary.wgsl", inputs, attrs);

export const binary = (op: string) => (inputs: Tensor[]) => run(op, "binary.wgsl", inputs, {});

export const where = (inputs: Tensor[]) => run("where", "where.wgsl", inputs, {});

export function cast([x]: Tensor[], { to }: { to: "f32" | "i32" }): Tensor {
  const out = Tensor.empty(x.shape, to);
  stridedLaunch(
    {
      shader: "cast.wgsl",
      defines: {
        EXPR: x.dtype === to
          ? "a[o.x]"
          : to === "f32"
          ? "bitcast<u32>(f32(bitcast<i32>(a[o.x])))"
          : "bitcast<u32>(i32(bitcast<f32>(a[o.x])))",
      },
    },
    [x, out],
    x.shape,
    [x],
    { offset: 0, strides: contiguousStrides(x.shape) },
  );
  return out;
}
