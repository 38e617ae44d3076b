// out[n, :] = table[ids[n], :]. An id outside [0, rows) is reported through
// `flags` and gives a zero row.
struct Params { total: u32, dim: u32, rows: u32, check: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> flags: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let k = (wg.y * nwg.x + wg.x) * 64u + lid;
  if (k >= p.total) { return; }
  let n = k / p.dim;
  let d = k % p.dim;
  let id = ids[n];
  if (id < 0 || u32(id) >= p.rows) {
    flags[0] = p.check;
    flags[1] = bitcast<u32>(id);
    out[k] = 0.0;
    return;
  }
  out[k] = table[u32(id) * p.dim + d];
}
