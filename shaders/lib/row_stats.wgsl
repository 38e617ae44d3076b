// The row's max and its sum of exp(x - max) over x[base .. base + n), reduced
// over the row's lanes (lib/rows_*.wgsl): the shared start of softmax,
// log-softmax and cross-entropy. Reads the including kernel's `x` binding.
fn row_max_sumexp(base: u32, n: u32, lane: u32) -> vec2<f32> {
  var m = NEG_INF;
  for (var i = lane; i < n; i += LANES) { m = max(m, x[base + i]); }
  m = row_max(m, lane);
  var s = 0.0;
  for (var i = lane; i < n; i += LANES) { s += exp(x[base + i] - m); }
  return vec2<f32>(m, row_sum(s, lane));
}
