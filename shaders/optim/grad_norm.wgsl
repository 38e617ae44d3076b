// Global gradient norm for clipping, deterministic and without atomics:
//   partial: part[offset + c] = sum of squares of chunk c of one gradient;
//   finish:  adds all partials, writes [clip coefficient, norm] where
//            coef = min(1, max_norm / (norm + 1e-6)), as
//            torch.nn.utils.clip_grad_norm_.
// Each chunk, and the partials in finish, is a row (lib/rows_*.wgsl): one
// invocation loops over it on the CPU adapter, a workgroup's lanes share it
// (coalesced reads, a tree sum) on a hardware GPU.
#include "lib/rows_{{ROWS}}.wgsl"

struct Params { n: u32, offset: u32, chunk: u32, count: u32, max_norm: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;

@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let c = row_index(wg, nwg, lid);
  let start = c * p.chunk;
  if (start >= p.n) { return; }
  let lane = lane_index(lid);
  let end = min(p.n, start + p.chunk);
  var s = 0.0;
  for (var i = start + lane; i < end; i += LANES) { let g = grad[i]; s += g * g; }
  s = row_sum(s, lane);
  if (lane == 0u) { part[p.offset + c] = s; }
}

@compute @workgroup_size(WG)
fn finish(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  if (row_index(wg, nwg, lid) > 0u) { return; }
  let lane = lane_index(lid);
  var s = 0.0;
  for (var i = lane; i < p.count; i += LANES) { s += part[i]; }
  let norm = sqrt(row_sum(s, lane));
  var coef = 1.0;
  if (p.max_norm > 0.0) { coef = min(1.0, p.max_norm / (norm + 1e-6)); }
  if (lane == 0u) {
    result[0] = coef;
    result[1] = norm;
  }
}
