//! The three products of a convolution and its bias terms, run where their operands are: the
//! rayon path ([`super::cpu`]) for host tensors, the kernels of `kernels/conv2d.cu` through
//! [`super::launch`] for tensors on a device. Results carry no gradient.

use std::sync::Arc;

use super::launch::{self as kernels, ConvProduct};
use super::{ConvGeometry, cpu, tensor_core};
use crate::cpu::reduce::column_sums;
use crate::cuda::exec::Exec;
use crate::cuda::gpu::GpuBuf;
use crate::error::Result;
use crate::ops::batchnorm::launch::{BnAffine, BnInput, bn_forward};
use crate::ops::gpu_of;
use crate::ops::precision::Precision;
use crate::tensor::Tensor;
use crate::tensor::autograd::add_grads;

/// `product` of the convolution of geometry `g` on its two operands (and the bias, forward only),
/// shaped `shape`; on a device at precision `p` = TF32 or bf16 by the tensor-core kernels (which
/// round their operands), at fp32 by the fp32 kernels.
pub(super) fn product(
    g: &ConvGeometry,
    p: Precision,
    product: ConvProduct,
    [a, b]: [&Tensor; 2],
    bias: Option<&Tensor>,
    shape: &[usize],
) -> Result<Tensor> {
    match gpu_of("conv2d", &[a, b])? {
        Some(gpu) => {
            let bias = bias.map(Tensor::gpu_buf).transpose()?;
            let bufs = [a.gpu_buf()?, b.gpu_buf()?];
            let y = match p {
                Precision::Fp32 => kernels::conv2d(&*gpu, g, product, bufs, bias)?,
                _ => tensor_core::conv2d_tc(&*gpu, g, p, product, bufs, bias)?,
            };
            Ok(Tensor::new_gpu(y, &gpu, shape, false))
        }
        None => {
            let (a, b) = (a.host()?, b.host()?);
            let y = match product {
                ConvProduct::Forward => cpu::forward(g, a, b, bias.map(Tensor::host).transpose()?),
                ConvProduct::BackwardData => cpu::backward_data(g, a, b),
                ConvProduct::BackwardWeight => cpu::backward_weight(g, a, b),
            };
            Ok(Tensor::new_cpu(y, shape, false))
        }
    }
}

/// The gradient of the convolution's input so far, `acc` (when one reached it already), plus the
/// data gradient from `[dy, w]`, shaped `shape`. On a device, when no other tensor holds `acc`'s
/// buffer, the kernel adds into it in place: no new buffer and no second launch. Otherwise the
/// product is added as [`Gradients::accumulate`](crate::tensor::autograd::Gradients::accumulate)
/// adds it. The same values either way.
pub(super) fn backward_data_added(
    g: &ConvGeometry,
    p: Precision,
    [dy, w]: [&Tensor; 2],
    acc: Option<Tensor>,
    shape: &[usize],
) -> Result<Tensor> {
    let Some(mut acc) = acc else { return product(g, p, ConvProduct::BackwardData, [dy, w], None, shape) };
    let gpu = gpu_of("conv2d", &[dy, w])?;
    let in_place = match (gpu, acc.gpu_mut_unshared()) {
        (Some(gpu), Some((buf, acc_gpu))) if Arc::ptr_eq(&gpu, acc_gpu) => {
            let bufs = [dy.gpu_buf()?, w.gpu_buf()?];
            match p {
                Precision::Fp32 => kernels::conv2d_backward_data_into(&*gpu, g, bufs, buf)?,
                _ => tensor_core::conv2d_backward_data_into_tc(&*gpu, g, p, bufs, buf)?,
            }
            true
        }
        _ => false,
    };
    if in_place {
        return Ok(acc);
    }
    add_grads(acc, &product(g, p, ConvProduct::BackwardData, [dy, w], None, shape)?)
}

/// Both gradients of the convolution from `[x, dy, w]`: the input's gradient so far `acc` plus
/// the data gradient ([`backward_data_added`], shaped like `x`), and the weight gradient (shaped
/// like `w`). On a device both come from one launch (the fp32 kernel, or the tensor-core one at
/// TF32 and bf16), adding into `acc` in place when no other tensor holds it.
pub(super) fn gradients(
    g: &ConvGeometry,
    p: Precision,
    [x, dy, w]: [&Tensor; 3],
    acc: Option<Tensor>,
) -> Result<(Tensor, Tensor)> {
    let Some(gpu) = gpu_of("conv2d", &[x, dy, w])? else {
        let dx = backward_data_added(g, p, [dy, w], acc, x.shape())?;
        return Ok((dx, product(g, p, ConvProduct::BackwardWeight, [x, dy], None, w.shape())?));
    };
    let bufs = [x.gpu_buf()?, dy.gpu_buf()?, w.gpu_buf()?];
    let both = |dx: &mut GpuBuf<f32>, accumulate: bool| match p {
        Precision::Fp32 => kernels::conv2d_backward(&*gpu, g, bufs, dx, accumulate),
        _ => tensor_core::conv2d_backward_tc(&*gpu, g, p, bufs, dx, accumulate),
    };
    let weight_grad = |dw| Tensor::new_gpu(dw, &gpu, w.shape(), false);
    let fresh = || -> Result<(Tensor, Tensor)> {
        let mut dx = gpu.alloc(g.n * g.in_image_len())?;
        let dw = both(&mut dx, false)?;
        Ok((Tensor::new_gpu(dx, &gpu, x.shape(), false), weight_grad(dw)))
    };
    let Some(mut acc) = acc else { return fresh() };
    if let Some((buf, acc_gpu)) = acc.gpu_mut_unshared()
        && Arc::ptr_eq(&gpu, acc_gpu)
    {
        let dw = both(buf, true)?;
        return Ok((acc, weight_grad(dw)));
    }
    let (dx, dw) = fresh()?;
    Ok((add_grads(acc, &dx)?, dw))
}

/// The bias gradient: `dy` summed over everything but its last dimension of `channels`.
pub(super) fn bias_grad(channels: usize, dy: &Tensor) -> Result<Tensor> {
    match dy.gpu() {
        Some((buf, gpu)) => {
            let db =
                crate::cuda::launch::builtin::column_sums(&**gpu, dy.numel() / channels, channels, 1.0, buf)?;
            Ok(Tensor::new_gpu(db, gpu, &[channels], false))
        }
        None => Ok(Tensor::new_cpu(column_sums(channels, dy.host()?), &[channels], false)),
    }
}

/// `y + bias` along the last dimension (the transposed convolution's bias). On a device this is
/// the normalisation kernel with centre 0, variance 0, gamma 1 and eps 1: a scale of exactly 1.
pub(super) fn add_bias(y: Tensor, bias: &Tensor) -> Result<Tensor> {
    let c = bias.numel();
    match gpu_of("conv_transpose2d", &[&y, bias])? {
        Some(gpu) => {
            let zeros = Tensor::zeros(&[c]).to_device(&y.device())?;
            let ones = Tensor::full(&[c], 1.0).to_device(&y.device())?;
            let (x, gamma, beta) = (y.gpu_buf()?, ones.gpu_buf()?, bias.gpu_buf()?);
            let n = BnInput { x, affine: BnAffine { gamma, beta, eps: 1.0, residual: None, relu: false } };
            let out = bn_forward(&*gpu, [y.numel() / c, c], &n, [zeros.gpu_buf()?; 2], None)?;
            Ok(Tensor::new_gpu(out, &gpu, y.shape(), false))
        }
        None => {
            let shape = y.shape().to_vec();
            let mut v = y.to_vec()?;
            let b = bias.host()?;
            v.chunks_exact_mut(c).for_each(|row| row.iter_mut().zip(b).for_each(|(v, b)| *v += b));
            Ok(Tensor::new_cpu(v, &shape, false))
        }
    }
}
