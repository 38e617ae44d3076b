/** Embedding lookups and per-row gathers, with their scatter gradients. */
import {
  checkId,
  expectDtype,
  fail,
  flags,
  grid,
  launch,
  rowWG,
  sameShape,
  withDense,
} from "../launch.ts";
import { fmtShape, Tensor } from "../tensor.ts";
import { fitsLoopBudget, SOFTWARE_LOOP_BUDGET } from "../kernel_choice.ts";

/** table: [V, D]; ids: i32 [...] -> [..., D]. */
export function embedding([table, ids]: Tensor[]): Tensor {
  const op = "embedding";
  expectDtype(op, table, "f32", "table");
  expectDtype(op, ids, "i32", "ids");
  if (table.ndim !== 2) fail(op, "table must be [rows, dim]", table);
  const [V, D] = table.shape;
  const out = Tensor.empty([...ids.shape, D]);
  const check = checkId(`${op}: ids ${fmtShape(ids.shape)} into a table of ${V} rows`);
  withDense(
    [table, ids],
    (td, id) =>
      launch(
        { shader: "embedding.wgsl" },
        [td, id, out, flags()],
        [out.size, D, V, check],
        grid(out.size),
        [2, 3],
      ),
  );
  return out;
}

/** g: [..., D]; ids: i32 [...] -> [rows, D], each row the sum of its tokens' gradients. */
/** Table rows one invocation scans in embedding_backward.wgsl's first scan step (its SCAN_BLOCK). */
const SCAN_BLOCK = 4096;

export function embeddingBackward([g, ids]: Tensor[], { rows }: { rows: number }): Tensor {
  const op = "embeddingBackward";
  const D = g.shape[g.ndim - 1];
  if (!sameShape(g.shape.slice(0, -1), ids.shape)) {
    fail(op, "grad must be ids' shape plus a dim axis", g, ids);
  }
  const tokens = ids.size;
  // count and list walk every token in one invocation per table row.
  if (!fitsLoopBudget(tokens)) {
    fail(
      op,
      `${tokens} tokens in one batch are more than one invocation may walk on the CPU adapter (llvmpipe stops a shader after ${SOFTWARE_LOOP_BUDGET} loop steps); use smaller batches`,
      g,
    );
  }
  const blocks = Math.ceil(rows / SCAN_BLOCK);
  const start = Tensor.empty([rows + 1], "i32");
  const order = Tensor.empty([Math.max(tokens, 1)], "i32");
  const out = Tensor.empty([rows, D]);
  const offsets = Tensor.empty([Math.max(blocks, 1)], "i32");
  const wg = rowWG();
  withDense([ids, g], (id, gd) => {
    const ts = [id, gd, start, order, out, offsets];
    const params = [tokens, D, rows];
    const spec = {
      shader: "embedding_backward.wgsl",
      constants: { WG: wg },
      bindings: ["read", "read", "rw", "rw", "rw", "rw"] as const,
    };
    launch({ ...spec, entry: "count" }, ts, params, grid(rows, wg));
    launch({ ...spec, entry: "scan_blocks" }, ts, params, grid(blocks, wg));
    launch({ ...spec, entry: "scan_offsets", constants: {} }, ts, params, [1, 1, 1]);
    launch({ ...spec, entry: "add_offsets" }, ts, params, grid(rows, wg));
    launch({ ...spec, entry: "list" }, ts, params, grid(rows, wg));
    launch({ ...spec, entry: "sum" }, ts, params, grid(rows * D, wg));
  });
  start.destroy();
  order.destroy();
  offsets.destroy();
  return out;
}

/** x: [..., n]; idx: i32 [...] -> [...]: x[..., idx]. */
export function gatherLast([x, idx]: Tensor[]): Tensor {
  const op = "gatherLast";
  expectDtype(op, x, "f32", "input");
  expectDtype(op, idx, "i32", "index");
  if (!sameShape(x.shape.slice(0, -1), idx.shape)) {
    fail(op, "index must have x's shape without the last axis", x, idx);
  }
  const n = x.shape[x.ndim - 1];
  const out = Tensor.empty(idx.shape);
  const check = checkId(`${op}: index ${fmtShape(idx.shape)} into a last axis of ${n}`);
  const wg = rowWG();
  withDense(
    [x, idx],
    (xd, id) =>
      launch(
        { shader: "gather_last.wgsl", constants: { WG: wg } },
        [xd, id, out, flags()],
        [idx.size, n, check],
        grid(idx.size, wg),
        [2, 3],
      ),
  );
  return out;
}

/** The gradient of gatherLast: zeros [..., n] with g at each row's index. */
export function scatterLast([g, idx]: Tensor[], { n }: { n: number }): Tensor {
  const out = Tensor.empty([...idx.shape, n]);
  withDense(
    [g, idx],
    (gd, id) =>
      launch({ shader: "scatter_last.wgsl" }, [gd, id, out], [out.size, n], grid(out.size)),
  );
  return out;
}
