//! ReLU, LeakyReLU and ReLU6, elementwise on a tensor of any shape.
//!
//! `leaky_relu(x, a) = x` where `x > 0` and `a * x` elsewhere; `relu = leaky_relu(., 0)`.
//! Backward: `dx = dy` where `x > 0` and `a * dy` elsewhere (at `x = 0` the left slope, as PyTorch).
//! `relu6(x) = min(max(x, 0), 6)`; backward `dx = dy` where `0 < x < 6`, zero elsewhere (PyTorch's
//! hardtanh rule: no gradient at the kinks).

pub mod gradcheck;
pub mod launch;
pub mod parity;
pub mod reference;

use crate::error::{Error, Result};
use crate::ops::{map_on, map2_on};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// `max(x, 0)` elementwise (NaN stays NaN).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    activate(x, 0.0)
}

/// `x` where `x > 0`, `slope * x` elsewhere; `slope` must be finite (PyTorch's default is 0.01).
pub fn leaky_relu(x: &Tensor, slope: f32) -> Result<Tensor> {
    if !slope.is_finite() {
        return Err(Error::invalid("leaky_relu", format!("slope {slope} is not finite")));
    }
    activate(x, slope)
}

/// `min(max(x, 0), 6)` elementwise (NaN stays NaN), MobileNetV2's activation in torchvision.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    let y = map_on(x, x.shape(), |x| cpu::clamp_forward(x, 6.0), |g, x| launch::clamp_forward(g, 6.0, x))?
        .result_of(&[x]);
    let x = x.clone();
    autograd::record(&y, move |dy, grads| {
        let dx = map2_on(
            "relu6 backward",
            [&x, dy],
            x.shape(),
            |x, dy| cpu::clamp_backward(x, dy, 6.0),
            |g, x, dy| launch::clamp_backward(g, 6.0, x, dy),
        )?;
        grads.accumulate(&x, dx)
    });
    Ok(y)
}

fn activate(x: &Tensor, slope: f32) -> Result<Tensor> {
    let y = map_on(x, x.shape(), |x| cpu::forward(x, slope), |g, x| launch::leaky_relu_forward(g, slope, x))?
        .result_of(&[x]);
    let x = x.clone();
    autograd::record(&y, move |dy, grads| {
        let dx = map2_on(
            "leaky_relu backward",
            [&x, dy],
            x.shape(),
            |x, dy| cpu::backward(x, dy, slope),
            |g, x, dy| launch::leaky_relu_backward(g, slope, x, dy),
        )?;
        grads.accumulate(&x, dx)
    });
    Ok(y)
}

/// The CPU kernels, rayon over fixed-size chunks of elements.
pub(crate) mod cpu {
    use rayon::prelude::*;

    /// Elements per rayon task.
    const CHUNK: usize = 1 << 14;

    /// `y = x` where `x > 0`, `slope * x` elsewhere.
    pub(crate) fn forward(x: &[f32], slope: f32) -> Vec<f32> {
        let mut y = vec![0.0; x.len()];
        y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(y, x)| {
            y.iter_mut().zip(x).for_each(|(y, &v)| *y = if v > 0.0 { v } else { slope * v });
        });
        y
    }

    /// `dx = dy` where `x > 0`, `slope * dy` elsewhere.
    pub(crate) fn backward(x: &[f32], dy: &[f32], slope: f32) -> Vec<f32> {
        let mut dx = vec![0.0; x.len()];
        dx.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).zip(dy.par_chunks(CHUNK)).for_each(
            |((dx, x), dy)| {
                dx.iter_mut()
                    .zip(x)
                    .zip(dy)
                    .for_each(|((d, &v), &g)| *d = if v > 0.0 { g } else { slope * g });
            },
        );
        dx
    }

    /// `y = min(max(x, 0), top)`; NaN stays NaN.
    pub(crate) fn clamp_forward(x: &[f32], top: f32) -> Vec<f32> {
        let mut y = vec![0.0; x.len()];
        y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(y, x)| {
            y.iter_mut().zip(x).for_each(|(y, &v)| {
                *y = if v < 0.0 {
                    0.0
                } else if v > top {
                    top
                } else {
                    v
                }
            });
        });
        y
    }

    /// `dx = dy` where `0 < x < top`, zero elsewhere.
    pub(crate) fn clamp_backward(x: &[f32], dy: &[f32], top: f32) -> Vec<f32> {
        let mut dx = vec![0.0; x.len()];
        dx.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).zip(dy.par_chunks(CHUNK)).for_each(
            |((dx, x), dy)| {
                dx.iter_mut()
                    .zip(x)
                    .zip(dy)
                    .for_each(|((d, &v), &g)| *d = if v > 0.0 && v < top { g } else { 0.0 });
            },
        );
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaky_relu_rejects_non_finite_slope() {
        let x = Tensor::zeros(&[2, 3]);
        let err = leaky_relu(&x, f32::NAN).unwrap_err().to_string();
        assert!(err.starts_with("leaky_relu:"), "{err}");
    }

    #[test]
    fn values_and_gradient_at_the_kink() {
        let x = Tensor::from_vec(vec![-2.0, 0.0, 3.0], &[3]).unwrap().into_param();
        let y = leaky_relu(&x, 0.1).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![-0.2, 0.0, 3.0]);
        let g = autograd::backward_with(&y, Tensor::full(&[3], 1.0)).unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![0.1, 0.1, 1.0]);
        assert_eq!(relu(&x).unwrap().to_vec().unwrap(), vec![0.0, 0.0, 3.0]);
        autograd::clear_tape();
    }

    #[test]
    fn relu6_clamps_and_passes_gradient_strictly_inside() {
        let x = Tensor::from_vec(vec![-1.0, 0.0, 2.5, 6.0, 7.0], &[5]).unwrap().into_param();
        let y = relu6(&x).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![0.0, 0.0, 2.5, 6.0, 6.0]);
        let g = autograd::backward_with(&y, Tensor::full(&[5], 1.0)).unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec().unwrap(), vec![0.0, 0.0, 1.0, 0.0, 0.0]);
        assert!(
            relu6(&Tensor::from_vec(vec![f32::NAN], &[1]).unwrap()).unwrap().to_vec().unwrap()[0].is_nan()
        );
        autograd::clear_tape();
    }
}
