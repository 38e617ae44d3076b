// softmax_backward.wgsl for one invocation per row on rows of a multiple of
// 4: y, g and dx move as vec4 (llvmpipe pays per load and store instruction).
#include "lib/rows.wgsl"

struct Params { rows: u32, n: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let n4 = p.n / 4u;
  let base = r * n4;
  var s4 = vec4<f32>(0.0);
  if ({{LOG}}) {
    for (var c = 0u; c < n4; c++) { s4 += g[base + c]; }
  } else {
    for (var c = 0u; c < n4; c++) { s4 += g[base + c] * y[base + c]; }
  }
  let s = s4.x + s4.y + s4.z + s4.w;
  if ({{LOG}}) {
    for (var c = 0u; c < n4; c++) { dx[base + c] = p.scale * (g[base + c] - exp(y[base + c]) * s); }
  } else {
    for (var c = 0u; c < n4; c++) { dx[base + c] = p.scale * y[base + c] * (g[base + c] - s); }
  }
}
