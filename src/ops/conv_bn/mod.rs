//! A convolution (no bias) followed by batch norm and what comes after it, as one op: the layers'
//! `bn(conv(x))` pattern. The values and gradients are those of [`conv2d`] then
//! [`batch_norm_train`] or [`batch_norm_eval`]; on the CPU it is exactly that composition.
//!
//! On a device the composition takes fewer launches. In training, the convolution's epilogue
//! computes the batch statistics of its output (each output tile's per-channel sum and sum of
//! squared deviations from the tile's mean, merged by the last tile of each column with Chan's
//! parallel formula), so the normalisation that follows is one launch that also updates the
//! running statistics: 2 launches instead of 3. In evaluation with no gradient to record (a frozen
//! teacher), the normalisation, residual add and ReLU are the convolution's epilogue, the same
//! operations in the same order as the separate kernels: 1 launch instead of 2. The convolution
//! takes its operands at the current [`precision`]: on a device at TF32 or bf16 both fused kernels
//! run on tensor cores.

#[cfg(all(test, feature = "cuda-emulation"))]
mod tests;

use crate::error::Result;
use crate::ops::batchnorm::launch::BnAffine;
use crate::ops::batchnorm::{self, After, BatchStats, RunningStats, batch_norm_eval, batch_norm_train};
use crate::ops::conv2d::launch::{conv2d_forward_bn, conv2d_forward_stats};
use crate::ops::conv2d::tensor_core::{conv2d_forward_bn_tc, conv2d_forward_stats_tc};
use crate::ops::conv2d::{ConvGeometry, conv2d, operand, with_backward};
use crate::ops::gpu_of;
use crate::ops::precision::{self, Precision};
use crate::tensor::{Tensor, autograd};

/// The convolution of a layer: weight `[C_out, C_in, KH, KW]`, stride and zero padding.
#[derive(Clone, Copy, Debug)]
pub struct Conv<'a> {
    /// The weight.
    pub weight: &'a Tensor,
    /// Stride, both directions.
    pub stride: usize,
    /// Zero padding, both directions.
    pub pad: usize,
}

/// The batch norm of a layer: scale and shift `[C_out]`, `eps`, and what follows it.
#[derive(Clone, Copy, Debug)]
pub struct Norm<'a> {
    /// The scale, gamma.
    pub gamma: &'a Tensor,
    /// The shift, beta.
    pub beta: &'a Tensor,
    /// Added to the variance before the square root.
    pub eps: f32,
    /// What follows the normalisation.
    pub after: After<'a>,
}

/// `after(batch_norm_train(conv2d(x, w)))`: batch statistics, folded into `running` when given.
pub fn conv2d_batch_norm_train(
    x: &Tensor,
    conv: Conv<'_>,
    norm: Norm<'_>,
    running: Option<RunningStats<'_>>,
) -> Result<Tensor> {
    let op = norm.after.op(true);
    let Some(gpu) = gpu_of(op, &[x, conv.weight])? else {
        let z = conv2d(x, conv.weight, None, conv.stride, conv.pad)?;
        return Ok(batch_norm_train(&z, norm.after, norm.gamma, norm.beta, norm.eps, running)?.0);
    };
    let g = ConvGeometry::new(op, x.shape(), conv.weight.shape(), conv.stride, conv.pad)?;
    let p = precision::current();
    let operands = [operand(p, x)?, operand(p, conv.weight)?];
    let bufs = [operands[0].gpu_buf()?, operands[1].gpu_buf()?];
    let out = match p {
        Precision::Fp32 => conv2d_forward_stats(&*gpu, &g, bufs)?,
        _ => conv2d_forward_stats_tc(&*gpu, &g, p, bufs)?,
    };
    let z = Tensor::new_gpu(out.y, &gpu, &[g.n, g.h_out, g.w_out, g.c_out], false);
    let z = with_backward(g, p, z, [x, conv.weight], operands, None);
    let stats = BatchStats {
        mean: Tensor::new_gpu(out.mean, &gpu, &[g.c_out], false),
        var_biased: Tensor::new_gpu(out.var, &gpu, &[g.c_out], false),
        count: g.n * g.h_out * g.w_out,
    };
    batchnorm::batch_norm_train_given(&z, &stats, norm.after, norm.gamma, norm.beta, norm.eps, running)
}

/// `after(batch_norm_eval(conv2d(x, w)))` with the given (running) statistics `[mean, var]`.
pub fn conv2d_batch_norm_eval(
    x: &Tensor,
    conv: Conv<'_>,
    norm: Norm<'_>,
    [mean, var]: [&Tensor; 2],
) -> Result<Tensor> {
    let op = norm.after.op(false);
    let residual = norm.after.residual();
    let mut inputs = vec![x, conv.weight, norm.gamma, norm.beta];
    inputs.extend(residual);
    let recording = autograd::is_recording() && inputs.iter().any(|t| t.requires_grad());
    let gpu = gpu_of(op, &inputs)?;
    let Some(gpu) = gpu.filter(|_| !recording) else {
        let z = conv2d(x, conv.weight, None, conv.stride, conv.pad)?;
        return batch_norm_eval(&z, norm.after, norm.gamma, norm.beta, mean, var, norm.eps);
    };
    let g = ConvGeometry::new(op, x.shape(), conv.weight.shape(), conv.stride, conv.pad)?;
    let shape = [g.n, g.h_out, g.w_out, g.c_out];
    batchnorm::check_affine(op, &shape, norm.after, norm.gamma, norm.beta, norm.eps)?;
    mean.expect_shape(op, "running mean", &[Some(g.c_out)])?;
    var.expect_shape(op, "running variance", &[Some(g.c_out)])?;
    gpu_of(op, &[x, mean, var])?;
    let affine = BnAffine {
        gamma: norm.gamma.gpu_buf()?,
        beta: norm.beta.gpu_buf()?,
        eps: norm.eps,
        residual: residual.map(Tensor::gpu_buf).transpose()?,
        relu: !matches!(norm.after, After::Identity),
    };
    let p = precision::current();
    let (xr, wr) = (operand(p, x)?, operand(p, conv.weight)?);
    let (bufs, stats) = ([xr.gpu_buf()?, wr.gpu_buf()?], [mean.gpu_buf()?, var.gpu_buf()?]);
    let y = match p {
        Precision::Fp32 => conv2d_forward_bn(&*gpu, &g, bufs, &affine, stats)?,
        _ => conv2d_forward_bn_tc(&*gpu, &g, p, bufs, &affine, stats)?,
    };
    Ok(Tensor::new_gpu(y, &gpu, &shape, false))
}
