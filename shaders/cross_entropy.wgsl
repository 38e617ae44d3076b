// Per-token cross-entropy: loss[r] = mask[r] * (logsumexp(x[r]) - x[r, label[r]]),
// and 0 where label == ignore_index. A label outside [0, n) is reported
// through `flags` (read with the next readback) and contributes 0.
#include "lib/rows_{{ROWS}}.wgsl"
#include "lib/row_stats.wgsl"

struct Params { rows: u32, n: u32, has_mask: u32, ignore_index: i32, check: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> flags: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_index(lid);
  // The row's reductions run before any branch on its label: with a workgroup
  // per row they hold barriers, which need every lane.
  let base = r * p.n;
  let ms = row_max_sumexp(base, p.n, lane);
  let m = ms.x;
  let s = ms.y;
  if (lane != 0u) { return; }
  let label = labels[r];
  var w = 1.0;
  if (p.has_mask != 0u) { w = mask[r]; }
  if (label == p.ignore_index || w == 0.0) { loss[r] = 0.0; return; }
  if (label < 0 || u32(label) >= p.n) {
    flags[0] = p.check;
    flags[1] = bitcast<u32>(label);
    loss[r] = 0.0;
    return;
  }
  loss[r] = w * (m + log(s) - x[base + u32(label)]);
}
