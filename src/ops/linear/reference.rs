//! The f64 reference of the fully connected layer.

/// `y[i, o] = b[o] + sum_k x[i, k] * w[o, k]` for `x: [n, k]`, `w: [m, k]`.
pub fn linear(x: &[f64], n: usize, w: &[f64], m: usize, b: Option<&[f64]>) -> Vec<f64> {
    let k = x.len() / n;
    let mut y = vec![0.0; n * m];
    for i in 0..n {
        for o in 0..m {
            y[i * m + o] = b.map_or(0.0, |b| b[o]) + (0..k).map(|j| x[i * k + j] * w[o * k + j]).sum::<f64>();
        }
    }
    y
}
