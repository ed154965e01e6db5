//! Hinton's distillation loss, batch-mean.
//!
//! `L = T^2 / N * sum_n KL(p_t[n] || p_s[n]) = T^2 / N * sum_{n,k} p_t[n,k] (log p_t[n,k] - log p_s[n,k])`
//! with `p_s = softmax(s / T)`, `p_t = softmax(t / T)` row-wise, `s, t: [N, K]`.
//!
//! Backward: `ds = dL * T / N * (p_s - p_t)`; when `t` also requires a gradient (DML trains each
//! network against its peer), `dt[n,j] = dL * T / N * p_t[n,j] * (a[n,j] - sum_k p_t[n,k] a[n,k])` with
//! `a = log p_t - log p_s`.

use super::place;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::autograd;

const OP: &str = "kd_loss";

/// CPU kernels over row-major `[N, K]` slices.
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Rows a rayon task handles.
    const ROWS_PER_TASK: usize = 64;

    /// `out = log_softmax(z * inv_t)`, stable (max subtracted first).
    fn log_softmax(z: &[f32], inv_t: f32, out: &mut [f32]) {
        let max = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v * inv_t));
        let total: f32 = z.iter().map(|&v| (v * inv_t - max).exp()).sum();
        let log_total = total.ln();
        for (o, &v) in out.iter_mut().zip(z) {
            *o = v * inv_t - max - log_total;
        }
    }

    /// Fills `ls`, `lt` with the tempered log-softmax of `s`, `t`; returns
    /// `sum_{n,k} exp(lt) (lt - ls)` accumulated in f64.
    pub(crate) fn forward(k: usize, s: &[f32], t: &[f32], inv_t: f32, ls: &mut [f32], lt: &mut [f32]) -> f64 {
        let chunk = ROWS_PER_TASK * k;
        let per_task: Vec<f64> = ls
            .par_chunks_mut(chunk)
            .zip(lt.par_chunks_mut(chunk))
            .zip(s.par_chunks(chunk).zip(t.par_chunks(chunk)))
            .map(|((ls, lt), (s, t))| {
                let mut sum = 0.0f64;
                for ((ls, lt), (s, t)) in ls
                    .chunks_exact_mut(k)
                    .zip(lt.chunks_exact_mut(k))
                    .zip(s.chunks_exact(k).zip(t.chunks_exact(k)))
                {
                    log_softmax(s, inv_t, ls);
                    log_softmax(t, inv_t, lt);
                    sum += ls.iter().zip(lt.iter()).map(|(&a, &b)| (b.exp() * (b - a)) as f64).sum::<f64>();
                }
                sum
            })
            .collect();
        per_task.iter().sum()
    }

    /// `ds = scale * (exp(ls) - exp(lt))`, with `scale = dL * T / N`.
    pub(crate) fn backward_student(ls: &[f32], lt: &[f32], scale: f32) -> Vec<f32> {
        ls.par_iter().zip(lt).map(|(&a, &b)| scale * (a.exp() - b.exp())).collect()
    }

    /// `dt = scale * p_t * (a - <p_t, a>)` row-wise, `a = lt - ls`, `scale = dL * T / N`.
    pub(crate) fn backward_teacher(k: usize, ls: &[f32], lt: &[f32], scale: f32) -> Vec<f32> {
        let mut dt = vec![0.0; ls.len()];
        dt.par_chunks_mut(k).zip(ls.par_chunks(k).zip(lt.par_chunks(k))).for_each(|(dt, (ls, lt))| {
            let mean: f32 = ls.iter().zip(lt).map(|(&a, &b)| b.exp() * (b - a)).sum();
            for ((d, &a), &b) in dt.iter_mut().zip(ls).zip(lt) {
                *d = scale * b.exp() * ((b - a) - mean);
            }
        });
        dt
    }
}

/// `T^2 * KL(softmax(teacher / T) || softmax(student / T))`, summed over classes and averaged over
/// the batch; `student, teacher: [N, K]`, `temperature > 0`. Both logits get gradients when they
/// require them.
pub fn kd_loss(student: &Tensor, teacher: &Tensor, temperature: f32) -> Result<Tensor> {
    student.expect_shape(OP, "student logits", &[None, None])?;
    teacher.expect_shape(OP, "teacher logits", &[Some(student.shape()[0]), Some(student.shape()[1])])?;
    let (n, k) = (student.shape()[0], student.shape()[1]);
    if n == 0 || k == 0 {
        return Err(Error::shape(OP, format!("empty logits {:?}", student.shape())));
    }
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::invalid(
            OP,
            format!("temperature must be positive and finite, got {temperature}"),
        ));
    }
    let [loss, ls, lt] = place::kd_forward(student, teacher, temperature, [n, k])?;
    let y = loss.result_of(&[student, teacher]);
    let (student, teacher) = (student.clone(), teacher.clone());
    autograd::record(&y, move |dy, grads| {
        let scale = place::upstream(dy)? * temperature / n as f32;
        let want = [student.requires_grad(), teacher.requires_grad()];
        let [ds, dt] = place::kd_backward([&ls, &lt], [n, k], scale, want)?;
        if let Some(ds) = ds {
            grads.accumulate(&student, ds)?;
        }
        if let Some(dt) = dt {
            grads.accumulate(&teacher, dt)?;
        }
        Ok(())
    });
    Ok(y)
}

/// The f64 reference: naive, written for clarity, not speed.
pub mod reference {
    use crate::ops::loss::cross_entropy::reference::log_softmax;

    /// `T^2 / N * sum_n KL(softmax(t[n]/T) || softmax(s[n]/T))`, `s, t: [N, K]`; a one-element
    /// vector.
    pub fn kd(s: &[f64], t: &[f64], k: usize, temperature: f64) -> Vec<f64> {
        let n = s.len() / k;
        let mut total = 0.0;
        for (s, t) in s.chunks(k).zip(t.chunks(k)) {
            let (ls, lt) = (log_softmax(s, temperature), log_softmax(t, temperature));
            total += ls.iter().zip(&lt).map(|(a, b)| b.exp() * (b - a)).sum::<f64>();
        }
        vec![temperature * temperature * total / n as f64]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_for_identical_logits_and_errors_on_bad_input() {
        let s = Tensor::from_vec(vec![1.0, -2.0, 0.5, 3.0, 0.0, 1.0], &[2, 3]).unwrap();
        assert!(kd_loss(&s, &s, 4.0).unwrap().item().unwrap().abs() < 1e-6);
        let t = Tensor::zeros(&[2, 4]);
        let msg = kd_loss(&s, &t, 1.0).unwrap_err().to_string();
        assert!(msg.contains("kd_loss") && msg.contains("[2, 4]") && msg.contains("[2, 3]"), "{msg}");
        assert!(kd_loss(&s, &s, 0.0).unwrap_err().to_string().contains("temperature"));
        assert!(kd_loss(&Tensor::zeros(&[0, 3]), &Tensor::zeros(&[0, 3]), 1.0).is_err());
    }
}
