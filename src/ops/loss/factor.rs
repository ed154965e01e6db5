//! The normalized-factor losses of Factor Transfer and IE-KD.
//!
//! Per sample `b`, a factor `F_b` (all `D = numel / B` elements after the batch dimension, e.g.
//! `H*W*C` of an `[N, H, W, C]` map) is normalized as `phi(F_b) = F_b / max(||F_b||_2, NORM_EPS)`.
//! - [`factor_loss`]: `L = sign / (B*D) * sum_{b,i} |phi(a_b)_i - phi(b_b)_i|^p`, `p` = 1 or 2;
//!   `sign = +1` is the inheritance loss `L_inh`, `sign = -1` the exploration loss `L_exp`.
//! - [`factor_dot_loss`]: `L = 1/B * sum_b |<phi(a_b), phi(b_b)>|`, the exploration alternative of
//!   the authors' code.
//!
//! Backward: the gradient `g` reaching `phi(F_b)` becomes `(g - phi <phi, g>) / ||F_b||`, since
//! `d phi / d F = (I - phi phi^T) / ||F||`. The guard: below `NORM_EPS` the divisor is the constant
//! `NORM_EPS` (PyTorch's `F.normalize`), so `phi = F / NORM_EPS` and the gradient is `g / NORM_EPS`;
//! an all-zero factor has `phi = 0`, a finite loss and a finite (if large: `1e12` times the
//! gradient reaching `phi`) gradient; a factor that small only comes from a dead encoder. `|v|` has gradient
//! `sign(v)` with `sign(0) = 0`.

use super::place;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// The smallest divisor used when normalizing a factor (PyTorch's `F.normalize` default).
pub const NORM_EPS: f32 = 1e-12;

/// The element-wise distance between normalized factors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorNorm {
    /// `|x|` (the loss of the authors' code and of Factor Transfer).
    L1,
    /// `x^2`.
    L2,
}

/// CPU kernels over `[B, D]` row-major slices (one row per sample).
pub(crate) mod cpu {
    use rayon::prelude::*;

    use super::{FactorNorm, NORM_EPS};
    use crate::ops::loss::recon::cpu::{diff_sum, sign};

    /// Fills `phi` with `x / max(||x||, NORM_EPS)` row-wise and returns the norms `||x||`.
    pub(crate) fn normalize_rows(d: usize, x: &[f32], phi: &mut [f32]) -> Vec<f32> {
        phi.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .map(|(phi, x)| {
                let norm = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32;
                let inv = 1.0 / norm.max(NORM_EPS);
                phi.iter_mut().zip(x).for_each(|(p, &v)| *p = v * inv);
                norm
            })
            .collect()
    }

    /// The gradient reaching `x` from the gradient `g` reaching `phi`, row-wise:
    /// `(g - phi <phi, g>) / ||x||`, or `g / NORM_EPS` where `||x|| < NORM_EPS`.
    pub(crate) fn normalize_rows_backward(d: usize, phi: &[f32], norms: &[f32], g: &[f32]) -> Vec<f32> {
        let mut dx = vec![0.0; g.len()];
        dx.par_chunks_mut(d).zip(phi.par_chunks(d).zip(g.par_chunks(d))).zip(norms).for_each(
            |((dx, (phi, g)), &norm)| {
                if norm < NORM_EPS {
                    dx.iter_mut().zip(g).for_each(|(d, &g)| *d = g / NORM_EPS);
                    return;
                }
                let dot = phi.iter().zip(g).map(|(&p, &g)| p as f64 * g as f64).sum::<f64>() as f32;
                let inv = 1.0 / norm;
                for ((d, &p), &g) in dx.iter_mut().zip(phi).zip(g) {
                    *d = (g - p * dot) * inv;
                }
            },
        );
        dx
    }

    /// `sum_i |pa_i - pb_i|^p` per row, in f64.
    pub(crate) fn distance(d: usize, pa: &[f32], pb: &[f32], norm: FactorNorm) -> Vec<f64> {
        let squared = matches!(norm, FactorNorm::L2);
        pa.par_chunks(d).zip(pb.par_chunks(d)).map(|(a, b)| diff_sum(a, b, squared)).collect()
    }

    /// The gradient reaching `pa` of `scale * sum |pa - pb|^p` (that of `pb` is its negation).
    pub(crate) fn distance_backward(pa: &[f32], pb: &[f32], norm: FactorNorm, scale: f32) -> Vec<f32> {
        pa.par_iter()
            .zip(pb)
            .map(|(&a, &b)| match norm {
                FactorNorm::L1 => scale * sign(a - b),
                FactorNorm::L2 => 2.0 * scale * (a - b),
            })
            .collect()
    }

    /// `<pa_b, pb_b>` per row, in f64.
    pub(crate) fn dots(d: usize, pa: &[f32], pb: &[f32]) -> Vec<f64> {
        pa.par_chunks(d)
            .zip(pb.par_chunks(d))
            .map(|(a, b)| a.iter().zip(b).map(|(&a, &b)| a as f64 * b as f64).sum())
            .collect()
    }

    /// The gradient reaching `pa` of `scale * sum_b |<pa_b, pb_b>|`: `scale * sign(dot_b) * pb_b`.
    pub(crate) fn dots_backward(d: usize, dots: &[f32], pb: &[f32], scale: f32) -> Vec<f32> {
        let mut g = vec![0.0; pb.len()];
        g.par_chunks_mut(d).zip(pb.par_chunks(d)).zip(dots).for_each(|((g, pb), &dot)| {
            let s = scale * sign(dot);
            g.iter_mut().zip(pb).for_each(|(g, &p)| *g = s * p);
        });
        g
    }
}

/// Checks that `a` and `b` have the same shape `[B, ...]` with `B, D > 0`; returns `(B, D)`.
pub(super) fn check(op: &'static str, a: &Tensor, b: &Tensor) -> Result<(usize, usize)> {
    check_pair(op, a, b, |a, b| format!("factors {a:?} and {b:?}"))
}

/// `(B, D)` of two same-shaped non-empty `[B, ...]` tensors `a` and `b`, else an error of `op`
/// naming them by `names(a.shape(), b.shape())`.
pub(super) fn check_pair(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    names: impl FnOnce(&[usize], &[usize]) -> String,
) -> Result<(usize, usize)> {
    if a.shape() != b.shape() || a.rank() < 2 || a.numel() == 0 {
        let names = names(a.shape(), b.shape());
        return Err(Error::shape(op, format!("{names} must have the same non-empty shape [B, ...]")));
    }
    let batch = a.shape()[0];
    Ok((batch, a.numel() / batch))
}

/// Both factors normalized per sample, with their norms (kept for the backward).
pub(super) struct Normalized {
    rows_d: [usize; 2],
    /// Both factors normalized per sample.
    pub(super) phi: [Tensor; 2],
    norms: [Tensor; 2],
}

impl Normalized {
    /// `a` and `b`, `rows_d = [B, D]`, normalized per sample.
    pub(super) fn new(rows_d: [usize; 2], a: &Tensor, b: &Tensor) -> Result<Normalized> {
        let [phi_a, norms_a] = place::normalize_rows(a, rows_d, a.shape())?;
        let [phi_b, norms_b] = place::normalize_rows(b, rows_d, b.shape())?;
        Ok(Normalized { rows_d, phi: [phi_a, phi_b], norms: [norms_a, norms_b] })
    }

    /// Records the backward of `y`: `phi_grads(dL, phi)` gives the gradients reaching both
    /// normalized factors, which then go through the normalization to `a` and `b`.
    pub(super) fn record(
        self,
        y: &Tensor,
        [a, b]: [&Tensor; 2],
        phi_grads: impl FnOnce(f32, &[Tensor; 2]) -> Result<[Tensor; 2]> + 'static,
    ) {
        let (a, b) = (a.clone(), b.clone());
        autograd::record(y, move |dy, grads| {
            let g = phi_grads(place::upstream(dy)?, &self.phi)?;
            for (i, t) in [&a, &b].into_iter().enumerate() {
                if t.requires_grad() {
                    let parts = [&self.phi[i], &self.norms[i], &g[i]];
                    grads.accumulate(t, place::normalize_rows_backward(parts, self.rows_d)?)?;
                }
            }
            Ok(())
        });
    }
}

/// `sign / (B*D) * sum |phi(a) - phi(b)|^p` over factors `a, b: [B, ...]` of the same shape;
/// `sign` is `1.0` (inheritance) or `-1.0` (exploration). Gradients reach both factors.
pub fn factor_loss(a: &Tensor, b: &Tensor, norm: FactorNorm, sign: f32) -> Result<Tensor> {
    const OP: &str = "factor_loss";
    let (batch, d) = check(OP, a, b)?;
    if sign != 1.0 && sign != -1.0 {
        return Err(Error::invalid(OP, format!("sign must be 1 or -1, got {sign}")));
    }
    let normalized = Normalized::new([batch, d], a, b)?;
    let y = place::factor_distance([&normalized.phi[0], &normalized.phi[1]], [batch, d], norm, sign)?
        .result_of(&[a, b]);
    normalized
        .record(&y, [a, b], move |dy, [pa, pb]| place::factor_distance_backward([pa, pb], norm, sign, dy));
    Ok(y)
}

/// IE-KD's inheritance loss `L_inh`: [`factor_loss`] with sign `+1`.
pub fn inheritance_loss(student: &Tensor, teacher: &Tensor, norm: FactorNorm) -> Result<Tensor> {
    factor_loss(student, teacher, norm, 1.0)
}

/// IE-KD's exploration loss `L_exp`: [`factor_loss`] with sign `-1`.
pub fn exploration_loss(student: &Tensor, teacher: &Tensor, norm: FactorNorm) -> Result<Tensor> {
    factor_loss(student, teacher, norm, -1.0)
}

/// `1/B * sum_b |<phi(a_b), phi(b_b)>|` over factors `a, b: [B, ...]` of the same shape.
pub fn factor_dot_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    const OP: &str = "factor_dot_loss";
    let (batch, d) = check(OP, a, b)?;
    let normalized = Normalized::new([batch, d], a, b)?;
    let [dots, loss] = place::factor_dots([&normalized.phi[0], &normalized.phi[1]], [batch, d])?;
    let y = loss.result_of(&[a, b]);
    normalized.record(&y, [a, b], move |dy, [pa, pb]| {
        let scale = dy / batch as f32;
        Ok([
            place::dots_backward(&dots, pb, [batch, d], scale)?,
            place::dots_backward(&dots, pa, [batch, d], scale)?,
        ])
    });
    Ok(y)
}

/// The f64 reference: naive, written for clarity, not speed.
pub mod reference {
    /// The divisor floor of the normalizations (as [`NORM_EPS`](super::NORM_EPS)).
    const NORM_EPS: f64 = 1e-12;

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

    /// `sign / (B*D) * sum |phi(a) - phi(b)|^p` with per-sample normalization over `B` samples;
    /// a one-element vector.
    pub fn factor(a: &[f64], b: &[f64], batch: usize, p: i32, sign: f64) -> Vec<f64> {
        let (pa, pb) = (normalize_rows(a, batch), normalize_rows(b, batch));
        let total: f64 = pa.iter().zip(&pb).map(|(x, y)| (x - y).abs().powi(p)).sum();
        vec![sign * total / a.len() as f64]
    }

    /// `1/B * sum_b |<phi(a_b), phi(b_b)>|` over `B` samples; a one-element vector.
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
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn l1_distance(a: &Tensor, b: &Tensor) -> f32 {
        let d = a.numel() / a.shape()[0];
        let n = Normalized::new([a.shape()[0], d], a, b).unwrap();
        let [pa, pb] = [&n.phi[0], &n.phi[1]].map(|p| p.to_vec().unwrap());
        pa.iter().zip(&pb).map(|(x, y)| (x - y).abs()).sum()
    }

    #[test]
    fn finite_for_all_zero_factors() {
        let zero = Tensor::zeros(&[2, 3, 3, 4]).into_param();
        let other = Tensor::randn(&[2, 3, 3, 4], 1.0, &mut ChaCha8Rng::seed_from_u64(1)).into_param();
        for (a, b) in [(&zero, &other), (&other, &zero), (&zero, &zero)] {
            for k in 0..3 {
                let loss = match k {
                    0 => factor_loss(a, b, FactorNorm::L1, 1.0),
                    1 => factor_loss(a, b, FactorNorm::L2, -1.0),
                    _ => factor_dot_loss(a, b),
                };
                let loss = loss.unwrap();
                assert!(loss.item().unwrap().is_finite());
                let grads = autograd::backward(&loss).unwrap();
                for t in [a, b] {
                    assert!(grads.get(t).unwrap().to_vec().unwrap().iter().all(|g| g.is_finite()));
                }
            }
        }
    }

    #[test]
    fn exploration_step_moves_away_and_inheritance_step_moves_closer() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let teacher = Tensor::randn(&[3, 4, 5, 3], 1.0, &mut rng);
        let student = Tensor::randn(&[3, 4, 5, 3], 1.0, &mut rng).into_param();
        let before = l1_distance(&student, &teacher);
        for (norm, sign) in
            [(FactorNorm::L1, 1.0), (FactorNorm::L1, -1.0), (FactorNorm::L2, 1.0), (FactorNorm::L2, -1.0)]
        {
            let loss = factor_loss(&student, &teacher, norm, sign).unwrap();
            let grads = autograd::backward(&loss).unwrap();
            let g = grads.get(&student).unwrap().to_vec().unwrap();
            let stepped: Vec<f32> =
                student.to_vec().unwrap().iter().zip(&g).map(|(x, g)| x - 10.0 * g).collect();
            let after = l1_distance(&Tensor::from_vec(stepped, student.shape()).unwrap(), &teacher);
            assert!(
                if sign > 0.0 { after < before } else { after > before },
                "{norm:?} {sign}: {before} -> {after}"
            );
        }
    }

    #[test]
    fn rejects_mismatched_shapes_and_bad_sign() {
        let (a, b) = (Tensor::zeros(&[2, 3, 3, 4]), Tensor::zeros(&[2, 3, 3, 5]));
        let msg = factor_loss(&a, &b, FactorNorm::L1, 1.0).unwrap_err().to_string();
        assert!(
            msg.contains("factor_loss") && msg.contains("[2, 3, 3, 4]") && msg.contains("[2, 3, 3, 5]"),
            "{msg}"
        );
        assert!(factor_dot_loss(&a, &b).unwrap_err().to_string().contains("factor_dot_loss"));
        assert!(factor_loss(&a, &a, FactorNorm::L1, 0.5).unwrap_err().to_string().contains("sign"));
        assert!(factor_loss(&Tensor::zeros(&[0, 3]), &Tensor::zeros(&[0, 3]), FactorNorm::L2, 1.0).is_err());
    }
}
