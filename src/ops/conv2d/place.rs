//! The three products of a convolution and its bias terms, run where their operands are: the
//! rayon path ([`super::cpu`]) for host tensors, the kernels of `kernels/conv2d.cu` through
//! [`super::launch`] for tensors on a device. Results carry no gradient.

use super::launch as kernels;
use super::{ConvGeometry, cpu};
use crate::cpu::reduce::column_sums;
use crate::error::Result;
use crate::ops::batchnorm::launch::{Affine, bn_forward};
use crate::ops::{gpu_of, map2_on};
use crate::tensor::Tensor;

/// `conv(x, w) + bias`, shaped `shape`.
pub(super) fn forward(
    g: &ConvGeometry,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    shape: &[usize],
) -> Result<Tensor> {
    match gpu_of("conv2d", &[x, w])? {
        Some(gpu) => {
            let bias = bias.map(Tensor::gpu_buf).transpose()?;
            let y = kernels::conv2d_forward(&*gpu, g, x.gpu_buf()?, w.gpu_buf()?, bias)?;
            Ok(Tensor::new_gpu(y, &gpu, shape, false))
        }
        None => {
            let y = cpu::forward(g, x.host()?, w.host()?, bias.map(Tensor::host).transpose()?);
            Ok(Tensor::new_cpu(y, shape, false))
        }
    }
}

/// A backward product of the convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Product {
    /// The transposed convolution of `dy` with `w` (backward-data), operands `[dy, w]`.
    Data,
    /// The correlation of `x` with `dy` (backward-weight), operands `[x, dy]`.
    Weight,
}

/// `product` of the convolution of geometry `g` on its two operands, shaped `shape`.
pub(super) fn backward(
    g: &ConvGeometry,
    product: Product,
    [a, b]: [&Tensor; 2],
    shape: &[usize],
) -> Result<Tensor> {
    map2_on(
        "conv2d backward",
        [a, b],
        shape,
        |a, b| match product {
            Product::Data => cpu::backward_data(g, a, b),
            Product::Weight => cpu::backward_weight(g, a, b),
        },
        |gpu, a, b| match product {
            Product::Data => kernels::conv2d_backward_data(gpu, g, a, b),
            Product::Weight => kernels::conv2d_backward_weight(gpu, g, a, b),
        },
    )
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
/// the normalisation kernel with centre 0 and scale 1.
pub(super) fn add_bias(y: Tensor, bias: &Tensor) -> Result<Tensor> {
    let c = bias.numel();
    match gpu_of("conv_transpose2d", &[&y, bias])? {
        Some(gpu) => {
            let zeros = Tensor::zeros(&[c]).to_device(&y.device())?;
            let ones = Tensor::full(&[c], 1.0).to_device(&y.device())?;
            let affine = Affine { center: zeros.gpu_buf()?, scale: ones.gpu_buf()?, beta: bias.gpu_buf()? };
            let out = bn_forward(&*gpu, [y.numel() / c, c], false, y.gpu_buf()?, &affine, None)?;
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
