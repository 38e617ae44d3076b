// unary.wgsl four elements per invocation, for operands whose innermost axis
// is contiguous (the caller gives shape, strides and offsets in vec4 units):
// one vec4 load where the CPU adapter would gather four scalars.
#include "lib/strided.wgsl"
#include "lib/math.wgsl"

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

fn f(x: f32) -> f32 {
  return {{EXPR}};
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  var x: vec4<f32>;
  if ({{STRIDED}}) {
    x = a[offsets(i).x];
  } else {
    x = a[p.off_a + i];
  }
  out[i] = vec4<f32>(f(x.x), f(x.y), f(x.z), f(x.w));
}
