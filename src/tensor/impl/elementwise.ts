/** Unary, binary, comparison and where kernels: strided, with broadcasting. */
import { BINARY, COMPARE, type ScalarAttrs, UNARY, UNARY_HELPERS } from "../ops.ts";
import {
  broadcastShapes,
  broadcastStrides,
  expectDtype,
  stridedLaunch,
  vec4Walks,
} from "../launch.ts";
import { contiguousStrides, Tensor } from "../tensor.ts";

const EXPR: Record<string, string> = { ...UNARY, ...UNARY_HELPERS, ...BINARY, ...COMPARE };

/** unary.wgsl / binary.wgsl's APPLY: f over the operands `x` (and `y`), per component for vec4. */
function applyF(arity: number, vec4: boolean): string {
  const args = (c: string) => ["x", "y"].slice(0, arity).map((v) => v + c).join(", ");
  if (!vec4) return `f(${args("")})`;
  return `vec4<f32>(${[".x", ".y", ".z", ".w"].map((c) => `f(${args(c)})`).join(", ")})`;
}

/**
 * Records `shader` over the broadcast shape. For unary.wgsl and binary.wgsl (`lanes`), where every
 * operand's innermost axis is contiguous and aligned, four elements per invocation as vec4.
 */
function run(
  op: string,
  shader: string,
  inputs: Tensor[],
  attrs: ScalarAttrs,
  lanes = true,
): Tensor {
  for (const t of inputs) expectDtype(op, t, "f32", "input");
  const shape = broadcastShapes(op, ...inputs);
  const out = Tensor.empty(shape);
  if (out.size === 0) return out;
  const walks = inputs.map((t) => ({ offset: t.offset, strides: broadcastStrides(t, shape) }));
  const outWalk = { offset: 0, strides: contiguousStrides(shape) };
  const expr = { EXPR: EXPR[op] ?? "0.0" };
  const { s0 = 0, s1 = 0 } = attrs;
  const v = lanes ? vec4Walks(shape, [...walks, outWalk]) : null;
  if (v) {
    const [outWalk4] = v.walks.splice(-1);
    const defines = { ...expr, ELEM: "vec4<f32>", APPLY: applyF(inputs.length, true) };
    stridedLaunch({ shader, defines }, [...inputs, out], v.shape, v.walks, outWalk4, s0, s1);
  } else {
    const defines = lanes ? { ...expr, ELEM: "f32", APPLY: applyF(inputs.length, false) } : expr;
    stridedLaunch({ shader, defines }, [...inputs, out], shape, walks, outWalk, s0, s1);
  }
  return out;
}

export const unary = (op: string) => (inputs: Tensor[], attrs: ScalarAttrs) =>
  run(op, "unary.wgsl", inputs, attrs);

export const binary = (op: string) => (inputs: Tensor[]) => run(op, "binary.wgsl", inputs, {});

export const where = (inputs: Tensor[]) => run("where", "where.wgsl", inputs, {}, false);

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
