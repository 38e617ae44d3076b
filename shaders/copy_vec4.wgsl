// copy.wgsl four words at a time, for views whose innermost axis is
// contiguous with a length, strides and offsets divisible by 4 (the caller
// divides them by 4): a permute of [B, T, H, D] to [B, H, T, D], say.
#include "lib/strided.wgsl"

@group(0) @binding(1) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out[o.w] = a[o.x];
}
