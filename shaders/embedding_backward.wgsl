// dL/dtable of embedding.wgsl without float atomics, and deterministic: a
// counting sort of token positions by id, then one invocation per table
// element sums the gradient rows of its own tokens, in token order.
//   count: cnt[v] = number of n with ids[n] == v   (one invocation per row v)
//   scan:  start[v] = exclusive prefix sum of cnt  (one invocation)
//   list:  order[start[v] ..] = the n with ids[n] == v, ascending
//   sum:   out[v, d] = sum of g[n, d] over those n
#include "lib/rows.wgsl"

struct Params { tokens: u32, dim: u32, rows: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> start: array<u32>;   // rows + 1
@group(0) @binding(4) var<storage, read_write> order: array<u32>;   // tokens
@group(0) @binding(5) var<storage, read_write> out: array<f32>;     // rows * dim

@compute @workgroup_size(WG)
fn count(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let v = row_index(wg, nwg, lid);
  if (v >= p.rows) { return; }
  var c = 0u;
  for (var n = 0u; n < p.tokens; n++) { c += select(0u, 1u, ids[n] == i32(v)); }
  start[v + 1u] = c;
}

@compute @workgroup_size(1)
fn scan() {
  start[0] = 0u;
  for (var v = 1u; v <= p.rows; v++) { start[v] += start[v - 1u]; }
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
