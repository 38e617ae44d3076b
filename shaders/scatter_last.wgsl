// out[r, j] = j == idx[r] ? g[r] : 0: the gradient of gather_last.wgsl.
struct Params { total: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let k = (wg.y * nwg.x + wg.x) * 64u + lid;
  if (k >= p.total) { return; }
  let r = k / p.n;
  out[k] = select(0.0, g[r], i32(k % p.n) == idx[r]);
}
