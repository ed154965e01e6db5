//! The f64 reference of the elementwise arithmetic.

/// `a + b`.
pub fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a + b).collect()
}

/// `a * b`.
pub fn mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a * b).collect()
}

/// `s * x`.
pub fn scale(x: &[f64], s: f64) -> Vec<f64> {
    x.iter().map(|v| s * v).collect()
}
