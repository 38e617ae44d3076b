/** Unary, binary, comparison and where kernels: strided, with broadcasting. */
import { BINARY, COMPARE, type ScalarAttrs, UNARY, UNARY_HELPERS } from "../ops.ts";
import {
  broadcastShapes,
  broadcastStrides,
  expectDtype,
  grid,
  launch,
  sameShape,
  stridedParams,
} from "../launch.ts";
import { contiguousStrides, Tensor } from "../tensor.ts";

const EXPR: Record<string, string> = { ...UNARY, ...UNARY_HELPERS, ...BINARY, ...COMPARE };

/** Fast path: every operand dense with the output's shape, so no index math. */
function allDense(shape: readonly number[], ts: readonly Tensor[]): boolean {
  return ts.every((t) => t.isContiguous && sameShape(t.shape, shape));
}

function run(op: string, shader: string, inputs: Tensor[], attrs: ScalarAttrs): Tensor {
  for (const t of inputs) expectDtype(op, t, "f32", "input");
  const shape = broadcastShapes(op, ...inputs);
  const out = Tensor.empty(shape);
  if (out.size === 0) return out;
  const strided = !allDense(shape, inputs);
  launch(
    { shader, defines: { EXPR: EXPR[op] ?? "0.0", STRIDED: String(strided) } },
    [...inputs, out],
    stridedParams(
      shape,
      inputs.map((t) => ({ offset: t.offset, strides: broadcastStrides(t, shape) })),
      { offset: 0, strides: contiguousStrides(shape) },
      attrs.s0 ?? 0,
      attrs.s1 ?? 0,
    ),
    grid(out.size),
  );
  return out;
}

export const unary = (op: string) => (inputs: Tensor[], attrs: ScalarAttrs) =>
  run(op, "unary.wgsl", inputs, attrs);

export const binary = (op: string) => (inputs: Tensor[]) => run(op, "binary.wgsl", inputs, {});

export const where = (inputs: Tensor[]) => run("where", "where.wgsl", inputs, {});

export function cast([x]: Tensor[], { to }: { to: "f32" | "i32" }): Tensor {
  const out = Tensor.empty(x.shape, to);
  if (out.size === 0) return out;
  launch(
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
    stridedParams(x.shape, [x], { offset: 0, strides: contiguousStrides(x.shape) }),
    grid(out.size),
  );
  return out;
}
