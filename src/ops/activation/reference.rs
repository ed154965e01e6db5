//! The f64 reference of the activations.

/// `max(x, 0)`.
pub fn relu(x: &[f64]) -> Vec<f64> {
    leaky_relu(x, 0.0)
}

/// `x` where `x > 0`, `slope * x` elsewhere.
pub fn leaky_relu(x: &[f64], slope: f64) -> Vec<f64> {
    x.iter().map(|&v| if v > 0.0 { v } else { slope * v }).collect()
}

/// `min(max(x, 0), 6)`.
pub fn relu6(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| v.clamp(0.0, 6.0)).collect()
}
