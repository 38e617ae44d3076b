// Row kernels, one invocation per row: the invocation loops over its row.
// No barriers: on the CPU adapter a barrier splits the shader and costs more
// than the serial loop saves. The same kernel text runs one workgroup per row
// with lib/rows_workgroup.wgsl (kernel_choice.ts picks).
override WG: u32 = 64u;
const LANES = 1u;
const NEG_INF = -3.4028234663852886e38;

fn row_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wg.y * nwg.x + wg.x) * WG + lid;
}
fn lane_index(lid: u32) -> u32 { return 0u; }
fn row_sum(v: f32, lane: u32) -> f32 { return v; }
fn row_sum_vec4(v: vec4<f32>, lane: u32) -> vec4<f32> { return v; }
fn row_max(v: f32, lane: u32) -> f32 { return v; }
// (value, index) of the largest value; the lowest index on ties.
fn row_argmax(v: f32, i: u32, lane: u32) -> u32 { return i; }
fn row_min_u32(v: u32, lane: u32) -> u32 { return v; }
fn row_max_u32(v: u32, lane: u32) -> u32 { return v; }
// Sum of the values of the lanes before this one (none here).
fn lanes_before(v: f32, lane: u32) -> f32 { return 0.0; }
