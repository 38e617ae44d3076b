// out = f(a), elementwise. {{EXPR}} is an f32 expression of `x`, `p.s0`, `p.s1`.
// ELEM is f32, or vec4<f32> where every operand's rows are contiguous and
// aligned (the caller gives shape, strides and offsets in vec4 units): one
// vec4 load where the CPU adapter would gather four scalars. APPLY maps f
// over an element's components.
#include "lib/strided.wgsl"
#include "lib/math.wgsl"

@group(0) @binding(1) var<storage, read> a: array<{{ELEM}}>;
@group(0) @binding(2) var<storage, read_write> out: array<{{ELEM}}>;

fn f(x: f32) -> f32 {
  return {{EXPR}};
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  var x: {{ELEM}};
  if ({{STRIDED}}) {
    x = a[offsets(i).x];
  } else {
    x = a[p.off_a + i];
  }
  out[i] = {{APPLY}};
}
