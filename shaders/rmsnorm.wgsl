// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, over the last axis.
#include "lib/rows_{{ROWS}}.wgsl"

struct Params { rows: u32, n: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_index(lid);
  let base = r * p.n;
  var ss = 0.0;
  for (var i = lane; i < p.n; i += LANES) { let v = x[base + i]; ss += v * v; }
  ss = row_sum(ss, lane);
  let inv = inverseSqrt(ss / f32(p.n) + p.eps);
  for (var i = lane; i < p.n; i += LANES) { y[base + i] = x[base + i] * inv * w[i]; }
}
