// Rotary position embedding on x: [B, T, H, D], rotating pairs of features by
// angle pos[b, t] * freq_i, from host-computed tables cos/sin: [max_pos, D/2].
// INTERLEAVED: pairs (2i, 2i+1) (Meta's original Llama, GPT-J);
// otherwise pairs (i, i + D/2) (rotate-half: Hugging Face Llama, GPT-NeoX).
// inverse = 1 rotates by -angle: the gradient of the forward rotation.
struct Params {
  pairs: u32,   // B * T * H * D/2
  heads: u32,
  dim: u32,
  max_pos: u32,
  inverse: u32,
  check: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read> cos_t: array<f32>;
@group(0) @binding(4) var<storage, read> sin_t: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> flags: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let k = (wg.y * nwg.x + wg.x) * 64u + lid;
  if (k >= p.pairs) { return; }
  let half = p.dim / 2u;
  let i = k % half;
  let row = k / half;             // (b * T + t) * H + h
  let bt = row / p.heads;
  let base = row * p.dim;
  var i0 = i;
  var i1 = i + half;
  if ({{INTERLEAVED}}) {
    i0 = 2u * i;
    i1 = 2u * i + 1u;
  }
  let ps = pos[bt];
  var c = 1.0;
  var s = 0.0;
  if (ps < 0 || u32(ps) >= p.max_pos) {
    flags[0] = p.check;
    flags[1] = bitcast<u32>(ps);
  } else {
    c = cos_t[u32(ps) * half + i];
    s = sin_t[u32(ps) * half + i];
  }
  if (p.inverse != 0u) { s = -s; }
  let x0 = x[base + i0];
  let x1 = x[base + i1];
  out[base + i0] = x0 * c - x1 * s;
  out[base + i1] = x0 * s + x1 * c;
}
