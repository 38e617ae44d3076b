// Reference matmul: one output per invocation, any transposes and sizes.
// Slow; kept beside the fast kernels as the check they are tested against.
struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  strideA: u32, strideB: u32, strideC: u32,
  transA: u32, transB: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  let row = gid.y;
  let bat = gid.z;
  if (row >= p.M || col >= p.N) { return; }
  let ab = bat * p.strideA;
  let bb = bat * p.strideB;
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) {
    var av: f32;
    var bv: f32;
    if (p.transA != 0u) { av = a[ab + k * p.M + row]; } else { av = a[ab + row * p.K + k]; }
    if (p.transB != 0u) { bv = b[bb + col * p.K + k]; } else { bv = b[bb + k * p.N + col]; }
    acc += av * bv;
  }
  c[bat * p.strideC + row * p.N + col] = acc;
}
