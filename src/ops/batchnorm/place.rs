//! Batch normalisation on a device: the kernels of `kernels/batchnorm.cu` through
//! [`super::launch`], with the formulas of the module docs. The statistics, the running
//! statistics and every gradient stay on the device.

use std::sync::Arc;

use super::launch::{self as kernels, BnAffine, BnBackward, BnInput, Running};
use super::{BatchStats, Norm, RunningStats};
use crate::cuda::gpu::{Gpu, GpuBuf};
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// The launchers' view of `norm`.
fn input<'a>(norm: &Norm<'a>) -> Result<BnInput<'a, GpuBuf<f32>>> {
    Ok(BnInput {
        x: norm.x.gpu_buf()?,
        affine: BnAffine {
            gamma: norm.gamma.gpu_buf()?,
            beta: norm.beta.gpu_buf()?,
            eps: norm.eps,
            residual: norm.residual.map(Tensor::gpu_buf).transpose()?,
            relu: norm.relu,
        },
    })
}

/// The device buffers of `running`.
fn running_bufs<'a>(running: Option<RunningStats<'a>>) -> Result<Option<Running<'a, GpuBuf<f32>>>> {
    let Some(r) = running else { return Ok(None) };
    let ((mean, _), (var, _)) = (r.mean.gpu_mut()?, r.var.gpu_mut()?);
    Ok(Some(Running { mean, var, momentum: r.momentum }))
}

/// Training mode: batch statistics, the normalisation and the update of `running` (two launches),
/// with the backward recorded.
pub(super) fn train(
    norm: Norm<'_>,
    gpu: &Arc<Gpu>,
    running: Option<RunningStats<'_>>,
) -> Result<(Tensor, BatchStats)> {
    let (c, rows) = (norm.c, norm.x.numel() / norm.c);
    let out = kernels::bn_forward_train(&**gpu, [rows, c], &input(&norm)?, running_bufs(running)?)?;
    let (mean, var) =
        (Tensor::new_gpu(out.mean, gpu, &[c], false), Tensor::new_gpu(out.var, gpu, &[c], false));
    let y = record(norm, gpu, out.y, &mean, &var, true)?;
    Ok((y, BatchStats { mean, var_biased: var, count: rows }))
}

/// Training mode with the batch statistics `stats` of `x` computed before (by the convolution
/// that produced `x`): the normalisation and the update of `running` (one launch), with the
/// backward recorded.
pub(super) fn train_given(
    norm: Norm<'_>,
    gpu: &Arc<Gpu>,
    stats: &BatchStats,
    running: Option<RunningStats<'_>>,
) -> Result<Tensor> {
    let (c, rows) = (norm.c, norm.x.numel() / norm.c);
    let running = running_bufs(running)?;
    let given = [stats.mean.gpu_buf()?, stats.var_biased.gpu_buf()?];
    let y = kernels::bn_forward(&**gpu, [rows, c], &input(&norm)?, given, running)?;
    record(norm, gpu, y, &stats.mean, &stats.var_biased, true)
}

/// Evaluation mode: the running statistics (one launch).
pub(super) fn eval(
    norm: Norm<'_>,
    gpu: &Arc<Gpu>,
    running_mean: &Tensor,
    running_var: &Tensor,
) -> Result<Tensor> {
    let (c, rows) = (norm.c, norm.x.numel() / norm.c);
    let stats = [running_mean.gpu_buf()?, running_var.gpu_buf()?];
    let y = kernels::bn_forward(&**gpu, [rows, c], &input(&norm)?, stats, None)?;
    record(norm, gpu, y, running_mean, running_var, false)
}

/// The output `y` of `norm` with `center` and `var`, with its backward recorded; `training` says
/// whether `center` and `var` are statistics of `x`.
fn record(
    norm: Norm<'_>,
    gpu: &Arc<Gpu>,
    y: GpuBuf<f32>,
    center: &Tensor,
    var: &Tensor,
    training: bool,
) -> Result<Tensor> {
    let Norm { x, residual, relu, gamma, beta, eps, c, .. } = norm;
    let rows = x.numel() / c;
    let mut inputs = vec![x, gamma, beta];
    inputs.extend(residual);
    let y = Tensor::new_gpu(y, gpu, x.shape(), false).result_of(&inputs);
    let out = relu.then(|| y.clone());
    let (x, gamma, beta, residual) = (x.clone(), gamma.clone(), beta.clone(), residual.cloned());
    let (center, var, gpu) = (center.clone(), var.clone(), Arc::clone(gpu));
    autograd::record(&y, move |dy, grads| {
        let want_dz = residual.as_ref().is_some_and(Tensor::requires_grad);
        let b = BnBackward {
            x: x.gpu_buf()?,
            dy: dy.gpu_buf()?,
            relu_out: out.as_ref().map(Tensor::gpu_buf).transpose()?,
            center: center.gpu_buf()?,
            var: var.gpu_buf()?,
            gamma: gamma.gpu_buf()?,
            eps,
            training,
            want_dz,
        };
        let g = kernels::bn_backward(&*gpu, [rows, c], &b)?;
        grads.accumulate(&gamma, Tensor::new_gpu(g.dgamma, &gpu, &[c], false))?;
        grads.accumulate(&beta, Tensor::new_gpu(g.dbeta, &gpu, &[c], false))?;
        grads.accumulate(&x, Tensor::new_gpu(g.dx, &gpu, x.shape(), false))?;
        if let (Some(r), Some(dz)) = (&residual, g.dz) {
            grads.accumulate(r, Tensor::new_gpu(dz, &gpu, r.shape(), false))?;
        }
        Ok(())
    });
    Ok(y)
}
