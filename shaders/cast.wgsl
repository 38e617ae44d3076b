// Converts between i32 and f32 through raw u32 words; {{EXPR}} maps the
// source word a[o.x] to the destination word.
#include "lib/strided.wgsl"

@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out[i] = {{EXPR}};
}
