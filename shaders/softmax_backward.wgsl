// Gradient of softmax (LOG = false: y is the softmax) or log-softmax
// (LOG = true: y is the log-softmax) over the last axis, given dL/dy = g.
#include "lib/rows_{{ROWS}}.wgsl"

struct Params { rows: u32, n: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_index(lid);
  let base = r * p.n;
  var s = 0.0;
  if ({{LOG}}) {
    for (var i = lane; i < p.n; i += LANES) { s += g[base + i]; }
  } else {
    for (var i = lane; i < p.n; i += LANES) { s += g[base + i] * y[base + i]; }
  }
  s = row_sum(s, lane);
  if ({{LOG}}) {
    for (var i = lane; i < p.n; i += LANES) {
      dx[base + i] = p.scale * (g[base + i] - exp(y[base + i]) * s);
    }
  } else {
    for (var i = lane; i < p.n; i += LANES) {
      dx[base + i] = p.scale * y[base + i] * (g[base + i] - s);
    }
  }
}
