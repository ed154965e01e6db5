//! The f64 reference of the margin ReLU and of the margin itself.

/// `y = max(x, m[c])` over rows of `m.len()` channels.
pub fn margin_relu(x: &[f64], m: &[f64]) -> Vec<f64> {
    x.iter().zip(m.iter().cycle()).map(|(&x, &m)| x.max(m)).collect()
}

/// `E[x | x < 0]` for `x ~ N(beta, gamma^2)` by the midpoint rule on `[beta - 12 |gamma|, 0]`
/// with `steps` intervals: `int x p(x) dx / int p(x) dx` (the margin's definition, without the
/// closed form).
pub fn negative_mean(gamma: f64, beta: f64, steps: usize) -> f64 {
    let s = gamma.abs();
    let lo = beta - 12.0 * s;
    let h = -lo / steps as f64;
    let (mut mass, mut first) = (0.0, 0.0);
    for i in 0..steps {
        let x = lo + (i as f64 + 0.5) * h;
        let p = (-((x - beta) / s).powi(2) / 2.0).exp();
        mass += p;
        first += x * p;
    }
    first / mass
}
