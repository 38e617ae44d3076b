// out[r] = x[r, idx[r]]: e.g. the log-prob of each sampled token.
#include "lib/rows.wgsl"

struct Params { rows: u32, n: u32, check: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> flags: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let j = idx[r];
  if (j < 0 || u32(j) >= p.n) {
    flags[0] = p.check;
    flags[1] = bitcast<u32>(j);
    out[r] = 0.0;
    return;
  }
  out[r] = x[r * p.n + u32(j)];
}
