// out view <- a view, bit for bit (u32, so i32 data is never canonicalised as
// a float NaN). Makes views contiguous, and writes into slices (concat, KV cache).
#include "lib/strided.wgsl"

@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wg, nwg, lid);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out[o.w] = a[o.x];
}
