// binary.wgsl four elements per invocation, for operands whose innermost
// axis is contiguous (the caller gives shape, strides and offsets in vec4
// units; a broadcast operand has stride 0 on its outer axes only).
#include "lib/strided.wgsl"
#include "lib/math.wgsl"

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

fn f(x: f32, y: f32) -> f32 {
  return {{EXPR}};
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  var x: vec4<f32>;
  var y: vec4<f32>;
  if ({{STRIDED}}) {
    let o = offsets(i);
    x = a[o.x];
    y = b[o.y];
  } else {
    x = a[p.off_a + i];
    y = b[p.off_b + i];
  }
  out[i] = vec4<f32>(f(x.x, y.x), f(x.y, y.y), f(x.z, y.z), f(x.w, y.w));
}
