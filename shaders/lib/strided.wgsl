// Shared by the elementwise kernels: a flat output index walks a row-major
// shape, and each operand finds its element through its own strides (0 on a
// broadcast dimension), so views and broadcasts need no copies.
struct Params {
  n: u32,
  rank: u32,
  off_a: u32,
  off_b: u32,
  off_c: u32,
  off_out: u32,
  s0: f32,
  s1: f32,
  shape: array<vec4<u32>, 2>,
  stride_a: array<vec4<u32>, 2>,
  stride_b: array<vec4<u32>, 2>,
  stride_c: array<vec4<u32>, 2>,
  stride_out: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

// Dims after merging the ones every operand walks contiguously; a
// compile-time constant, so the loop below unrolls and its divisions see
// constant indices.
const RANK: i32 = {{RANK}};

// Element offsets of operands a, b, c and the output for flat index i. The uniform arrays are
// indexed in place: a helper that took one by value made llvmpipe's GL path copy it at every
// call, which ran the strided copies 4-6 times slower than over Vulkan.
fn offsets(i: u32) -> vec4<u32> {
  var rem = i;
  var o = vec4<u32>(p.off_a, p.off_b, p.off_c, p.off_out);
  for (var d = RANK - 1; d >= 0; d--) {
    let j = u32(d) / 4u;
    let k = u32(d) % 4u;
    let size = p.shape[j][k];
    let q = rem / size;
    let idx = rem - q * size;
    rem = q;
    o += idx * vec4<u32>(p.stride_a[j][k], p.stride_b[j][k], p.stride_c[j][k], p.stride_out[j][k]);
  }
  return o;
}

// 64 lanes per workgroup; the grid is 2-D when n needs more than 65535 groups.
fn flat_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wg.y * nwg.x + wg.x) * 64u + lid;
}
