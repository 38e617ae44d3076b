// The keys a row of attention scores may attend to, shared by masked_softmax
// and its vec4 twin. scores: [B, rows_per_batch, n_keys], where row r of a
// batch is query t = r % q_len at absolute position q_offset + t; a causal
// query sees keys up to its position, and keys before key_start[b] (left
// padding) are masked. The including kernel binds `key_start`.
struct Params {
  rows: u32,
  n: u32,
  rows_per_batch: u32,
  q_len: u32,
  q_offset: u32,
  causal: u32,
  has_key_start: u32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> p: Params;

// [lo, hi): the keys row r attends to (lo == hi: none).
fn key_range(r: u32) -> vec2<u32> {
  let t = (r % p.rows_per_batch) % p.q_len;
  var hi = p.n;
  if (p.causal != 0u) { hi = min(p.n, p.q_offset + t + 1u); }
  var lo = 0u;
  if (p.has_key_start != 0u) { lo = min(u32(max(key_start[r / p.rows_per_batch], 0)), hi); }
  return vec2<u32>(lo, hi);
}
