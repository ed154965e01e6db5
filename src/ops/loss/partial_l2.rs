//! The partial L2 distance of Overhaul feature distillation (Heo et al., ICCV 2019) and its
//! bounded, per-sample normalized form (iekd's exploration term of IE-OD).
//!
//! For a student feature `s` and a target `t` (the teacher's margin-ReLU output) of the same shape
//! `[B, ...]`, with `mask = (s > t) | (t > 0)`:
//! - [`partial_l2_loss`]: `L = 1/B * sum mask * (s - t)^2`. No penalty where `s <= t <= 0`: a
//!   student response below a negative target is as good as the target, since the ReLU that
//!   follows both removes it. This is `distillation_loss` of the authors' code
//!   (clovaai/overhaul-distillation), divided by the batch size as their training script does.
//! - [`normalized_partial_l2_loss`]: the same on `phi(s_b), phi(t_b)`, each sample's `D` values
//!   divided by their L2 norm (as [`super::factor`]); each sample's sum is at most
//!   `||phi(s_b) - phi(t_b)||^2 <= 4`, so `0 <= L <= 4`.
//!
//! Backward: `dL/ds = 2/B * mask * (s - t)`, `dL/dt` its negation (the mask is constant almost
//! everywhere; where it switches with `s < t` as `t` crosses 0, the loss jumps and has no
//! derivative, as in the original); the normalized form then goes through the normalization.

use super::factor::{Normalized, check_pair};
use super::launch::{self as kernels, TwoGrads};
use super::place::upstream;
use crate::cuda::launch::builtin::column_sums;
use crate::error::{Error, Result};
use crate::ops::gpu_of;
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// CPU kernels over `[B, D]` row-major slices.
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Whether an element is counted: not where `s <= t <= 0`.
    pub(crate) fn counts(s: f32, t: f32) -> bool {
        s > t || t > 0.0
    }

    /// `sum_j mask * (s - t)^2` per row of `d`, in f64.
    pub(crate) fn rows(d: usize, s: &[f32], t: &[f32]) -> Vec<f64> {
        s.par_chunks(d)
            .zip(t.par_chunks(d))
            .map(|(s, t)| {
                s.iter()
                    .zip(t)
                    .filter(|&(&s, &t)| counts(s, t))
                    .map(|(&s, &t)| ((s - t) as f64).powi(2))
                    .sum()
            })
            .collect()
    }

    /// The gradient at `s` of `scale * sum mask * (s - t)^2` (that at `t` is its negation).
    pub(crate) fn backward(s: &[f32], t: &[f32], scale: f32) -> Vec<f32> {
        s.par_iter().zip(t).map(|(&s, &t)| if counts(s, t) { 2.0 * scale * (s - t) } else { 0.0 }).collect()
    }
}

/// `(B, D)` of two same-shaped non-empty `[B, ...]` tensors.
fn check(op: &'static str, s: &Tensor, t: &Tensor) -> Result<(usize, usize)> {
    check_pair(op, s, t, |s, t| format!("student {s:?} and target {t:?}"))
}

/// `1/rows * sum mask * (s - t)^2`, one element, where `s` and `t` are.
fn forward([s, t]: [&Tensor; 2], [rows, d]: [usize; 2]) -> Result<Tensor> {
    match gpu_of("partial_l2_loss", &[s, t])? {
        Some(gpu) => {
            let per_row = kernels::partial_l2_rows(&*gpu, [rows, d], s.gpu_buf()?, t.gpu_buf()?)?;
            let total = column_sums(&*gpu, rows, 1, 1.0 / rows as f32, &per_row)?;
            Ok(Tensor::new_gpu(total, &gpu, &[1], false))
        }
        None => {
            let sum: f64 = cpu::rows(d, s.host()?, t.host()?).iter().sum();
            Ok(Tensor::new_cpu(vec![(sum / rows as f64) as f32], &[1], false))
        }
    }
}

/// The gradients at `s` and `t` of `scale * sum mask * (s - t)^2`.
fn backward([s, t]: [&Tensor; 2], scale: f32) -> Result<[Tensor; 2]> {
    match gpu_of("partial_l2_loss", &[s, t])? {
        Some(gpu) => {
            let TwoGrads { first, second } =
                kernels::partial_l2_backward(&*gpu, scale, s.gpu_buf()?, t.gpu_buf()?, true)?;
            let second =
                second.ok_or_else(|| Error::Device("partial_l2_backward returned one gradient".into()))?;
            Ok([first, second].map(|b| Tensor::new_gpu(b, &gpu, s.shape(), false)))
        }
        None => {
            let gs = cpu::backward(s.host()?, t.host()?, scale);
            let gt = gs.iter().map(|g| -g).collect();
            Ok([Tensor::new_cpu(gs, s.shape(), false), Tensor::new_cpu(gt, t.shape(), false)])
        }
    }
}

/// OD's distance `1/B * sum mask * (s - t)^2` between a student feature and its target of the
/// same shape `[B, ...]`; gradients reach both when they require them.
pub fn partial_l2_loss(student: &Tensor, target: &Tensor) -> Result<Tensor> {
    let (batch, d) = check("partial_l2_loss", student, target)?;
    let y = forward([student, target], [batch, d])?.result_of(&[student, target]);
    let (s, t) = (student.clone(), target.clone());
    autograd::record(&y, move |dy, grads| {
        let [gs, gt] = backward([&s, &t], upstream(dy)? / batch as f32)?;
        for (x, g) in [(&s, gs), (&t, gt)] {
            if x.requires_grad() {
                grads.accumulate(x, g)?;
            }
        }
        Ok(())
    });
    Ok(y)
}

/// The bounded form `1/B * sum_b sum_j mask * (phi(s_b) - phi(t_b))_j^2` with `phi` the
/// per-sample L2 normalization; in `[0, 4]`. Gradients reach both inputs.
pub fn normalized_partial_l2_loss(student: &Tensor, target: &Tensor) -> Result<Tensor> {
    let (batch, d) = check("normalized_partial_l2_loss", student, target)?;
    let normalized = Normalized::new([batch, d], student, target)?;
    let y = forward([&normalized.phi[0], &normalized.phi[1]], [batch, d])?.result_of(&[student, target]);
    normalized.record(&y, [student, target], move |dy, [ps, pt]| backward([ps, pt], dy / batch as f32));
    Ok(y)
}

/// The f64 reference: naive, written for clarity, not speed.
pub mod reference {
    use crate::ops::loss::factor::reference::normalize_rows;

    /// `1/B * sum mask * (s - t)^2` over `batch` samples; a one-element vector.
    pub fn partial_l2(s: &[f64], t: &[f64], batch: usize) -> Vec<f64> {
        let sum: f64 =
            s.iter().zip(t).filter(|&(&s, &t)| s > t || t > 0.0).map(|(s, t)| (s - t).powi(2)).sum();
        vec![sum / batch as f64]
    }

    /// [`partial_l2`] of the per-sample normalized `s` and `t`.
    pub fn normalized_partial_l2(s: &[f64], t: &[f64], batch: usize) -> Vec<f64> {
        partial_l2(&normalize_rows(s, batch), &normalize_rows(t, batch), batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_skips_students_below_non_positive_targets() {
        // (s, t): counted (s > t), counted (t > 0), skipped (s <= t <= 0), skipped (s = t = 0),
        // counted (t > 0 with s below it).
        let s = Tensor::from_vec(vec![1.0, 0.5, -2.0, 0.0, -1.0], &[1, 5]).unwrap();
        let t = Tensor::from_vec(vec![-1.0, 2.0, -0.5, 0.0, 0.25], &[1, 5]).unwrap();
        let loss = partial_l2_loss(&s, &t).unwrap().item().unwrap();
        assert_eq!(loss, 4.0 + 2.25 + 1.5625);
        let batch2 = Tensor::from_vec(vec![1.0, -3.0], &[2, 1]).unwrap();
        let target = Tensor::from_vec(vec![0.0, -1.0], &[2, 1]).unwrap();
        assert_eq!(partial_l2_loss(&batch2, &target).unwrap().item().unwrap(), 0.5);
        let err = partial_l2_loss(&s, &Tensor::zeros(&[1, 4])).unwrap_err().to_string();
        assert!(
            err.starts_with("partial_l2_loss:") && err.contains("[1, 5]") && err.contains("[1, 4]"),
            "{err}"
        );
    }

    #[test]
    fn normalized_form_is_bounded_by_four() {
        let s = Tensor::from_vec(vec![3.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[2, 3]).unwrap();
        let t = Tensor::from_vec(vec![-3.0, 0.0, 0.0, 2.0, 2.0, 2.0], &[2, 3]).unwrap();
        // Sample 0: phi(s) = e0, phi(t) = -e0, s > t: 4. Sample 1: the same direction: 0.
        let loss = normalized_partial_l2_loss(&s, &t).unwrap().item().unwrap();
        assert!((loss - 2.0).abs() < 1e-6, "{loss}");
        let err = normalized_partial_l2_loss(&s, &Tensor::zeros(&[3, 2])).unwrap_err().to_string();
        assert!(err.starts_with("normalized_partial_l2_loss:"), "{err}");
    }
}
