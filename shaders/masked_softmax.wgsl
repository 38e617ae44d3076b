// Attention probabilities: softmax(scale * scores) over keys, with a causal
// mask and, per batch row, the keys before key_start[b] (left padding) masked.
// scores: [B, rows_per_batch, n_keys], where row r of a batch is query
// t = r % q_len at absolute position q_offset + t.
#include "lib/rows_{{ROWS}}.wgsl"

struct Params {
  rows: u32,
  n: u32,
  rows_per_batch: u32,
  q_len: u32,
  q_offset: u32,
  causal: u32,
  has_key_start: u32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> key_start: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_index(lid);
  let base = r * p.n;
  let t = (r % p.rows_per_batch) % p.q_len;
  var hi = p.n;
  if (p.causal != 0u) { hi = min(p.n, p.q_offset + t + 1u); }
  var lo = 0u;
  if (p.has_key_start != 0u) { lo = u32(max(key_start[r / p.rows_per_batch], 0)); }
  var m = NEG_INF;
  for (var i = lo + lane; i < hi; i += LANES) { m = max(m, p.scale * x[base + i]); }
  m = row_max(m, lane);
  var s = 0.0;
  for (var i = lo + lane; i < hi; i += LANES) { s += exp(p.scale * x[base + i] - m); }
  s = row_sum(s, lane);
  let inv = select(0.0, 1.0 / s, s > 0.0);
  for (var i = lane; i < p.n; i += LANES) {
    var v = 0.0;
    if (i >= lo && i < hi) { v = exp(p.scale * x[base + i] - m) * inv; }
    out[base + i] = v;
  }
}
