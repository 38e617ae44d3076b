// dL/dx of rmsnorm.wgsl. With r = 1/sqrt(mean(x^2) + eps) and h = g * w:
// dx = r * (h - x * r^2 * mean(h * x)).
#include "lib/rows_{{ROWS}}.wgsl"

struct Params { rows: u32, n: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_index(lid);
  let base = r * p.n;
  var ss = 0.0;
  var hx = 0.0;
  for (var i = lane; i < p.n; i += LANES) {
    let v = x[base + i];
    ss += v * v;
    hx += g[base + i] * w[i] * v;
  }
  ss = row_sum(ss, lane);
  hx = row_sum(hx, lane);
  let nf = f32(p.n);
  let inv = inverseSqrt(ss / nf + p.eps);
  let c = inv * inv * hx / nf;
  for (var i = lane; i < p.n; i += LANES) {
    dx[base + i] = inv * (g[base + i] * w[i] - x[base + i] * c);
  }
}
