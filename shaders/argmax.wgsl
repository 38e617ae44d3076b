// Index of the largest value over the last axis (the first one on ties, as torch.argmax).
#include "lib/rows.wgsl"

struct Params { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let base = r * p.n;
  var best = x[base];
  var arg = 0u;
  for (var i = 1u; i < p.n; i++) {
    let v = x[base + i];
    if (v > best) { best = v; arg = i; }
  }
  out[r] = i32(arg);
}
