//! Batch normalisation on a device: the kernels of `kernels/batchnorm.cu` through
//! [`super::launch`], with the formulas of the module docs. The statistics, the
//! per-channel scale and every gradient stay on the device.

use std::sync::Arc;

use super::launch::{self as kernels, Affine, BnBackward};
use super::{BatchStats, Norm, RunningStats};
use crate::cuda::gpu::Gpu;
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// Training mode: batch statistics, folded into `running` when it is given, then the
/// normalisation, with its backward recorded.
pub(super) fn train(
    norm: Norm<'_>,
    gpu: &Arc<Gpu>,
    running: Option<RunningStats<'_>>,
) -> Result<(Tensor, BatchStats)> {
    let (c, rows) = (norm.c, norm.x.numel() / norm.c);
    let (mean, var) = kernels::bn_stats(&**gpu, rows, c, norm.x.gpu_buf()?)?;
    if let Some(r) = running {
        let ((rm, _), (rv, _)) = (r.mean.gpu_mut()?, r.var.gpu_mut()?);
        kernels::bn_running_update(&**gpu, r.momentum, rows, [&mean, &var], rm, rv)?;
    }
    let (mean, var) = (Tensor::new_gpu(mean, gpu, &[c], false), Tensor::new_gpu(var, gpu, &[c], false));
    let y = apply(norm, gpu, &mean, &var, true)?;
    Ok((y, BatchStats { mean, var_biased: var, count: rows }))
}

/// Evaluation mode: the running statistics.
pub(super) fn eval(
    norm: Norm<'_>,
    gpu: &Arc<Gpu>,
    running_mean: &Tensor,
    running_var: &Tensor,
) -> Result<Tensor> {
    apply(norm, gpu, running_mean, running_var, false)
}

/// `act((x - center) * gamma / sqrt(var + eps) + beta [+ residual])`, and its backward;
/// `training` says whether `center` and `var` are statistics of `x`.
fn apply(norm: Norm<'_>, gpu: &Arc<Gpu>, center: &Tensor, var: &Tensor, training: bool) -> Result<Tensor> {
    let Norm { x, residual, relu, gamma, beta, eps, c, .. } = norm;
    let rows = x.numel() / c;
    let scale = kernels::bn_scale(&**gpu, c, eps, gamma.gpu_buf()?, var.gpu_buf()?)?;
    let scale = Tensor::new_gpu(scale, gpu, &[c], false);
    let affine = Affine { center: center.gpu_buf()?, scale: scale.gpu_buf()?, beta: beta.gpu_buf()? };
    let r = residual.map(Tensor::gpu_buf).transpose()?;
    let y = kernels::bn_forward(&**gpu, [rows, c], relu, x.gpu_buf()?, &affine, r)?;
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
            affine: Affine { center: center.gpu_buf()?, scale: scale.gpu_buf()?, beta: beta.gpu_buf()? },
            var: var.gpu_buf()?,
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
