//! Depthwise 2-D convolution (groups = channels, no bias), channels-last: every channel convolved
//! with its own `k x k` filter,
//! `y[n, oh, ow, c] = sum_{kh, kw} x[n, oh*s - p + kh, ow*s - p + kw, c] * w[c, 0, kh, kw]`
//! with zero padding `p` and stride `s`; `x: [N, H, W, C]`, `w: [C, 1, K, K]` (PyTorch's layout for
//! `Conv2d(C, C, K, groups=C)`), `y: [N, H_out, W_out, C]`, `H_out = (H + 2p - K) / s + 1`.
//!
//! Backward: `dx` scatters `dy * w` back through the taps ([`cpu::backward_data`]); `dw[c, t]` sums
//! `dy * x` at tap `t` over the batch and the output pixels ([`cpu::backward_weight`]).
//! [`avg_pool2d`] is the same op with a constant filter.

pub mod cpu;
pub mod gradcheck;
pub mod launch;
pub mod parity;
pub mod reference;

use crate::error::{Error, Result};
use crate::ops::map2_on;
use crate::tensor::Tensor;
use crate::tensor::autograd;
use launch::DepthwiseProduct;

/// The sizes of one depthwise convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthwiseGeometry {
    /// Batch size.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Channels (input and output).
    pub c: usize,
    /// Kernel size (square).
    pub k: usize,
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding (both directions).
    pub pad: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
}

impl DepthwiseGeometry {
    /// The geometry of `op` on `x: [N, H, W, C]` with a `k x k` filter; errors name `op` and the
    /// shapes.
    pub fn new(op: &'static str, x: &[usize], k: usize, stride: usize, pad: usize) -> Result<Self> {
        let &[n, h, w, c] = x else {
            return Err(Error::shape(op, format!("input {x:?} must be [N, H, W, C]")));
        };
        if stride == 0 || k == 0 {
            return Err(Error::invalid(op, format!("kernel {k} and stride {stride} must be at least 1")));
        }
        if n == 0 || c == 0 || h + 2 * pad < k || w + 2 * pad < k {
            return Err(Error::shape(
                op,
                format!("input {x:?} is empty or smaller than the {k}x{k} kernel (pad {pad})"),
            ));
        }
        let (h_out, w_out) = ((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1);
        Ok(DepthwiseGeometry { n, h, w, c, k, stride, pad, h_out, w_out })
    }

    /// Elements of the output.
    pub fn out_len(&self) -> usize {
        self.n * self.h_out * self.w_out * self.c
    }
}

/// `which` product of the depthwise convolution on its operands, shaped `shape`, where they are.
fn product(
    g: &DepthwiseGeometry,
    which: DepthwiseProduct,
    [a, b]: [&Tensor; 2],
    shape: &[usize],
) -> Result<Tensor> {
    map2_on(
        "depthwise_conv2d",
        [a, b],
        shape,
        |a, b| match which {
            DepthwiseProduct::Forward => cpu::forward(g, a, b),
            DepthwiseProduct::BackwardData => cpu::backward_data(g, a, b),
            DepthwiseProduct::BackwardWeight => cpu::backward_weight(g, a, b),
        },
        |e, a, b| launch::depthwise(e, g, which, [a, b]),
    )
}

/// Depthwise convolution of `x: [N, H, W, C]` with `w: [C, 1, K, K]` (square kernel), no bias.
pub fn depthwise_conv2d(x: &Tensor, w: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    const OP: &str = "depthwise_conv2d";
    w.expect_shape(OP, "weight", &[None, Some(1), None, None])?;
    let ws = w.shape();
    if ws[2] != ws[3] {
        return Err(Error::shape(OP, format!("weight {ws:?} must be square [C, 1, K, K]")));
    }
    let g = DepthwiseGeometry::new(OP, x.shape(), ws[2], stride, pad)?;
    if ws[0] != g.c {
        return Err(Error::shape(
            OP,
            format!("input {:?} has {} channels but weight {ws:?} has {}", x.shape(), g.c, ws[0]),
        ));
    }
    let y = product(&g, DepthwiseProduct::Forward, [x, w], &[g.n, g.h_out, g.w_out, g.c])?.result_of(&[x, w]);
    let (x, w) = (x.clone(), w.clone());
    autograd::record(&y, move |dy, grads| {
        if x.requires_grad() {
            grads.accumulate(&x, product(&g, DepthwiseProduct::BackwardData, [dy, &w], x.shape())?)?;
        }
        if w.requires_grad() {
            grads.accumulate(&w, product(&g, DepthwiseProduct::BackwardWeight, [&x, dy], w.shape())?)?;
        }
        Ok(())
    });
    Ok(y)
}

/// Average pooling of `x: [N, H, W, C]` over `k x k` windows with stride `k` (floor sizes): the
/// depthwise convolution with the constant filter `1 / k^2`, so the gradient reaches `x` only.
/// When `k` divides `H` and `W` it equals PyTorch's `adaptive_avg_pool2d` to `(H / k, W / k)`.
pub fn avg_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    x.expect_shape("avg_pool2d", "input", &[None, None, None, None])?;
    let c = x.shape()[3];
    let w = Tensor::full(&[c, 1, k, k], 1.0 / (k * k) as f32).to_device(&x.device())?;
    depthwise_conv2d(x, &w, k, 0)
}

#[cfg(test)]
mod tests;
