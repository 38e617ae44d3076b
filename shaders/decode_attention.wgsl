// Attention for one new query per sequence (a decode step) against a whole
// KV cache [B, kvHeads, L, D], fused: each (batch, query head) is a row
// (lib/rows_*.wgsl) that scores every key, keeps a running softmax (max, sum,
// rescaled weighted values) and writes the result once. With a workgroup per
// row (hardware GPUs) each lane takes every LANES-th key and the lanes' states
// are merged at the end: a decode step at batch 64 has only 64 x heads rows.
// Keys after the query's position q_pos, and before key_start[b] (left
// padding), are masked. The query and the accumulator stay in registers and
// rows are read as vec4: on the CPU adapter every storage load is dear. Needs
// D % 4 == 0 and D <= 128. DIM4 (D / 4) is a pipeline constant, so the loops
// over it have a fixed trip count of at most 32 and are unrolled: llvmpipe
// ends a shader's loops after 65,535 steps in all, which counted loops over D
// would reach at ~2,000 keys.
#include "lib/rows_{{ROWS}}.wgsl"

override DIM4: u32 = 16u;

struct Params {
  rows: u32,       // B * heads
  heads: u32,
  group: u32,      // query heads per kv head
  keys: u32,       // L
  dim4: u32,       // D / 4, the same as DIM4
  q_pos: u32,
  has_key_start: u32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> key_start: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_index(lid);
  let b = r / p.heads;
  let h = r % p.heads;
  let kv_heads = p.heads / p.group;
  let kv_base = (b * kv_heads + h / p.group) * p.keys * p.dim4;
  var qr: array<vec4<f32>, 32>;
  var acc: array<vec4<f32>, 32>;
  for (var d = 0u; d < DIM4; d++) {
    qr[d] = q[r * p.dim4 + d] * p.scale;
    acc[d] = vec4<f32>(0.0);
  }
  var lo = 0u;
  if (p.has_key_start != 0u) { lo = u32(max(key_start[b], 0)); }
  let hi = min(p.keys, p.q_pos + 1u);
  var m = NEG_INF;
  var total = 0.0;
  for (var j = lo + lane; j < hi; j += LANES) {
    let kb = kv_base + j * p.dim4;
    var s = 0.0;
    for (var d = 0u; d < DIM4; d++) { s += dot(qr[d], k[kb + d]); }
    if (s > m) {
      // A new maximum: rescale what has been summed so far.
      let c = exp(m - s);
      total *= c;
      for (var d = 0u; d < DIM4; d++) { acc[d] *= c; }
      m = s;
    }
    let w = exp(s - m);
    total += w;
    for (var d = 0u; d < DIM4; d++) { acc[d] += w * v[kb + d]; }
  }
  // The lanes' states, each rescaled to the row's maximum, summed (one lane: as they are).
  let top = row_max(m, lane);
  let c = exp(m - top);
  total = row_sum(total * c, lane);
  for (var d = 0u; d < DIM4; d++) { acc[d] = row_sum_vec4(acc[d] * c, lane); }
  let inv = select(0.0, 1.0 / total, total > 0.0);
  if (lane == 0u) {
    for (var d = 0u; d < DIM4; d++) { out[r * p.dim4 + d] = acc[d] * inv; }
  }
}
