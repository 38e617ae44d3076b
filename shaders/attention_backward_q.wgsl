// dL/dq of the fused attention, R query rows per invocation: with each
// probability p = exp(s - logsumexp) recomputed from the scores,
// dq = scale * sum_j p_j (dO . v_j - delta) k_j over the row's live keys.
#include "lib/attention_block.wgsl"

@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> fwd: array<vec4<f32>>;  // the forward's output: lse at lse_off
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read> key_start: array<i32>;
@group(0) @binding(8) var<storage, read_write> out: array<vec4<f32>>;

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
  var gr: array<array<vec4<f32>, 32>, R>;
  var acc: array<array<vec4<f32>, 32>, R>;
  var hi: array<u32, R>;
  var st: array<vec2<f32>, R>;
  for (var i = 0u; i < R; i++) {
    let tc = min(t0 + i, p.q_len - 1u);
    let qb = at(p.q, b, h, tc);
    let gb = at(p.g, b, h, tc);
    for (var d = 0u; d < DIM4; d++) {
      qr[i][d] = q[qb + d] * p.scale;
      gr[i][d] = g[gb + d];
      acc[i][d] = vec4<f32>(0.0);
    }
    hi[i] = key_hi(t0 + i);
    let row = query_row(b, h, tc);
    st[i] = vec2<f32>(fwd[p.lse_off + row].x, delta[row]);
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
      var dp = 0.0;
      for (var d = 0u; d < DIM4; d++) {
        s += dot(qr[i][d], kj[d]);
        dp += dot(gr[i][d], vj[d]);
      }
      let pr = select(0.0, exp(s - st[i].x), j < hi[i]);
      let ds = pr * (dp - st[i].y);
      for (var d = 0u; d < DIM4; d++) { acc[i][d] += ds * kj[d]; }
    }
  }
  for (var i = 0u; i < R; i++) {
    let t = t0 + i;
    if (t >= p.q_len) { return; }
    let ob = at(p.out, b, h, t);
    for (var d = 0u; d < DIM4; d++) { out[ob + d] = acc[i][d] * p.scale; }
  }
}
