// Activation functions that stay finite for large |x| (exp overflow would
// turn tanh into inf/inf = NaN).
fn tanh_(x: f32) -> f32 {
  let e = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - e) / (1.0 + e);
}

fn sigmoid_(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}

const GELU_C = 0.7978845608028654;

// GELU, tanh approximation (PyTorch approximate="tanh", HF "gelu_new").
fn gelu_(x: f32) -> f32 {
  return 0.5 * x * (1.0 + tanh_(GELU_C * (x + 0.044715 * x * x * x)));
}

fn gelu_grad_(x: f32) -> f32 {
  let u = GELU_C * (x + 0.044715 * x * x * x);
  let t = tanh_(u);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x);
}

fn silu_grad_(x: f32) -> f32 {
  let s = sigmoid_(x);
  return s * (1.0 + x * (1.0 - s));
}
