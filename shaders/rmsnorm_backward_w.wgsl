// dL/dw of rmsnorm.wgsl, in two passes so that no invocation loops over all
// rows for every column:
//   inv_rms: rstd[r] = 1/sqrt(mean(x[r]^2) + eps), one invocation per row;
//   partial: part[c, i] = sum over rows r of chunk c of g[r,i] * x[r,i] * rstd[r],
//            one invocation per (chunk, column); the caller sums over chunks.
#include "lib/rows.wgsl"

struct Params { rows: u32, n: u32, eps: f32, chunk: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;

@compute @workgroup_size(WG)
fn inv_rms(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let base = r * p.n;
  var ss = 0.0;
  for (var i = 0u; i < p.n; i++) { let v = x[base + i]; ss += v * v; }
  rstd[r] = inverseSqrt(ss / f32(p.n) + p.eps);
}

@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let k = row_index(wg, nwg, lid);
  let chunks = (p.rows + p.chunk - 1u) / p.chunk;
  if (k >= chunks * p.n) { return; }
  let c = k / p.n;
  let i = k % p.n;
  let end = min(p.rows, (c + 1u) * p.chunk);
  var s = 0.0;
  for (var r = c * p.chunk; r < end; r++) { s += g[r * p.n + i] * x[r * p.n + i] * rstd[r]; }
  part[k] = s;
}
