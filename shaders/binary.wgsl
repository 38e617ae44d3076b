// out = f(a, b), elementwise with broadcasting. {{EXPR}} is an f32 expression of `x`, `y`.
#include "lib/strided.wgsl"

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  var x: f32;
  var y: f32;
  if ({{STRIDED}}) {
    let o = offsets(i);
    x = a[o.x];
    y = b[o.y];
  } else {
    x = a[p.off_a + i];
    y = b[p.off_b + i];
  }
  out[i] = {{EXPR}};
}
