// Softmax (LOG = false) or log-softmax (LOG = true) over the last axis.
#include "lib/rows_{{ROWS}}.wgsl"
#include "lib/row_stats.wgsl"

struct Params { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

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
  if ({{LOG}}) {
    let lse = m + log(s);
    for (var i = lane; i < p.n; i += LANES) { out[base + i] = x[base + i] - lse; }
  } else {
    let inv = 1.0 / s;
    for (var i = lane; i < p.n; i += LANES) { out[base + i] = exp(x[base + i] - m) * inv; }
  }
}
