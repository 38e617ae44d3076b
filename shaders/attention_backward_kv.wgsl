// dL/dk and dL/dv of the fused attention, R key rows per invocation: over
// every query (of each query head sharing this kv head) that sees a key, with
// p = exp(s - logsumexp) recomputed, dv = sum p dO and
// dk = scale * sum p (dO . v - delta) q. The query loop starts at the first
// query that sees the workgroup's first key, so its bounds depend on the
// workgroup alone; a query that does not see a row's key weighs 0 there.
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
  let kv_heads = p.q_heads / p.group;
  let blk = block(wg, nwg, kv_heads);
  let b = blk.x;
  let hk = blk.y;
  if (b * kv_heads + hk >= p.bh_count) { return; }
  let j0 = blk.z + lid * R;
  let lo = key_lo(key_start[b]);
  // Query t sees key j when j < key_hi(t): causal, from t = j - q_offset on.
  var t_first = 0u;
  if (p.causal != 0u && blk.z > p.q_offset) { t_first = blk.z - p.q_offset; }
  var kr: array<array<vec4<f32>, 32>, R>;
  var vr: array<array<vec4<f32>, 32>, R>;
  var dk: array<array<vec4<f32>, 32>, R>;
  var dv: array<array<vec4<f32>, 32>, R>;
  var live: array<bool, R>;
  for (var i = 0u; i < R; i++) {
    let jc = min(j0 + i, p.k_len - 1u);
    let kb = at(p.k, b, hk, jc);
    let vb = at(p.v, b, hk, jc);
    for (var d = 0u; d < DIM4; d++) {
      kr[i][d] = k[kb + d] * p.scale;
      vr[i][d] = v[vb + d];
      dk[i][d] = vec4<f32>(0.0);
      dv[i][d] = vec4<f32>(0.0);
    }
    live[i] = j0 + i >= lo && j0 + i < p.k_len;
  }
  var qt: array<vec4<f32>, 32>;
  var gt: array<vec4<f32>, 32>;
  for (var gi = 0u; gi < p.group; gi++) {
    let h = hk * p.group + gi;
    for (var t = t_first; t < p.q_len; t++) {
      let qb = at(p.q, b, h, t);
      let gb = at(p.g, b, h, t);
      for (var d = 0u; d < DIM4; d++) {
        qt[d] = q[qb + d];
        gt[d] = g[gb + d];
      }
      let row = query_row(b, h, t);
      let st = vec2<f32>(fwd[p.lse_off + row].x, delta[row]);
      let hi = key_hi(t);
      for (var i = 0u; i < R; i++) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < DIM4; d++) {
          s += dot(kr[i][d], qt[d]);
          dp += dot(vr[i][d], gt[d]);
        }
        let pr = select(0.0, exp(s - st.x), live[i] && j0 + i < hi);
        let ds = pr * (dp - st.y);
        for (var d = 0u; d < DIM4; d++) {
          dv[i][d] += pr * gt[d];
          dk[i][d] += ds * qt[d];
        }
      }
    }
  }
  for (var i = 0u; i < R; i++) {
    let j = j0 + i;
    if (j >= p.k_len) { return; }
    let ob = at(p.out, b, hk, j);
    for (var d = 0u; d < DIM4; d++) {
      out[ob + d] = dk[i][d] * p.scale;
      out[ob + DIM4 + d] = dv[i][d];
    }
  }
}
