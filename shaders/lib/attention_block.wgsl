// Shared by the fused attention kernels (attention_forward,
// attention_backward_q, attention_backward_kv). Each invocation owns R
// consecutive rows (queries, or keys for backward_kv), so every row loaded
// from the other side serves R rows: on the CPU adapter a load is a gather
// across lanes and costs more than the arithmetic it feeds. A workgroup takes
// WG x R consecutive rows of one (batch, head):
// the loop over the other side then has bounds that depend on the workgroup
// alone, so on the CPU adapter every load of that side is the same address in
// every lane (one scalar load, not a gather of 8), and lanes past their own
// causal bound are masked, not branched. Tensors are [B, heads, T, D] views
// (any strides, D contiguous) addressed in vec4 units: llama's q, k and v are
// read in place from its [B, T, heads, D] projections.
override WG: u32 = 32u;
// D / 4: a constant, so loops over it are unrolled (llvmpipe stops an
// invocation's loops after 65,535 steps; unrolled ones do not count). The
// kernels' private arrays hold 32 vec4s whatever D is: sizing them to DIM4
// with a template constant instead timed the same (2026-11-30).
override DIM4: u32 = 3u;
const R: u32 = {{R}}u;

struct View {
  off: u32,
  sb: u32,
  sh: u32,
  st: u32,
}

struct Params {
  q_heads: u32,
  group: u32,      // query heads per kv head
  q_len: u32,
  k_len: u32,
  q_offset: u32,   // absolute position of query 0 (keys before it: a KV cache)
  causal: u32,
  has_key_start: u32,
  scale: f32,
  blocks: u32,     // workgroups along the rows of one (batch, head)
  bh_count: u32,   // batch x heads: workgroups past it (a rounded-up grid) do nothing
  block_rows: u32, // rows one workgroup takes: WG lanes of R rows each
  lse_off: u32,    // where the forward's per-row logsumexps start in its output, in vec4
  q: View,
  k: View,
  v: View,
  g: View,         // dL/dO
  out: View,       // what the kernel writes (backward_kv: dK, then dV DIM4 further on)
}
@group(0) @binding(0) var<uniform> p: Params;

const NEG_INF = -3.4028234663852886e38;

fn at(w: View, b: u32, h: u32, t: u32) -> u32 {
  return w.off + b * w.sb + h * w.sh + t * w.st;
}

// (batch, head, first row) of this workgroup; heads are query heads, or kv
// heads for backward_kv (heads = how many).
fn block(wg: vec3<u32>, nwg: vec3<u32>, heads: u32) -> vec3<u32> {
  let flat = wg.x + (wg.y + wg.z * nwg.y) * nwg.x;
  let bh = flat / p.blocks;
  return vec3<u32>(bh / heads, bh % heads, (flat % p.blocks) * p.block_rows);
}

// What a query-row kernel's workgroup and lane own: batch b, query head h (kv head hk), the
// lane's first row t0, and the keys [lo, hi_block) the workgroup walks. The including kernel
// binds `key_start`.
struct QueryBlock {
  b: u32,
  h: u32,
  hk: u32,
  t0: u32,
  lo: u32,
  hi_block: u32,
  live: bool,      // false past the (batch, head) pairs of a rounded-up grid
}

fn query_block(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> QueryBlock {
  let blk = block(wg, nwg, p.q_heads);
  var qb: QueryBlock;
  qb.b = blk.x;
  qb.h = blk.y;
  qb.live = blk.x * p.q_heads + blk.y < p.bh_count;
  if (!qb.live) { return qb; }
  qb.hk = blk.y / p.group;
  qb.t0 = blk.z + lid * R;
  qb.lo = key_lo(key_start[blk.x]);
  qb.hi_block = key_hi(min(p.q_len, blk.z + p.block_rows) - 1u);
  return qb;
}

// Keys before this are masked for every query of batch entry b (left padding).
fn key_lo(ks: i32) -> u32 {
  return select(0u, u32(max(ks, 0)), p.has_key_start != 0u);
}

// Keys from this on are masked for query t.
fn key_hi(t: u32) -> u32 {
  return select(p.k_len, min(p.k_len, p.q_offset + t + 1u), p.causal != 0u);
}

// Query row (batch b, head h, position t) in [B, heads, Tq] order: where the forward keeps its
// logsumexp and the backward finds delta = dO . O.
fn query_row(b: u32, h: u32, t: u32) -> u32 {
  return (b * p.q_heads + h) * p.q_len + t;
}
