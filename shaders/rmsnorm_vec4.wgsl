// rmsnorm.wgsl for one invocation per row on rows of a multiple of 4: x, w
// and y move as vec4 (llvmpipe pays per load and store instruction).
#include "lib/rows.wgsl"

struct Params { rows: u32, n: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let n4 = p.n / 4u;
  let base = r * n4;
  var ss4 = vec4<f32>(0.0);
  for (var c = 0u; c < n4; c++) { let v = x[base + c]; ss4 += v * v; }
  let inv = inverseSqrt((ss4.x + ss4.y + ss4.z + ss4.w) / f32(p.n) + p.eps);
  for (var c = 0u; c < n4; c++) { y[base + c] = x[base + c] * inv * w[c]; }
}
