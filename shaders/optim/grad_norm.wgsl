// Global gradient norm for clipping, deterministic and without atomics:
//   partial: part[offset + c] = sum of squares of chunk c of one gradient;
//   finish:  one invocation adds all partials, writes [clip coefficient, norm]
//            where coef = min(1, max_norm / (norm + 1e-6)), as
//            torch.nn.utils.clip_grad_norm_.
struct Params { n: u32, offset: u32, chunk: u32, count: u32, max_norm: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;

@compute @workgroup_size(64)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let c = (wg.y * nwg.x + wg.x) * 64u + lid;
  let start = c * p.chunk;
  if (start >= p.n) { return; }
  let end = min(p.n, start + p.chunk);
  var s = 0.0;
  for (var i = start; i < end; i++) { let g = grad[i]; s += g * g; }
  part[p.offset + c] = s;
}

@compute @workgroup_size(1)
fn finish() {
  var s = 0.0;
  for (var i = 0u; i < p.count; i++) { s += part[i]; }
  let norm = sqrt(s);
  var coef = 1.0;
  if (p.max_norm > 0.0) { coef = min(1.0, p.max_norm / (norm + 1e-6)); }
  result[0] = coef;
  result[1] = norm;
}
