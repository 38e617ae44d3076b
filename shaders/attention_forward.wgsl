// Scaled dot-product attention over many queries, fused: each invocation owns
// R query rows, scores the keys in one pass with a running softmax per row
// (max, sum, rescaled weighted values; no [T, T] scores in memory) and writes
// its output rows once, and each row's logsumexp after the outputs (at
// lse_off, one vec4 per row, for the backward). Keys are walked to the workgroup's last causal bound
// (lib/attention_block.wgsl); a row's keys past its own bound weigh 0.
#include "lib/attention_block.wgsl"

@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> key_start: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let qb0 = query_block(wg, nwg, lid);
  if (!qb0.live) { return; }
  let b = qb0.b;
  let h = qb0.h;
  let hk = qb0.hk;
  let t0 = qb0.t0;
  let lo = qb0.lo;
  let hi_block = qb0.hi_block;
  var qr: array<array<vec4<f32>, 32>, R>;
  var acc: array<array<vec4<f32>, 32>, R>;
  var hi: array<u32, R>;
  var m: array<f32, R>;
  var total: array<f32, R>;
  for (var i = 0u; i < R; i++) {
    let qb = at(p.q, b, h, min(t0 + i, p.q_len - 1u));
    for (var d = 0u; d < DIM4; d++) {
      qr[i][d] = q[qb + d] * p.scale;
      acc[i][d] = vec4<f32>(0.0);
    }
    hi[i] = key_hi(t0 + i);
    m[i] = NEG_INF;
    total[i] = 0.0;
  }
  var kj: array<vec4<f32>, 32>;
  var vj: array<vec4<f32>, 32>;
  for (var j = lo; j < hi_block; j++) {
    let kb = at(p.k, b, hk, j);
    let vb = at(p.v, b, hk, j);
    for (var d = 0u; d < DIM4; d++) {
      kj[d] = k[kb + d];
      vj[d] = v[vb + d];
    }
    for (var i = 0u; i < R; i++) {
      var s = 0.0;
      for (var d = 0u; d < DIM4; d++) { s += dot(qr[i][d], kj[d]); }
      let live = j < hi[i];
      let mn = select(m[i], max(m[i], s), live);
      let c = exp(m[i] - mn);
      let w = select(0.0, exp(s - mn), live);
      total[i] = total[i] * c + w;
      for (var d = 0u; d < DIM4; d++) { acc[i][d] = acc[i][d] * c + w * vj[d]; }
      m[i] = mn;
    }
  }
  for (var i = 0u; i < R; i++) {
    let t = t0 + i;
    if (t >= p.q_len) { return; }
    let inv = select(0.0, 1.0 / total[i], total[i] > 0.0);
    let ob = at(p.out, b, h, t);
    for (var d = 0u; d < DIM4; d++) { out[ob + d] = acc[i][d] * inv; }
    // NEG_INF, not -inf, for a row with no live key: exp(s - lse) is then inf, which select drops.
    let lse = select(NEG_INF, m[i] + log(total[i]), total[i] > 0.0);
    out[p.lse_off + query_row(b, h, t)] = vec4<f32>(lse, 0.0, 0.0, 0.0);
  }
}
