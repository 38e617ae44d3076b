// Matmul for hardware GPUs: {{TILE}}×{{TILE}} output tiles per workgroup of
// 16×16 threads, staged through workgroup memory {{BK}} deep in k, {{PER}}×{{PER}}
// outputs per thread on a stride-16 grid (coalesced loads and stores, no bank
// conflicts on the B tile). Two shapes are measured side by side: 64 wide,
// 16 deep, 4×4 per thread; and 128 wide, 8 deep, 8×8 per thread. The CPU
// adapter uses the barrier-free kernels in matmul/ instead: there a barrier
// costs more than the reuse it buys.
override TRANS_A: bool = false;
override TRANS_B: bool = false;

const BM = {{TILE}}u;
const BN = {{TILE}}u;
const BK = {{BK}}u;
const PER = {{PER}}u;

// With splits > 1, workgroup z = batch · splits + split, each split sums k in
// [split · k_chunk, (split + 1) · k_chunk) and writes its own partial C at
// (split · batch + b) · strideC; the caller adds the partials (split-K, for
// products like dW = dYᵀ·X whose M·N tiles are too few to fill the GPU).
struct Params {
  M: u32, N: u32, K: u32, batch: u32, strideA: u32, strideB: u32, strideC: u32,
  splits: u32, k_chunk: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> As: array<array<f32, {{TILE}}>, {{BK}}>;
var<workgroup> Bs: array<array<f32, {{TILE}}>, {{BK}}>;

fn loadA(base: u32, m: u32, k: u32, k_end: u32) -> f32 {
  if (m >= p.M || k >= k_end) { return 0.0; }
  if (TRANS_A) { return a[base + k * p.M + m]; }
  return a[base + m * p.K + k];
}

fn loadB(base: u32, k: u32, n: u32, k_end: u32) -> f32 {
  if (k >= k_end || n >= p.N) { return 0.0; }
  if (TRANS_B) { return b[base + n * p.K + k]; }
  return b[base + k * p.N + n];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * BM;
  let col0 = wg.x * BN;
  let bat = wg.z / p.splits;
  let split = wg.z % p.splits;
  let baseA = bat * p.strideA;
  let baseB = bat * p.strideB;
  let k_begin = split * p.k_chunk;
  let k_end = min(p.K, k_begin + p.k_chunk);
  var acc: array<array<f32, {{PER}}>, {{PER}}>;
  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
    // BM·BK = BN·BK = 1024 values per tile: 4 per thread.
    for (var i = 0u; i < 4u; i++) {
      let e = li + i * 256u;
      // Consecutive threads walk the operand's contiguous axis.
      if (TRANS_A) {
        As[e / BM][e % BM] = loadA(baseA, row0 + e % BM, k0 + e / BM, k_end);
      } else {
        As[e % BK][e / BK] = loadA(baseA, row0 + e / BK, k0 + e % BK, k_end);
      }
      if (TRANS_B) {
        Bs[e % BK][e / BK] = loadB(baseB, k0 + e % BK, col0 + e / BK, k_end);
      } else {
        Bs[e / BN][e % BN] = loadB(baseB, k0 + e / BN, col0 + e % BN, k_end);
      }
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      var av: array<f32, {{PER}}>;
      var bv: array<f32, {{PER}}>;
      for (var i = 0u; i < PER; i++) { av[i] = As[k][lid.y + i * 16u]; }
      for (var j = 0u; j < PER; j++) { bv[j] = Bs[k][lid.x + j * 16u]; }
      for (var i = 0u; i < PER; i++) {
        for (var j = 0u; j < PER; j++) { acc[i][j] = fma(av[i], bv[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  let baseC = (split * p.batch + bat) * p.strideC;
  for (var i = 0u; i < PER; i++) {
    let m = row0 + lid.y + i * 16u;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < PER; j++) {
      let n = col0 + lid.x + j * 16u;
      if (n < p.N) { c[baseC + m * p.N + n] = acc[i][j]; }
    }
  }
}
