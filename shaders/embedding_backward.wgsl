// dL/dtable of embedding.wgsl without float atomics, and deterministic: a
// counting sort of token positions by id, then one invocation per table
// element sums the gradient rows of its own tokens, in token order.
//   count:   cnt[v] = number of n with ids[n] == v   (one invocation per row v)
//   scan:    start[v] = exclusive prefix sum of cnt, in three steps so that no
//            invocation walks more than SCAN_BLOCK rows or blocks (llvmpipe
//            ends a shader's loops after 65,535 steps): scan_blocks within
//            blocks of SCAN_BLOCK rows, scan_offsets over the blocks' totals,
//            add_offsets back into every row
//   list:    order[start[v] ..] = the n with ids[n] == v, ascending
//   sum:     out[v, d] = sum of g[n, d] over those n
#include "lib/rows.wgsl"

struct Params { tokens: u32, dim: u32, rows: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> start: array<u32>;   // rows + 1
@group(0) @binding(4) var<storage, read_write> order: array<u32>;   // tokens
@group(0) @binding(5) var<storage, read_write> out: array<f32>;     // rows * dim
@group(0) @binding(6) var<storage, read_write> offsets: array<u32>; // ceil(rows / SCAN_BLOCK)

@compute @workgroup_size(WG)
fn count(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let v = row_index(wg, nwg, lid);
  if (v >= p.rows) { return; }
  var c = 0u;
  for (var n = 0u; n < p.tokens; n++) { c += select(0u, 1u, ids[n] == i32(v)); }
  start[v + 1u] = c;
}

const SCAN_BLOCK = 4096u;

// Block b: start[b * SCAN_BLOCK + 1 ..= (b + 1) * SCAN_BLOCK] becomes its inclusive prefix sum.
@compute @workgroup_size(WG)
fn scan_blocks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let b = row_index(wg, nwg, lid);
  let first = b * SCAN_BLOCK + 1u;
  if (first > p.rows) { return; }
  if (b == 0u) { start[0] = 0u; }
  let last = min(p.rows, first + SCAN_BLOCK - 1u);
  for (var v = first + 1u; v <= last; v++) { start[v] += start[v - 1u]; }
}

// offsets[b] = the tokens of every block before b.
@compute @workgroup_size(1)
fn scan_offsets() {
  var acc = 0u;
  let blocks = (p.rows + SCAN_BLOCK - 1u) / SCAN_BLOCK;
  for (var b = 0u; b < blocks; b++) {
    offsets[b] = acc;
    acc += start[min(p.rows, (b + 1u) * SCAN_BLOCK)];
  }
}

@compute @workgroup_size(WG)
fn add_offsets(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let v = row_index(wg, nwg, lid) + 1u;
  if (v > p.rows) { return; }
  start[v] += offsets[(v - 1u) / SCAN_BLOCK];
}

@compute @workgroup_size(WG)
fn list(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let v = row_index(wg, nwg, lid);
  if (v >= p.rows) { return; }
  var k = start[v];
  for (var n = 0u; n < p.tokens; n++) {
    if (ids[n] == i32(v)) {
      order[k] = n;
      k++;
    }
  }
}

@compute @workgroup_size(WG)
fn sum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let k = row_index(wg, nwg, lid);
  if (k >= p.rows * p.dim) { return; }
  let v = k / p.dim;
  let d = k % p.dim;
  var s = 0.0;
  for (var j = start[v]; j < start[v + 1u]; j++) { s += g[order[j] * p.dim + d]; }
  out[k] = s;
}
