// Row kernels, one workgroup of LANES invocations per row (hardware GPUs):
// lane l takes elements l, l + LANES, ... (coalesced), and the partial
// results meet in a tree reduction through workgroup memory. Call the
// reductions from uniform control flow: every lane of the row, every time.
// Results are read with workgroupUniformLoad, so a kernel may branch and
// loop on them (the sampler's bisection) and still call the next reduction.
override WG: u32 = {{LANES}}u;
const LANES = {{LANES}}u;
const NEG_INF = -3.4028234663852886e38;

var<workgroup> red_v: array<f32, {{LANES}}>;
var<workgroup> red_v4: array<vec4<f32>, {{LANES}}>;
var<workgroup> red_i: array<u32, {{LANES}}>;

fn row_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return wg.y * nwg.x + wg.x;
}
fn lane_index(lid: u32) -> u32 { return lid; }

fn row_sum(v: f32, lane: u32) -> f32 {
  red_v[lane] = v;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red_v[lane] += red_v[lane + s]; }
    workgroupBarrier();
  }
  let total = workgroupUniformLoad(&red_v[0]);
  workgroupBarrier();
  return total;
}

fn row_sum_vec4(v: vec4<f32>, lane: u32) -> vec4<f32> {
  red_v4[lane] = v;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red_v4[lane] += red_v4[lane + s]; }
    workgroupBarrier();
  }
  let total = workgroupUniformLoad(&red_v4[0]);
  workgroupBarrier();
  return total;
}

fn row_max(v: f32, lane: u32) -> f32 {
  red_v[lane] = v;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red_v[lane] = max(red_v[lane], red_v[lane + s]); }
    workgroupBarrier();
  }
  let m = workgroupUniformLoad(&red_v[0]);
  workgroupBarrier();
  return m;
}

// Index of the largest value; the lowest index on ties.
fn row_argmax(v: f32, i: u32, lane: u32) -> u32 {
  red_v[lane] = v;
  red_i[lane] = i;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      let ov = red_v[lane + s];
      let oi = red_i[lane + s];
      if (ov > red_v[lane] || (ov == red_v[lane] && oi < red_i[lane])) {
        red_v[lane] = ov;
        red_i[lane] = oi;
      }
    }
    workgroupBarrier();
  }
  let best = workgroupUniformLoad(&red_i[0]);
  workgroupBarrier();
  return best;
}

fn row_min_u32(v: u32, lane: u32) -> u32 {
  red_i[lane] = v;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red_i[lane] = min(red_i[lane], red_i[lane + s]); }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&red_i[0]);
  workgroupBarrier();
  return r;
}

fn row_max_u32(v: u32, lane: u32) -> u32 {
  red_i[lane] = v;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red_i[lane] = max(red_i[lane], red_i[lane + s]); }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&red_i[0]);
  workgroupBarrier();
  return r;
}

// Sum of the values of the lanes before this one (an exclusive prefix sum).
fn lanes_before(v: f32, lane: u32) -> f32 {
  red_v[lane] = v;
  workgroupBarrier();
  var before = 0.0;
  for (var j = 0u; j < lane; j++) { before += red_v[j]; }
  workgroupBarrier();
  return before;
}
