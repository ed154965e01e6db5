//! Reference losses, f64. Each returns a one-element vector (the attention map excepted).

/// The divisor floor of the normalizations (as `ops::loss::NORM_EPS`).
const NORM_EPS: f64 = 1e-12;

/// `log_softmax(row / temperature)`.
fn log_softmax(row: &[f64], temperature: f64) -> Vec<f64> {
    let max = row.iter().map(|v| v / temperature).fold(f64::NEG_INFINITY, f64::max);
    let lse = max + row.iter().map(|v| (v / temperature - max).exp()).sum::<f64>().ln();
    row.iter().map(|v| v / temperature - lse).collect()
}

/// `1/N * sum_n -log softmax(z[n])[y_n]`, `z: [N, K]`.
pub fn cross_entropy(z: &[f64], k: usize, labels: &[usize]) -> Vec<f64> {
    let total: f64 = z.chunks(k).zip(labels).map(|(row, &y)| -log_softmax(row, 1.0)[y]).sum();
    vec![total / labels.len() as f64]
}

/// `T^2 / N * sum_n KL(softmax(t[n]/T) || softmax(s[n]/T))`, `s, t: [N, K]`.
pub fn kd(s: &[f64], t: &[f64], k: usize, temperature: f64) -> Vec<f64> {
    let n = s.len() / k;
    let mut total = 0.0;
    for (s, t) in s.chunks(k).zip(t.chunks(k)) {
        let (ls, lt) = (log_softmax(s, temperature), log_softmax(t, temperature));
        total += ls.iter().zip(&lt).map(|(a, b)| b.exp() * (b - a)).sum::<f64>();
    }
    vec![temperature * temperature * total / n as f64]
}

/// Each of the `rows` rows of `x` divided by `max(||row||_2, NORM_EPS)`.
pub fn normalize_rows(x: &[f64], rows: usize) -> Vec<f64> {
    let d = x.len() / rows;
    x.chunks(d)
        .flat_map(|row| {
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(NORM_EPS);
            row.iter().map(move |v| v / norm)
        })
        .collect()
}

/// `sign / (B*D) * sum |phi(a) - phi(b)|^p` with per-sample normalization over `B` samples.
pub fn factor(a: &[f64], b: &[f64], batch: usize, p: i32, sign: f64) -> Vec<f64> {
    let (pa, pb) = (normalize_rows(a, batch), normalize_rows(b, batch));
    let total: f64 = pa.iter().zip(&pb).map(|(x, y)| (x - y).abs().powi(p)).sum();
    vec![sign * total / a.len() as f64]
}

/// `1/B * sum_b |<phi(a_b), phi(b_b)>|` over `B` samples.
pub fn factor_dot(a: &[f64], b: &[f64], batch: usize) -> Vec<f64> {
    let d = a.len() / batch;
    let (pa, pb) = (normalize_rows(a, batch), normalize_rows(b, batch));
    let total: f64 = pa
        .chunks(d)
        .zip(pb.chunks(d))
        .map(|(x, y)| x.iter().zip(y).map(|(u, v)| u * v).sum::<f64>().abs())
        .sum();
    vec![total / batch as f64]
}

/// The attention map of `x: [N, H, W, C]`: per sample, the channel mean of `x^2` at each pixel,
/// normalized over the `H*W` pixels; shape `[N, H*W]`.
pub fn attention_map(x: &[f64], shape: [usize; 4]) -> Vec<f64> {
    let [n, _, _, c] = shape;
    let q: Vec<f64> = x.chunks(c).map(|px| px.iter().map(|v| v * v).sum::<f64>() / c as f64).collect();
    normalize_rows(&q, n)
}

/// `mean((at(s) - at(t))^2)` over all `N*H*W` elements.
pub fn at_loss(s: &[f64], s_shape: [usize; 4], t: &[f64], t_shape: [usize; 4]) -> Vec<f64> {
    mse(&attention_map(s, s_shape), &attention_map(t, t_shape))
}

/// `mean |a - b|`.
pub fn l1(a: &[f64], b: &[f64]) -> Vec<f64> {
    vec![a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64]
}

/// `mean (a - b)^2`.
pub fn mse(a: &[f64], b: &[f64]) -> Vec<f64> {
    vec![a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64]
}
