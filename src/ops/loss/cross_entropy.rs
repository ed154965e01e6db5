//! Softmax cross-entropy with integer labels, batch-mean.
//!
//! `L = 1/N * sum_n (logsumexp(z[n, :]) - z[n, y_n])` for logits `z: [N, K]` and labels
//! `y_n in [0, K)`; the log-sum-exp subtracts the row maximum first. The forward keeps the softmax
//! `p = softmax(z)`, so the backward is a single pass: `dz[n, k] = dL * (p[n, k] - [k == y_n]) / N`.

use super::place;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::autograd;

const OP: &str = "cross_entropy";

/// CPU kernels over row-major `[N, K]` slices.
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Rows a rayon task handles.
    const ROWS_PER_TASK: usize = 64;

    /// Fills `p` with the row softmax of `z` and returns the summed (not averaged) loss
    /// `sum_n logsumexp(z[n]) - z[n, y_n]`, accumulated in f64.
    pub(crate) fn forward(k: usize, z: &[f32], labels: &[usize], p: &mut [f32]) -> f64 {
        let per_task: Vec<f64> = p
            .par_chunks_mut(ROWS_PER_TASK * k)
            .zip(z.par_chunks(ROWS_PER_TASK * k))
            .zip(labels.par_chunks(ROWS_PER_TASK))
            .map(|((p, z), labels)| {
                let mut sum = 0.0f64;
                for ((p, z), &y) in p.chunks_exact_mut(k).zip(z.chunks_exact(k)).zip(labels) {
                    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut total = 0.0f32;
                    for (p, &v) in p.iter_mut().zip(z) {
                        *p = (v - max).exp();
                        total += *p;
                    }
                    let inv = 1.0 / total;
                    p.iter_mut().for_each(|p| *p *= inv);
                    sum += (total.ln() - (z[y] - max)) as f64;
                }
                sum
            })
            .collect();
        per_task.iter().sum()
    }

    /// `dz = scale * (p - onehot(y))`, with `scale = dL / N`.
    pub(crate) fn backward(k: usize, p: &[f32], labels: &[usize], scale: f32) -> Vec<f32> {
        let mut dz = vec![0.0; p.len()];
        dz.par_chunks_mut(k).zip(p.par_chunks(k)).zip(labels).for_each(|((dz, p), &y)| {
            for (d, &p) in dz.iter_mut().zip(p) {
                *d = scale * p;
            }
            dz[y] -= scale;
        });
        dz
    }
}

/// Checks `logits: [N, K]` with `N, K > 0` and `N` labels in `[0, K)`; returns `(N, K)`.
fn check(logits: &Tensor, labels: &[usize]) -> Result<(usize, usize)> {
    logits.expect_shape(OP, "logits", &[None, None])?;
    let (n, k) = (logits.shape()[0], logits.shape()[1]);
    if n == 0 || k == 0 {
        return Err(Error::shape(OP, format!("empty logits {:?}", logits.shape())));
    }
    if labels.len() != n {
        return Err(Error::shape(OP, format!("{} labels for logits {:?}", labels.len(), logits.shape())));
    }
    if let Some((i, &y)) = labels.iter().enumerate().find(|&(_, &y)| y >= k) {
        return Err(Error::invalid(
            OP,
            format!("label {y} at index {i} out of range for logits {:?}", logits.shape()),
        ));
    }
    Ok((n, k))
}

/// Mean softmax cross-entropy of `logits: [N, K]` against `labels` (N values in `[0, K)`).
pub fn cross_entropy(logits: &Tensor, labels: &[usize]) -> Result<Tensor> {
    let (n, k) = check(logits, labels)?;
    let (loss, prob, labels) = place::ce_forward(logits, labels, [n, k])?;
    let y = loss.result_of(&[logits]);
    let logits = logits.clone();
    autograd::record(&y, move |dy, grads| {
        let scale = place::upstream(dy)? / n as f32;
        grads.accumulate(&logits, place::ce_backward(&prob, &labels, [n, k], scale)?)
    });
    Ok(y)
}

/// The loss and its gradient with respect to the logits in one call, without the tape
/// (`dL/dz = (softmax(z) - onehot(y)) / N`).
pub fn cross_entropy_fused(logits: &Tensor, labels: &[usize]) -> Result<(f32, Tensor)> {
    let (n, k) = check(logits, labels)?;
    let (loss, dz) = place::ce_fused(logits, labels, [n, k])?;
    Ok((loss.item()?, dz))
}

/// The f64 reference: naive, written for clarity, not speed.
pub mod reference {
    /// `log_softmax(row / temperature)`.
    pub fn log_softmax(row: &[f64], temperature: f64) -> Vec<f64> {
        let max = row.iter().map(|v| v / temperature).fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|v| (v / temperature - max).exp()).sum::<f64>().ln();
        row.iter().map(|v| v / temperature - lse).collect()
    }

    /// `1/N * sum_n -log softmax(z[n])[y_n]`, `z: [N, K]`; a one-element vector.
    pub fn cross_entropy(z: &[f64], k: usize, labels: &[usize]) -> Vec<f64> {
        let total: f64 = z.chunks(k).zip(labels).map(|(row, &y)| -log_softmax(row, 1.0)[y]).sum();
        vec![total / labels.len() as f64]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Tensor {
        Tensor::from_vec(vec![1.0, 2.0, 0.5, -1.0, 0.0, 3.0], &[2, 3]).unwrap().into_param()
    }

    #[test]
    fn rejects_bad_labels_and_shapes() {
        let z = logits();
        let msg = cross_entropy(&z, &[0, 3]).unwrap_err().to_string();
        assert!(msg.contains("cross_entropy") && msg.contains("label 3") && msg.contains("[2, 3]"), "{msg}");
        let msg = cross_entropy(&z, &[0]).unwrap_err().to_string();
        assert!(msg.contains("cross_entropy") && msg.contains("1 labels") && msg.contains("[2, 3]"), "{msg}");
        let empty = Tensor::zeros(&[0, 3]);
        let msg = cross_entropy(&empty, &[]).unwrap_err().to_string();
        assert!(msg.contains("cross_entropy") && msg.contains("[0, 3]"), "{msg}");
        let rank3 = Tensor::zeros(&[2, 3, 1]);
        let msg = cross_entropy(&rank3, &[0, 1]).unwrap_err().to_string();
        assert!(msg.contains("cross_entropy") && msg.contains("[2, 3, 1]"), "{msg}");
        assert!(cross_entropy_fused(&z, &[5, 0]).is_err());
    }

    #[test]
    fn stable_for_huge_logits() {
        let z = Tensor::from_vec(vec![1000.0, 0.0, -1000.0, 5000.0, 5000.0, 5000.0], &[2, 3]).unwrap();
        let loss = cross_entropy(&z, &[0, 1]).unwrap().item().unwrap();
        assert!((loss - 3f32.ln() / 2.0).abs() < 1e-5, "{loss}");
    }

    #[test]
    fn fused_matches_tape() {
        let z = logits();
        autograd::clear_tape();
        let loss = cross_entropy(&z, &[2, 0]).unwrap();
        let grads = autograd::backward(&loss).unwrap();
        let (fused_loss, fused_grad) = cross_entropy_fused(&z, &[2, 0]).unwrap();
        assert_eq!(loss.item().unwrap(), fused_loss);
        assert_eq!(grads.get(&z).unwrap().to_vec().unwrap(), fused_grad.to_vec().unwrap());
    }
}
