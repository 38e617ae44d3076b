// out = f(a), elementwise. {{EXPR}} is an f32 expression of `x`, `p.s0`, `p.s1`.
#include "lib/strided.wgsl"
#include "lib/math.wgsl"

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  var x: f32;
  if ({{STRIDED}}) {
    x = a[offsets(i).x];
  } else {
    x = a[p.off_a + i];
  }
  out[i] = {{EXPR}};
}
