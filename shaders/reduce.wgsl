// Sum (MAX = false) or max (MAX = true) over the middle axis of a contiguous
// [outer, n, inner] view; one row (invocation or workgroup) per output element.
// With chunk < n each row is cut into ceil(n / chunk) chunks and every chunk
// is a row of its own, writing [outer, chunks, inner] (the first pass of a
// two-pass reduction: a long row then fills more than one workgroup).
#include "lib/rows_{{ROWS}}.wgsl"

struct Params { outer: u32, n: u32, inner: u32, chunk: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let chunks = (p.n + p.chunk - 1u) / p.chunk;
  let k = row_index(wg, nwg, lid);
  if (k >= p.outer * chunks * p.inner) { return; }
  let lane = lane_index(lid);
  let o = k / (chunks * p.inner);
  let c = (k / p.inner) % chunks;
  let i = k % p.inner;
  let base = o * p.n * p.inner + i;
  let end = min(p.n, (c + 1u) * p.chunk);
  var acc = 0.0;
  if ({{MAX}}) { acc = NEG_INF; }
  for (var j = c * p.chunk + lane; j < end; j += LANES) {
    let v = x[base + j * p.inner];
    if ({{MAX}}) { acc = max(acc, v); } else { acc += v; }
  }
  if ({{MAX}}) { acc = row_max(acc, lane); } else { acc = row_sum(acc, lane); }
  if (lane == 0u) { out[k] = acc; }
}
