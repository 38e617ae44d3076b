// dL/dlogits of cross_entropy.wgsl: g[r] * mask[r] * (softmax(x[r]) - onehot(label[r])).
#include "lib/rows_{{ROWS}}.wgsl"
#include "lib/row_stats.wgsl"

struct Params { rows: u32, n: u32, has_mask: u32, ignore_index: i32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_index(lid);
  let base = r * p.n;
  let ms = row_max_sumexp(base, p.n, lane);
  let m = ms.x;
  let s = ms.y;
  let label = labels[r];
  var w = g[r];
  if (p.has_mask != 0u) { w *= mask[r]; }
  if (label == p.ignore_index || label < 0 || u32(label) >= p.n || w == 0.0) {
    for (var i = lane; i < p.n; i += LANES) { dx[base + i] = 0.0; }
    return;
  }
  let inv = 1.0 / s;
  for (var i = lane; i < p.n; i += LANES) {
    dx[base + i] = w * (exp(x[base + i] - m) * inv - select(0.0, 1.0, i == u32(label)));
  }
}
