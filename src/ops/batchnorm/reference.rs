//! The f64 reference of batch normalisation over the last axis (rows of `c` channels): naive
//! loops, written for clarity, not speed.

/// Per-channel mean and biased variance, two passes.
pub fn batch_stats(x: &[f64], c: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (x.len() / c) as f64;
    let mut mean = vec![0.0; c];
    for (i, v) in x.iter().enumerate() {
        mean[i % c] += v / n;
    }
    let mut var = vec![0.0; c];
    for (i, v) in x.iter().enumerate() {
        var[i % c] += (v - mean[i % c]).powi(2) / n;
    }
    (mean, var)
}

/// `gamma * (x - mean) / sqrt(var + eps) + beta` per channel, with the given mean and variance.
pub fn normalize(
    x: &[f64],
    c: usize,
    gamma: &[f64],
    beta: &[f64],
    mean: &[f64],
    var: &[f64],
    eps: f64,
) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let ch = i % c;
            gamma[ch] * (v - mean[ch]) / (var[ch] + eps).sqrt() + beta[ch]
        })
        .collect()
}

/// Training-mode batch norm: normalised with the batch's own statistics.
pub fn batch_norm_train(x: &[f64], c: usize, gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
    let (mean, var) = batch_stats(x, c);
    normalize(x, c, gamma, beta, &mean, &var, eps)
}
