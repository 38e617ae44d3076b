// Softmax (LOG = false) or log-softmax (LOG = true) over the last axis.
#include "lib/rows.wgsl"

struct Params { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let base = r * p.n;
  var m = NEG_INF;
  for (var i = 0u; i < p.n; i++) { m = max(m, x[base + i]); }
  var s = 0.0;
  for (var i = 0u; i < p.n; i++) { s += exp(x[base + i] - m); }
  if ({{LOG}}) {
    let lse = m + log(s);
    for (var i = 0u; i < p.n; i++) { out[base + i] = x[base + i] - lse; }
  } else {
    let inv = 1.0 / s;
    for (var i = 0u; i < p.n; i++) { out[base + i] = exp(x[base + i] - m) * inv; }
  }
}
