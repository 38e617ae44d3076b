// Attention probabilities: softmax(scale * scores) over the keys each row may
// attend to (lib/attention_keys.wgsl), 0 elsewhere.
#include "lib/rows_{{ROWS}}.wgsl"
#include "lib/attention_keys.wgsl"

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
  let keys = key_range(r);
  let lo = keys.x;
  let hi = keys.y;
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
