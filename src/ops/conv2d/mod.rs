//! 2-D convolution and its transpose, channels-last.
//!
//! `y[n, oh, ow, co] = b[co] + sum_{ci, kh, kw} x[n, oh*s - p + kh, ow*s - p + kw, ci] * w[co, ci, kh, kw]`
//! with zero padding `p` and stride `s`; `x: [N, H, W, C_in]`, `w: [C_out, C_in, KH, KW]`,
//! `y: [N, H_out, W_out, C_out]`, `H_out = (H + 2p - KH) / s + 1`.
//!
//! Backward: `dx` is the transposed convolution of `dy` with `w` ([`cpu::backward_data`]), `dw` is the
//! correlation of `x` with `dy` ([`cpu::backward_weight`]), `db` sums `dy` over `N, H_out, W_out`.
//! On a device, when both `dx` and `dw` are wanted, one launch computes them
//! ([`launch::conv2d_backward`]: the two grids side by side). Every product takes its operands at
//! the current [`precision`].
//! The transposed convolution ([`conv_transpose2d`]) is the same three products with the roles of
//! forward and backward-data exchanged.

pub mod cpu;
pub mod gradcheck;
pub mod launch;
pub mod parity;
pub mod parity_tc;
mod place;
pub mod reference;
mod shifted;
pub mod tensor_core;

use crate::error::{Error, Result};
use crate::ops::precision::{self, Precision};
use crate::tensor::Tensor;
use crate::tensor::autograd;
use launch::ConvProduct;

/// The sizes of one convolution, in the orientation of the forward convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding (both directions).
    pub pad: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
}

impl ConvGeometry {
    /// The geometry of `conv(x, w)` for the given shapes; errors name the op and the shapes.
    pub fn new(op: &'static str, x: &[usize], w: &[usize], stride: usize, pad: usize) -> Result<Self> {
        if x.len() != 4 || w.len() != 4 {
            return Err(Error::shape(
                op,
                format!("input {x:?} must be [N, H, W, C] and weight {w:?} [C_out, C_in, KH, KW]"),
            ));
        }
        if stride == 0 {
            return Err(Error::invalid(op, "stride must be at least 1"));
        }
        let (n, h, wd, c_in) = (x[0], x[1], x[2], x[3]);
        let (c_out, wc_in, kh, kw) = (w[0], w[1], w[2], w[3]);
        if c_in != wc_in {
            return Err(Error::shape(
                op,
                format!("input {x:?} has {c_in} channels but weight {w:?} expects {wc_in}"),
            ));
        }
        if n == 0 || c_in == 0 || c_out == 0 || kh == 0 || kw == 0 {
            return Err(Error::shape(op, format!("empty input {x:?} or weight {w:?}")));
        }
        if h + 2 * pad < kh || wd + 2 * pad < kw {
            return Err(Error::shape(
                op,
                format!("kernel {kh}x{kw} larger than padded input {x:?} (pad {pad})"),
            ));
        }
        let h_out = (h + 2 * pad - kh) / stride + 1;
        let w_out = (wd + 2 * pad - kw) / stride + 1;
        Ok(ConvGeometry { n, h, w: wd, c_in, c_out, kh, kw, stride, pad, h_out, w_out })
    }

    /// Columns of the im2col matrix: `KH * KW * C_in`.
    pub fn k(&self) -> usize {
        self.kh * self.kw * self.c_in
    }

    /// Elements of one input image.
    pub fn in_image_len(&self) -> usize {
        self.h * self.w * self.c_in
    }

    /// Elements of one output image.
    pub fn out_image_len(&self) -> usize {
        self.h_out * self.w_out * self.c_out
    }

    /// Multiply-accumulates of the forward convolution (each backward product costs the same).
    pub fn macs(&self) -> usize {
        self.n * self.h_out * self.w_out * self.c_out * self.k()
    }
}

/// `t` as an operand of a product at precision `p`: rounded here, except on a device, where the
/// tensor-core kernels round their operands themselves.
pub(crate) fn operand(p: Precision, t: &Tensor) -> Result<Tensor> {
    match (p, t.gpu()) {
        (Precision::Tf32 | Precision::Bf16, Some(_)) => Ok(t.clone()),
        _ => precision::operand(p, t),
    }
}

fn check_bias(op: &'static str, bias: Option<&Tensor>, channels: usize) -> Result<()> {
    match bias {
        Some(b) => b.expect_shape(op, "bias", &[Some(channels)]),
        None => Ok(()),
    }
}

/// 2-D convolution of `x: [N, H, W, C_in]` with `w: [C_out, C_in, KH, KW]`, optional `bias: [C_out]`.
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize) -> Result<Tensor> {
    let g = ConvGeometry::new("conv2d", x.shape(), w.shape(), stride, pad)?;
    check_bias("conv2d", bias, g.c_out)?;
    let p = precision::current();
    let operands = [operand(p, x)?, operand(p, w)?];
    let [xr, wr] = &operands;
    let y = place::product(&g, p, ConvProduct::Forward, [xr, wr], bias, &[g.n, g.h_out, g.w_out, g.c_out])?;
    Ok(with_backward(g, p, y, [x, w], operands, bias))
}

/// `y`, the output of the convolution of geometry `g` of `x` with `w` (and `bias`) computed
/// without a gradient from `operands` (`x` and `w` at precision `p`), as the op's result: its
/// backward recorded, with the products at precision `p` and the gradients reaching `x` and `w`.
pub(crate) fn with_backward(
    g: ConvGeometry,
    p: Precision,
    y: Tensor,
    [x, w]: [&Tensor; 2],
    [xr, wr]: [Tensor; 2],
    bias: Option<&Tensor>,
) -> Tensor {
    let mut inputs = vec![x, w];
    inputs.extend(bias);
    let y = y.result_of(&inputs);
    let (x, w, bias) = (x.clone(), w.clone(), bias.cloned());
    autograd::record(&y, move |dy, grads| {
        let dyr = operand(p, dy)?;
        // A gradient of x from another op (a residual block's shortcut) is added to in place.
        match (x.requires_grad(), w.requires_grad()) {
            (true, true) => {
                let (dx, dw) = place::gradients(&g, p, [&xr, &dyr, &wr], grads.take_grad(&x))?;
                grads.put_grad(&x, dx)?;
                grads.accumulate(&w, dw)?;
            }
            (true, false) => {
                let dx = place::backward_data_added(&g, p, [&dyr, &wr], grads.take_grad(&x), x.shape())?;
                grads.put_grad(&x, dx)?;
            }
            (false, true) => grads.accumulate(
                &w,
                place::product(&g, p, ConvProduct::BackwardWeight, [&xr, &dyr], None, w.shape())?,
            )?,
            (false, false) => {}
        }
        if let Some(b) = bias.filter(Tensor::requires_grad) {
            grads.accumulate(&b, place::bias_grad(g.c_out, dy)?)?;
        }
        Ok(())
    });
    y
}

/// Transposed 2-D convolution of `x: [N, H, W, C_in]` with `w: [C_in, C_out, KH, KW]` (PyTorch's
/// `ConvTranspose2d` layout), optional `bias: [C_out]`; the output is
/// `[N, (H-1)*s - 2p + KH, (W-1)*s - 2p + KW, C_out]`, the adjoint of [`conv2d`] in `x`.
pub fn conv_transpose2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    pad: usize,
) -> Result<Tensor> {
    const OP: &str = "conv_transpose2d";
    x.expect_shape(OP, "input", &[None, None, None, None])?;
    w.expect_shape(OP, "weight", &[Some(x.shape()[3]), None, None, None])?;
    let (n, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let (c_out, kh, kw) = (w.shape()[1], w.shape()[2], w.shape()[3]);
    if n == 0
        || h == 0
        || wd == 0
        || stride == 0
        || (h - 1) * stride + kh < 2 * pad + 1
        || (wd - 1) * stride + kw < 2 * pad + 1
    {
        return Err(Error::shape(
            OP,
            format!(
                "input {:?}, weight {:?}, stride {stride}, pad {pad}: empty output",
                x.shape(),
                w.shape()
            ),
        ));
    }
    let out_shape = [n, (h - 1) * stride + kh - 2 * pad, (wd - 1) * stride + kw - 2 * pad, c_out];
    // The forward convolution whose backward-data this is: from `out_shape` back to `x`.
    let g = ConvGeometry::new(OP, &out_shape, w.shape(), stride, pad)?;
    check_bias(OP, bias, c_out)?;
    if (g.h_out, g.w_out) != (h, wd) {
        return Err(Error::shape(
            OP,
            format!("input {:?} is not a convolution output size for stride {stride}", x.shape()),
        ));
    }
    let mut inputs = vec![x, w];
    inputs.extend(bias);
    let p = precision::current();
    let (xr, wr) = (operand(p, x)?, operand(p, w)?);
    let mut y = place::product(&g, p, ConvProduct::BackwardData, [&xr, &wr], None, &out_shape)?;
    if let Some(b) = bias {
        y = place::add_bias(y, b)?;
    }
    let y = y.result_of(&inputs);
    let (x, w, bias) = (x.clone(), w.clone(), bias.cloned());
    autograd::record(&y, move |dy, grads| {
        let dyr = operand(p, dy)?;
        if x.requires_grad() {
            grads
                .accumulate(&x, place::product(&g, p, ConvProduct::Forward, [&dyr, &wr], None, x.shape())?)?;
        }
        if w.requires_grad() {
            grads.accumulate(
                &w,
                place::product(&g, p, ConvProduct::BackwardWeight, [&dyr, &xr], None, w.shape())?,
            )?;
        }
        if let Some(b) = bias.filter(Tensor::requires_grad) {
            grads.accumulate(&b, place::bias_grad(g.c_in, dy)?)?;
        }
        Ok(())
    });
    Ok(y)
}

#[cfg(all(test, feature = "cuda-emulation"))]
mod fused_tests;
#[cfg(test)]
mod tests;
