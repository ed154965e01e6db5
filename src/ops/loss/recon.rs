//! Reconstruction losses between two tensors of the same shape, mean over all `M` elements.
//!
//! - [`l1_loss`]: `L = 1/M * sum |a - b|`; `da = dL * sign(a - b) / M` (with `sign(0) = 0`), `db = -da`.
//! - [`mse_loss`]: `L = 1/M * sum (a - b)^2`; `da = dL * 2 (a - b) / M`, `db = -da`.

use super::place;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// CPU kernels over flat slices.
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Elements a rayon task handles.
    const CHUNK: usize = 1 << 14;

    /// `1`, `-1` or `0`: the subgradient of `|v|` PyTorch uses (`f32::signum` gives `1` at `0`).
    pub(crate) fn sign(v: f32) -> f32 {
        if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            0.0
        }
    }

    /// `sum |a - b|` (`squared = false`) or `sum (a - b)^2`, in f64 with a fixed summation order.
    pub(crate) fn forward(a: &[f32], b: &[f32], squared: bool) -> f64 {
        let per_task: Vec<f64> =
            a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)).map(|(a, b)| diff_sum(a, b, squared)).collect();
        per_task.iter().sum()
    }

    /// `sum |a - b|` (`squared = false`) or `sum (a - b)^2` in f64, added in order.
    pub(crate) fn diff_sum(a: &[f32], b: &[f32], squared: bool) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&a, &b)| {
                let v = (a - b) as f64;
                if squared { v * v } else { v.abs() }
            })
            .sum()
    }

    /// The gradient reaching `a`: `scale * sign(a - b)` or `2 * scale * (a - b)`.
    pub(crate) fn backward(a: &[f32], b: &[f32], squared: bool, scale: f32) -> Vec<f32> {
        a.par_iter()
            .zip(b)
            .map(|(&a, &b)| if squared { 2.0 * scale * (a - b) } else { scale * sign(a - b) })
            .collect()
    }
}

fn recon_loss(op: &'static str, a: &Tensor, b: &Tensor, squared: bool) -> Result<Tensor> {
    if a.shape() != b.shape() || a.numel() == 0 {
        return Err(Error::shape(
            op,
            format!("inputs {:?} and {:?} must have the same non-empty shape", a.shape(), b.shape()),
        ));
    }
    let m = a.numel();
    let y = place::recon_forward(a, b, squared)?.result_of(&[a, b]);
    let (a, b) = (a.clone(), b.clone());
    autograd::record(&y, move |dy, grads| {
        let scale = place::upstream(dy)? / m as f32;
        let (da, db) = place::recon_backward([&a, &b], squared, scale, b.requires_grad())?;
        if let Some(db) = db {
            grads.accumulate(&b, db)?;
        }
        grads.accumulate(&a, da)
    });
    Ok(y)
}

/// Mean absolute error between `a` and `b` (same shape); gradients reach both.
pub fn l1_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    recon_loss("l1_loss", a, b, false)
}

/// Mean squared error between `a` and `b` (same shape); gradients reach both.
pub fn mse_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    recon_loss("mse_loss", a, b, true)
}

/// The f64 reference: naive, written for clarity, not speed.
pub mod reference {
    /// `mean |a - b|`, a one-element vector.
    pub fn l1(a: &[f64], b: &[f64]) -> Vec<f64> {
        vec![a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64]
    }

    /// `mean (a - b)^2`, a one-element vector.
    pub fn mse(a: &[f64], b: &[f64]) -> Vec<f64> {
        vec![a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_shape_errors() {
        let a = Tensor::from_vec(vec![1.0, -2.0, 3.0, 0.0], &[2, 2]).unwrap();
        let b = Tensor::from_vec(vec![0.0, 0.0, 1.0, 0.0], &[2, 2]).unwrap();
        assert_eq!(l1_loss(&a, &b).unwrap().item().unwrap(), 5.0 / 4.0);
        assert_eq!(mse_loss(&a, &b).unwrap().item().unwrap(), 9.0 / 4.0);
        let msg = l1_loss(&a, &Tensor::zeros(&[4])).unwrap_err().to_string();
        assert!(msg.contains("l1_loss") && msg.contains("[2, 2]") && msg.contains("[4]"), "{msg}");
        assert!(
            mse_loss(&Tensor::zeros(&[0]), &Tensor::zeros(&[0]))
                .unwrap_err()
                .to_string()
                .contains("mse_loss")
        );
    }
}
