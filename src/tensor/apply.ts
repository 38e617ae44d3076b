import { gpu } from "../gpu/mod.ts";
import { IMPL } from "./impl.ts";
import type { OpAttrs, OpName } from "./ops.ts";
import type { Tensor } from "./tensor.ts";

/** Called after every op; src/autograd/ installs one that records the tape. */
export type RecordHook = <K extends OpName>(
  op: K,
  inputs: Tensor[],
  out: Tensor,
  attrs: OpAttrs[K],
) => void;

let hook: RecordHook | null = null;

export function setRecordHook(h: RecordHook | null): void {
  hook = h;
}

/** Runs one primitive op: checks that its inputs are alive, records its kernels and its tape entry. */
export function apply<K extends OpName>(op: K, inputs: Tensor[], attrs: OpAttrs[K]): Tensor {
  gpu().assertAlive();
  for (const t of inputs) t.buffer(op);
  const out = (IMPL[op] as (i: Tensor[], a: OpAttrs[K]) => Tensor)(inputs, attrs);
  hook?.(op, inputs, out, attrs);
  return out;
}
