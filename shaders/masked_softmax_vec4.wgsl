// masked_softmax.wgsl for one invocation per row on rows of a multiple of 4
// keys: scores and probabilities move as vec4 (llvmpipe pays per load and
// store instruction, not per byte), and the causal and left-padding masks
// apply per component.
#include "lib/rows.wgsl"
#include "lib/attention_keys.wgsl"

@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> key_start: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

// Which of chunk c's 4 keys lie in [lo, hi).
fn live(c: u32, lo: u32, hi: u32) -> vec4<bool> {
  let i = vec4<u32>(4u * c) + vec4<u32>(0u, 1u, 2u, 3u);
  return (i >= vec4<u32>(lo)) & (i < vec4<u32>(hi));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let n4 = p.n / 4u;
  let base = r * n4;
  let keys = key_range(r);
  let lo = keys.x;
  let hi = keys.y;
  let c0 = lo / 4u;
  let c1 = (hi + 3u) / 4u;
  // One pass for the max and the sum (online softmax): the running sum is rescaled whenever
  // the max grows, which saves a pass of loads over keeping them apart.
  let neg = vec4<f32>(NEG_INF);
  var m = NEG_INF;
  var s = 0.0;
  for (var c = c0; c < c1; c++) {
    let v = select(neg, p.scale * x[base + c], live(c, lo, hi));
    let mc = max(m, max(max(v.x, v.y), max(v.z, v.w)));
    let e = exp(v - mc);
    s = s * exp(m - mc) + (e.x + e.y + e.z + e.w);
    m = mc;
  }
  let inv = select(0.0, 1.0 / s, s > 0.0);
  for (var c = 0u; c < n4; c++) {
    var v = vec4<f32>(0.0);
    if (c >= c0 && c < c1) {
      v = select(vec4<f32>(0.0), exp(p.scale * x[base + c] - m) * inv, live(c, lo, hi));
    }
    out[base + c] = v;
  }
}
