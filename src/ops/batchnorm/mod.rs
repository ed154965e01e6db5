//! Batch normalisation over the channel (last) axis of `x: [N, H, W, C]`, alone or fused with a
//! ReLU and a residual add.
//!
//! Per channel, over its `n = N * H * W` values: in training `mean = sum x / n` and
//! `var = sum (x - mean)^2 / n` (biased); in evaluation the running mean and variance take their
//! place. Then `xhat = (x - mean) / sqrt(var + eps)` and `y = act(gamma * xhat + beta [+ residual])`
//! with `act` the identity or ReLU. The running statistics follow PyTorch:
//! `running = (1 - m) * running + m * stat`, with the unbiased `var * n / (n - 1)` for the variance.
//!
//! Backward, with `dz = dy * act'` (`[y > 0]` for ReLU) and `inv = 1 / sqrt(var + eps)`:
//! `dbeta = sum dz`, `dgamma = sum dz * xhat`, `dresidual = dz`, and
//! `dx = gamma * inv * (dz - dbeta / n - xhat * dgamma / n)` in training (through the batch
//! statistics), `dx = gamma * inv * dz` in evaluation.
//!
//! On the CPU the forward is one statistics pass and one normalise-and-activate pass, the backward
//! one reduction pass (`dbeta`, `dgamma`) and one pass writing `dx` (and `dresidual`). On a device
//! ([`launch`]) each is two launches, the update of the running statistics included; the forward
//! with given statistics (evaluation, or training after a convolution that computed them in its
//! epilogue: [`crate::ops::conv_bn`]) is one.

pub(crate) mod cpu;
pub mod gradcheck;
pub mod launch;
pub mod parity;
mod place;
pub mod reference;
#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::ops::gpu_of;
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// PyTorch's default `eps`.
pub const DEFAULT_EPS: f32 = 1e-5;
/// PyTorch's default momentum of the running statistics.
pub const DEFAULT_MOMENTUM: f32 = 0.1;

/// The statistics of one training batch, per channel.
#[derive(Clone, Debug)]
pub struct BatchStats {
    /// The mean over `N, H, W`, shape `[C]`.
    pub mean: Tensor,
    /// The biased variance (sum of squared deviations over the count), shape `[C]`.
    pub var_biased: Tensor,
    /// Values per channel, `N * H * W`.
    pub count: usize,
}

/// What follows the normalisation: nothing, a ReLU, or a residual add (`residual` has the shape
/// of `x`) and a ReLU.
#[derive(Clone, Copy, Debug)]
pub enum After<'a> {
    /// Nothing.
    Identity,
    /// ReLU.
    Relu,
    /// Add a residual, then ReLU.
    AddRelu(&'a Tensor),
}

impl<'a> After<'a> {
    /// The op's name in errors, by mode: `batch_norm[_relu|_add_relu]_{train,eval}`.
    pub(crate) fn op(self, train: bool) -> &'static str {
        match (self, train) {
            (After::Identity, true) => "batch_norm_train",
            (After::Relu, true) => "batch_norm_relu_train",
            (After::AddRelu(_), true) => "batch_norm_add_relu_train",
            (After::Identity, false) => "batch_norm_eval",
            (After::Relu, false) => "batch_norm_relu_eval",
            (After::AddRelu(_), false) => "batch_norm_add_relu_eval",
        }
    }

    /// The residual, if any.
    pub(crate) fn residual(self) -> Option<&'a Tensor> {
        match self {
            After::AddRelu(r) => Some(r),
            After::Identity | After::Relu => None,
        }
    }
}

/// The running statistics (`[C]` each) that a training-mode normalisation folds its batch
/// statistics into, in place, PyTorch's way: `running = (1 - momentum) * running + momentum * stat`,
/// the variance unbiased by `n / (n - 1)`.
pub struct RunningStats<'a> {
    /// The running mean.
    pub mean: &'a mut Tensor,
    /// The running (unbiased) variance.
    pub var: &'a mut Tensor,
    /// The weight of the batch's statistics, in `[0, 1]`.
    pub momentum: f32,
}

/// Batch norm with batch statistics (training mode), then `after`, as one op; also returns the
/// statistics, and folds them into `running` when it is given.
pub fn batch_norm_train(
    x: &Tensor,
    after: After,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    running: Option<RunningStats<'_>>,
) -> Result<(Tensor, BatchStats)> {
    Norm::new(after.op(true), x, after, gamma, beta, eps)?.train(running)
}

/// [`batch_norm_train`] with the batch statistics of `x` already computed, on a device by the
/// convolution that produced `x` (its epilogue), so that one launch normalises and updates
/// `running`. The gradients are those of [`batch_norm_train`] (they flow through the statistics).
/// On the CPU the statistics are computed again, in the same way.
pub(crate) fn batch_norm_train_given(
    x: &Tensor,
    stats: &BatchStats,
    after: After,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    running: Option<RunningStats<'_>>,
) -> Result<Tensor> {
    let norm = Norm::new(after.op(true), x, after, gamma, beta, eps)?;
    stats.mean.expect_shape(norm.op, "batch mean", &[Some(norm.c)])?;
    stats.var_biased.expect_shape(norm.op, "batch variance", &[Some(norm.c)])?;
    if stats.count != x.numel() / norm.c {
        return Err(Error::shape(
            norm.op,
            format!("statistics of {} values per channel for input {:?}", stats.count, x.shape()),
        ));
    }
    match norm.gpu()? {
        Some(gpu) if stats.mean.gpu().is_some() => {
            norm.check_train(running.as_ref())?;
            place::train_given(norm, &gpu, stats, running)
        }
        _ => Ok(norm.train(running)?.0),
    }
}

/// Batch norm with the running statistics (evaluation mode), then `after`, as one op; gradients
/// reach `x`, `gamma`, `beta` (and the residual).
pub fn batch_norm_eval(
    x: &Tensor,
    after: After,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    Norm::new(after.op(false), x, after, gamma, beta, eps)?.eval(running_mean, running_var)
}

/// Checks what a normalisation of an input shaped `shape` (`[N, H, W, C]`, not empty) applies:
/// `gamma` and `beta` of `[C]`, a residual shaped like the input, a positive finite `eps`; returns
/// `C`.
pub(crate) fn check_affine(
    op: &'static str,
    shape: &[usize],
    after: After,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<usize> {
    if shape.len() != 4 || shape.contains(&0) {
        return Err(Error::shape(op, format!("input {shape:?} must be a non-empty [N, H, W, C]")));
    }
    let c = shape[3];
    gamma.expect_shape(op, "gamma", &[Some(c)])?;
    beta.expect_shape(op, "beta", &[Some(c)])?;
    if let Some(r) = after.residual().filter(|r| r.shape() != shape) {
        return Err(Error::shape(op, format!("residual {:?} differs from input {shape:?}", r.shape())));
    }
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(Error::invalid(op, format!("eps {eps} must be positive and finite")));
    }
    Ok(c)
}

/// The checked inputs of one normalisation.
struct Norm<'a> {
    op: &'static str,
    x: &'a Tensor,
    residual: Option<&'a Tensor>,
    relu: bool,
    gamma: &'a Tensor,
    beta: &'a Tensor,
    eps: f32,
    c: usize,
}

impl<'a> Norm<'a> {
    fn new(
        op: &'static str,
        x: &'a Tensor,
        after: After<'a>,
        gamma: &'a Tensor,
        beta: &'a Tensor,
        eps: f32,
    ) -> Result<Self> {
        let c = check_affine(op, x.shape(), after, gamma, beta, eps)?;
        let (residual, relu) = (after.residual(), !matches!(after, After::Identity));
        Ok(Norm { op, x, residual, relu, gamma, beta, eps, c })
    }

    /// The device of the inputs, if they are on one.
    fn gpu(&self) -> Result<Option<std::sync::Arc<crate::cuda::gpu::Gpu>>> {
        let mut inputs = vec![self.x, self.gamma, self.beta];
        inputs.extend(self.residual);
        gpu_of(self.op, &inputs)
    }

    /// Checks the running statistics a training step updates: their shapes, device and momentum.
    fn check_running(&self, r: &RunningStats<'_>) -> Result<()> {
        r.mean.expect_shape(self.op, "running mean", &[Some(self.c)])?;
        r.var.expect_shape(self.op, "running variance", &[Some(self.c)])?;
        gpu_of(self.op, &[self.x, r.mean, r.var])?;
        if !(0.0..=1.0).contains(&r.momentum) {
            return Err(Error::invalid(self.op, format!("momentum {} is outside [0, 1]", r.momentum)));
        }
        Ok(())
    }

    /// Checks a training-mode normalisation: more than one value per channel, and `running`.
    fn check_train(&self, running: Option<&RunningStats<'_>>) -> Result<()> {
        if self.x.numel() / self.c < 2 {
            return Err(Error::shape(
                self.op,
                format!("input {:?} has one value per channel; training needs more", self.x.shape()),
            ));
        }
        running.map_or(Ok(()), |r| self.check_running(r))
    }

    fn train(self, running: Option<RunningStats<'_>>) -> Result<(Tensor, BatchStats)> {
        let n = self.x.numel() / self.c;
        self.check_train(running.as_ref())?;
        if let Some(gpu) = self.gpu()? {
            return place::train(self, &gpu, running);
        }
        let (mean, var) = cpu::stats(self.x.host()?, self.c);
        if let Some(r) = running {
            cpu::update_running([r.mean.host_mut()?, r.var.host_mut()?], [&mean, &var], n, r.momentum);
        }
        let inv_std = var.iter().map(|v| 1.0 / (v + self.eps).sqrt()).collect();
        let stats = BatchStats {
            mean: Tensor::new_cpu(mean.clone(), &[self.c], false),
            var_biased: Tensor::new_cpu(var, &[self.c], false),
            count: n,
        };
        Ok((self.apply(mean, inv_std, true)?, stats))
    }

    fn eval(self, running_mean: &Tensor, running_var: &Tensor) -> Result<Tensor> {
        running_mean.expect_shape(self.op, "running mean", &[Some(self.c)])?;
        running_var.expect_shape(self.op, "running variance", &[Some(self.c)])?;
        if let Some(gpu) = self.gpu()? {
            gpu_of(self.op, &[self.x, running_mean, running_var])?;
            return place::eval(self, &gpu, running_mean, running_var);
        }
        if running_var.host()?.iter().any(|v| v.is_nan() || *v < 0.0) {
            return Err(Error::invalid(self.op, "running variance has a negative or NaN entry"));
        }
        let inv_std = running_var.host()?.iter().map(|v| 1.0 / (v + self.eps).sqrt()).collect();
        self.apply(running_mean.to_vec()?, inv_std, false)
    }

    /// Normalises with `center` and `inv_std` and records the backward rule; `training` says
    /// whether `center` and `inv_std` are statistics of `x` (and so carry gradient).
    fn apply(self, center: Vec<f32>, inv_std: Vec<f32>, training: bool) -> Result<Tensor> {
        let Norm { x, residual, relu, gamma, beta, c, .. } = self;
        let scale: Vec<f32> = gamma.host()?.iter().zip(&inv_std).map(|(g, i)| g * i).collect();
        let y = cpu::forward(
            x.host()?,
            c,
            &center,
            &scale,
            beta.host()?,
            residual.map(Tensor::host).transpose()?,
            relu,
        );
        let mut inputs = vec![x, gamma, beta];
        inputs.extend(residual);
        let y = Tensor::from_op(y, x.shape(), &inputs);
        let out = relu.then(|| y.clone());
        let (x, gamma, beta, residual) = (x.clone(), gamma.clone(), beta.clone(), residual.cloned());
        autograd::record(&y, move |dy, grads| {
            let n = (x.numel() / c) as f64;
            let out = out.as_ref().map(Tensor::host).transpose()?;
            let want_dz = residual.as_ref().is_some_and(Tensor::requires_grad);
            let need_sums = gamma.requires_grad() || beta.requires_grad() || (training && x.requires_grad());
            let (sum_dz, sum_dz_xc) = if need_sums {
                cpu::backward_sums(x.host()?, dy.host()?, out, c, &center)
            } else {
                (vec![0.0; c], vec![0.0; c])
            };
            let dgamma = sum_dz_xc.iter().zip(&inv_std).map(|(s, &i)| (s * i as f64) as f32).collect();
            grads.accumulate(&gamma, Tensor::new_cpu(dgamma, &[c], false))?;
            let dbeta = sum_dz.iter().map(|&s| s as f32).collect();
            grads.accumulate(&beta, Tensor::new_cpu(dbeta, &[c], false))?;
            if !x.requires_grad() && !want_dz {
                return Ok(());
            }
            let (k_mean, k_x) = if training {
                let k_mean = sum_dz.iter().map(|s| (s / n) as f32).collect();
                let k_x = sum_dz_xc.iter().zip(&inv_std).map(|(s, &i)| (s / n * (i as f64).powi(2)) as f32);
                (k_mean, k_x.collect())
            } else {
                (vec![0.0; c], vec![0.0; c])
            };
            let k = cpu::DxCoefficients { center: &center, scale: &scale, k_mean: &k_mean, k_x: &k_x };
            let (dx, dz) = cpu::backward_data(x.host()?, dy.host()?, out, c, &k, want_dz);
            grads.accumulate(&x, Tensor::new_cpu(dx, x.shape(), false))?;
            if let (Some(r), Some(dz)) = (&residual, dz) {
                grads.accumulate(r, Tensor::new_cpu(dz, r.shape(), false))?;
            }
            Ok(())
        });
        Ok(y)
    }
}
