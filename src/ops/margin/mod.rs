//! The margin ReLU of Overhaul feature distillation (Heo et al., ICCV 2019): the teacher's
//! pre-ReLU feature `x: [..., C]` (channels last) becomes `y = max(x, m[c])` per channel `c`.
//!
//! The margin is the expectation of the teacher's negative responses, computed on the host from
//! the batch norm that produces the feature ([`bn_margin`]). Backward: `dx = dy * [x > m]`; the
//! margin is a constant and receives no gradient.

pub mod gradcheck;
pub mod launch;
pub mod parity;
pub mod reference;

use crate::error::{Error, Result};
use crate::ops::{gpu_of, map2_on};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// Below this probability of a negative response the margin is `-3 |gamma|` (the original code's
/// cut-off).
pub const MIN_NEGATIVE_MASS: f64 = 0.001;

/// The standard normal distribution function `Phi(x) = erfc(-x / sqrt 2) / 2`, through the
/// Chebyshev fit of `erfc` in Numerical Recipes (`erfcc`, fractional error below 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let z = (-x / std::f64::consts::SQRT_2).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ]
    .iter()
    .rev()
    .fold(0.0, |acc, &c| c + t * acc);
    let erfc = t * (-z * z + poly).exp();
    0.5 * if -x >= 0.0 { erfc } else { 2.0 - erfc }
}

/// The margin of one channel whose batch norm has scale `gamma` and shift `beta`: under the
/// assumption that its output is N(beta, gamma^2), `m = E[x | x < 0] = beta - |gamma| *
/// phi(beta / |gamma|) / Phi(-beta / |gamma|)` when `Phi(-beta / |gamma|) > 0.001`, else
/// `-3 |gamma|`. This is `get_margin_from_BN` of the authors' code
/// (clovaai/overhaul-distillation, `CIFAR-100/distiller.py`), which also takes `|gamma|`. A
/// channel with `gamma = 0` is the constant `beta`: its margin is `min(beta, 0)` (the limit the
/// original's arithmetic reaches).
pub fn channel_margin(gamma: f64, beta: f64) -> f64 {
    let s = gamma.abs();
    if s == 0.0 {
        return beta.min(0.0);
    }
    let mass = normal_cdf(-beta / s);
    if mass > MIN_NEGATIVE_MASS {
        let density = (-(beta / s).powi(2) / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        beta - s * density / mass
    } else {
        -3.0 * s
    }
}

/// The per-channel margins of a batch norm with scale `gamma` and shift `beta` (both `[C]`, on
/// any device), as a `[C]` tensor on the host ([`channel_margin`] of each channel).
pub fn bn_margin(gamma: &Tensor, beta: &Tensor) -> Result<Tensor> {
    const OP: &str = "bn_margin";
    if gamma.rank() != 1 || gamma.shape() != beta.shape() || gamma.numel() == 0 {
        return Err(Error::shape(
            OP,
            format!("gamma {:?} and beta {:?} must be the same non-empty [C]", gamma.shape(), beta.shape()),
        ));
    }
    let (g, b) = (gamma.to_vec()?, beta.to_vec()?);
    let m = g.iter().zip(&b).map(|(&g, &b)| channel_margin(g as f64, b as f64) as f32).collect();
    Tensor::from_vec(m, gamma.shape())
}

/// `max(x, margin[c])` over the channels (last axis) of `x`; `margin: [C]` on `x`'s device.
pub fn margin_relu(x: &Tensor, margin: &Tensor) -> Result<Tensor> {
    const OP: &str = "margin_relu";
    let c = x.shape().last().copied().unwrap_or(0);
    if x.numel() == 0 || margin.shape() != [c] {
        return Err(Error::shape(
            OP,
            format!(
                "input {:?} must be non-empty with its last axis the margin's {:?}",
                x.shape(),
                margin.shape()
            ),
        ));
    }
    let dims = [x.numel() / c, c];
    let y = map2_on(OP, [x, margin], x.shape(), cpu::forward, |g, x, m| {
        launch::margin_relu_forward(g, dims, x, m)
    })?
    .result_of(&[x]);
    let (x, margin) = (x.clone(), margin.clone());
    autograd::record(&y, move |dy, grads| {
        let dx = match gpu_of(OP, &[&x, &margin, dy])? {
            Some(gpu) => {
                let bufs = [x.gpu_buf()?, margin.gpu_buf()?, dy.gpu_buf()?];
                Tensor::new_gpu(launch::margin_relu_backward(&*gpu, dims, bufs)?, &gpu, x.shape(), false)
            }
            None => Tensor::new_cpu(cpu::backward(x.host()?, margin.host()?, dy.host()?), x.shape(), false),
        };
        grads.accumulate(&x, dx)
    });
    Ok(y)
}

/// The CPU kernels over rows of `C` channels.
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Elements a rayon task handles.
    const CHUNK: usize = 1 << 14;

    /// `y = max(x, m[c])`.
    pub(crate) fn forward(x: &[f32], m: &[f32]) -> Vec<f32> {
        let c = m.len();
        let mut y = vec![0.0; x.len()];
        y.par_chunks_mut(CHUNK * c).zip(x.par_chunks(CHUNK * c)).for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
                y.iter_mut().zip(x).zip(m).for_each(|((y, &x), &m)| *y = x.max(m));
            }
        });
        y
    }

    /// `dx = dy` where `x > m[c]`, else 0.
    pub(crate) fn backward(x: &[f32], m: &[f32], dy: &[f32]) -> Vec<f32> {
        let c = m.len();
        let mut dx = vec![0.0; x.len()];
        dx.par_chunks_mut(CHUNK * c).zip(x.par_chunks(CHUNK * c)).zip(dy.par_chunks(CHUNK * c)).for_each(
            |((dx, x), dy)| {
                for ((d, &x), (&g, &m)) in dx.iter_mut().zip(x).zip(dy.iter().zip(m.iter().cycle())) {
                    *d = if x > m { g } else { 0.0 };
                }
            },
        );
        dx
    }
}

#[cfg(test)]
mod tests;
