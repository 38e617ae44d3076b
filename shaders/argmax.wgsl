// Index of the largest value over the last axis (the first one on ties, as torch.argmax).
#include "lib/rows_{{ROWS}}.wgsl"

struct Params { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_index(lid);
  let base = r * p.n;
  // Lanes past the row's end hold (-inf, max u32): they lose every comparison.
  var best = bitcast<f32>(0xff800000u);
  var arg = 0xffffffffu;
  for (var i = lane; i < p.n; i += LANES) {
    let v = x[base + i];
    if (v > best || arg == 0xffffffffu) { best = v; arg = i; }
  }
  arg = row_argmax(best, arg, lane);
  if (lane == 0u) { out[r] = i32(arg); }
}
