// Draws one token per row from softmax(x / temperature), restricted to the
// top_k largest logits (0 = all) and then to the smallest top set whose
// probability reaches top_p (1 = all), as Hugging Face's warpers do (ties at
// a threshold are kept). Random numbers come from a counter-based hash of
// (seed, counter, row), so a seed replays exactly with no state on the GPU.
// Thresholds are found by bisection over the 32-bit order of the floats:
// 32 passes over the row, with no sorting.
#include "lib/rows_{{ROWS}}.wgsl"

struct Params {
  rows: u32,
  n: u32,
  top_k: u32,
  seed: u32,
  counter: u32,
  inv_temp: f32,
  top_p: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

fn key(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(~b, b | 0x80000000u, (b & 0x80000000u) == 0u);
}

fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_index(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_index(lid);
  let base = r * p.n;
  var m = NEG_INF;
  for (var i = lane; i < p.n; i += LANES) { m = max(m, x[base + i]); }
  m = row_max(m, lane);

  // Top-k: the largest key t with at least k entries >= t.
  var k_min = 0u;
  if (p.top_k > 0u && p.top_k < p.n) {
    var lo = 0u;
    var hi = 0xffffffffu;
    while (lo < hi) {
      let mid = lo + (hi - lo) / 2u + 1u;
      var c = 0.0;
      for (var i = lane; i < p.n; i += LANES) { c += select(0.0, 1.0, key(x[base + i]) >= mid); }
      c = row_sum(c, lane);
      if (c >= f32(p.top_k)) { lo = mid; } else { hi = mid - 1u; }
    }
    k_min = lo;
  }

  var total = 0.0;
  for (var i = lane; i < p.n; i += LANES) {
    let v = x[base + i];
    if (key(v) >= k_min) { total += exp((v - m) * p.inv_temp); }
  }
  total = row_sum(total, lane);

  // Top-p: the largest key t whose entries >= t hold at least top_p of the mass.
  if (p.top_p < 1.0) {
    var lo = k_min;
    var hi = 0xffffffffu;
    let goal_mass = p.top_p * total;
    while (lo < hi) {
      let mid = lo + (hi - lo) / 2u + 1u;
      var s = 0.0;
      for (var i = lane; i < p.n; i += LANES) {
        let v = x[base + i];
        if (key(v) >= mid) { s += exp((v - m) * p.inv_temp); }
      }
      s = row_sum(s, lane);
      if (s >= goal_mass) { lo = mid; } else { hi = mid - 1u; }
    }
    k_min = lo;
    total = 0.0;
    for (var i = lane; i < p.n; i += LANES) {
      let v = x[base + i];
      if (key(v) >= k_min) { total += exp((v - m) * p.inv_temp); }
    }
    total = row_sum(total, lane);
  }

  // The draw walks the kept mass in index order: each lane owns a contiguous
  // chunk, starts from the mass of the chunks before it, and the first index
  // where the running mass passes the goal wins (the last kept index if
  // rounding never lets it pass).
  let h = pcg(pcg(pcg(p.seed) ^ p.counter) ^ r);
  let u = f32(h >> 8u) * (1.0 / 16777216.0);
  let goal = u * total;
  let chunk = (p.n + LANES - 1u) / LANES;
  let start = min(lane * chunk, p.n);
  let end = min(start + chunk, p.n);
  var mass = 0.0;
  var last = 0u;
  for (var i = start; i < end; i++) {
    let v = x[base + i];
    if (key(v) >= k_min) { mass += exp((v - m) * p.inv_temp); last = i + 1u; }
  }
  var acc = lanes_before(mass, lane);
  var pick = 0xffffffffu;
  if (acc + mass > goal) {
    for (var i = start; i < end; i++) {
      let v = x[base + i];
      if (key(v) >= k_min) {
        acc += exp((v - m) * p.inv_temp);
        if (acc > goal) { pick = i; break; }
      }
    }
  }
  pick = row_min_u32(pick, lane);
  last = row_max_u32(last, lane);
  if (lane == 0u) { out[r] = select(i32(pick), i32(last) - 1, pick == 0xffffffffu); }
}
