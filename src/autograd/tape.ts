/**
 * Reverse-mode autodiff: ops record themselves on the tensors they make (the
 * tape), and backward() walks it from the loss, applying GRADS.
 */
import { OpError } from "../errors.ts";
import * as T from "../tensor/api.ts";
import { setRecordHook } from "../tensor/apply.ts";
import { type DiffOp, isDifferentiable } from "../tensor/ops.ts";
import { fmtShape, keep, type Tensor, tidy } from "../tensor/tensor.ts";
import { type GradRule, GRADS } from "./grads.ts";

let enabled = true;

/** Runs fn without recording the tape (generation, evaluation). */
export function noGrad<R>(fn: () => R): R {
  const was = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = was;
  }
}

export function isGradEnabled(): boolean {
  return enabled;
}

setRecordHook((op, inputs, out, attrs) => {
  if (!enabled || !isDifferentiable(op) || !inputs.some((t) => t.requiresGrad)) return;
  out.requiresGrad = true;
  out.node = { op, inputs, attrs };
});

/** Marks tensors as leaves whose gradients backward() accumulates in `.grad`. */
export function requiresGrad<T extends Tensor>(t: T): T {
  t.requiresGrad = true;
  return t;
}

/** Tensors reachable from `root` through the tape, inputs before users. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, done] = stack.pop()!;
    if (done) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const i of t.node?.inputs ?? []) {
      if (i.requiresGrad && !seen.has(i)) stack.push([i, false]);
    }
  }
  return order;
}

/**
 * Accumulates d(root)/d(leaf) into every leaf's `.grad` (adding to what is
 * there, so calling it per micro-batch accumulates gradients). `grad` seeds
 * the root; it defaults to 1 for a one-element root. Intermediate gradients
 * are freed as soon as they are used.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) throw new OpError("backward: the tensor does not require grad");
  if (!grad && root.size !== 1) {
    throw new OpError(
      `backward: a gradient is needed for a non-scalar root of shape ${fmtShape(root.shape)}`,
    );
  }
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>();
  grads.set(
    root,
    grad ? grad.view(grad.shape, grad.strides, grad.offset) : keep(T.ones(root.shape)),
  );
  noGrad(() => {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      const node = t.node;
      if (!node) {
        accumulateLeaf(t, g);
        continue;
      }
      const rule = GRADS[node.op as DiffOp] as GradRule<DiffOp>;
      const results = tidy(() =>
        // Each result gets its own handle on shared storage, so that freeing
        // one (or g itself) never frees another.
        rule(g, node.inputs, t, node.attrs as never).map((x) =>
          x && x.view(x.shape, x.strides, x.offset)
        )
      );
      g.destroy();
      node.inputs.forEach((input, k) => {
        const gi = results[k];
        if (!gi) return;
        if (!input.requiresGrad) return gi.destroy();
        if (gi.shape.length !== input.ndim || gi.shape.some((d, j) => d !== input.shape[j])) {
          throw new OpError(
            `backward: the ${node.op} rule gave a gradient of shape ${fmtShape(gi.shape)} ` +
              `for an input of shape ${fmtShape(input.shape)}`,
          );
        }
        const prev = grads.get(input);
        if (prev) {
          grads.set(input, T.add(prev, gi));
          prev.destroy();
          gi.destroy();
        } else {
          grads.set(input, gi);
        }
      });
      if (t !== root) t.node = null;
    }
  });
  root.node = null;
}

function accumulateLeaf(t: Tensor, g: Tensor) {
  if (!(g.isContiguous && g.offset === 0)) {
    // Optimizers read .grad as a dense array.
    const dense = T.contiguous(g);
    g.destroy();
    g = dense;
  }
  if (t.grad) {
    const sum = keep(T.add(t.grad, g));
    t.grad.destroy();
    g.destroy();
    t.grad = sum;
  } else {
    t.grad = keep(g);
  }
}
