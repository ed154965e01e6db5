//! Elementwise and channel-selection kernels (`kernels/elementwise.cu`) and the SGD step
//! (`kernels/optim.cu`).

use super::{expect_len, fits, flat, non_empty};
use crate::cuda::exec::{Arg, Exec};
use crate::cuda::params::{ChannelParams, MapParams, SgdParams, SubsampleParams};
use crate::error::{Error, Result};
use crate::optim::SgdConfig;

fn map_params(op: &'static str, len: usize, mode: i32, a: f32) -> Result<MapParams> {
    non_empty(op, "input", len)?;
    fits(op, &[("elements", len)])?;
    Ok(MapParams { len: len as i32, mode, a })
}

/// `y = x` where `x > 0`, `slope * x` elsewhere: `crate::ops::activation::cpu::forward`.
pub fn leaky_relu_forward<E: Exec>(e: &E, slope: f32, x: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    let len = e.len(x);
    let p = map_params("cuda leaky_relu_forward", len, 0, slope)?;
    let mut y = e.alloc(len)?;
    // SAFETY: leaky_relu_forward(MapParams, x, y) over len elements.
    unsafe { e.launch("leaky_relu_forward", flat(len), &p, &mut [Arg::In(x), Arg::Out(&mut y)])? };
    Ok(y)
}

/// `dx = dy` where `x > 0`, `slope * dy` elsewhere: `crate::ops::activation::cpu::backward`.
pub fn leaky_relu_backward<E: Exec>(
    e: &E,
    slope: f32,
    x: &E::Buf<f32>,
    dy: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda leaky_relu_backward";
    let len = e.len(x);
    let p = map_params(OP, len, 0, slope)?;
    expect_len(e, OP, "output gradient", dy, len)?;
    let mut dx = e.alloc(len)?;
    // SAFETY: leaky_relu_backward(MapParams, x, dy, dx) over len elements.
    unsafe {
        e.launch("leaky_relu_backward", flat(len), &p, &mut [Arg::In(x), Arg::In(dy), Arg::Out(&mut dx)])?
    };
    Ok(dx)
}

/// An elementwise operation of two tensors of one shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`: `crate::ops::arith::cpu::add`.
    Add = 0,
    /// `a * b`: `crate::ops::arith::cpu::mul`.
    Mul = 1,
}

/// `a + b` or `a * b`, elementwise.
pub fn binary<E: Exec>(e: &E, op: Binary, a: &E::Buf<f32>, b: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda binary_map";
    let len = e.len(a);
    let p = map_params(OP, len, op as i32, 0.0)?;
    expect_len(e, OP, "second operand", b, len)?;
    let mut y = e.alloc(len)?;
    // SAFETY: binary_map(MapParams, a, b, y) over len elements.
    unsafe { e.launch("binary_map", flat(len), &p, &mut [Arg::In(a), Arg::In(b), Arg::Out(&mut y)])? };
    Ok(y)
}

/// `s * x`: `crate::ops::arith::cpu::scale`.
pub fn scale<E: Exec>(e: &E, s: f32, x: &E::Buf<f32>) -> Result<E::Buf<f32>> {
    let len = e.len(x);
    let p = map_params("cuda scale_values", len, 0, s)?;
    let mut y = e.alloc(len)?;
    // SAFETY: scale_values(MapParams, x, y) over len elements.
    unsafe { e.launch("scale_values", flat(len), &p, &mut [Arg::In(x), Arg::Out(&mut y)])? };
    Ok(y)
}

fn channel_params(op: &'static str, rows: usize, c: usize, start: usize, k: usize) -> Result<ChannelParams> {
    non_empty(op, "input", rows * c * k)?;
    fits(op, &[("input elements", rows * c), ("output elements", rows * k)])?;
    Ok(ChannelParams { rows: rows as i32, c: c as i32, start: start as i32, k: k as i32 })
}

/// Channels `start..end` of each row of `c`: `crate::ops::channels::cpu::slice`, and with
/// `backward` its adjoint `slice_backward` (from `dy` with `end - start` channels).
pub fn slice_channels<E: Exec>(
    e: &E,
    backward: bool,
    [rows, c]: [usize; 2],
    start: usize,
    end: usize,
    x: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda slice_channels";
    if start >= end || end > c {
        return Err(Error::invalid(OP, format!("range {start}..{end} is empty or outside {c} channels")));
    }
    let p = channel_params(OP, rows, c, start, end - start)?;
    let (kernel, len_in, len_out) = match backward {
        false => ("slice_channels", rows * c, rows * (end - start)),
        true => ("slice_channels_backward", rows * (end - start), rows * c),
    };
    expect_len(e, OP, "input", x, len_in)?;
    let mut y = e.alloc(len_out)?;
    // SAFETY: slice_channels[_backward](ChannelParams, x, y), lengths checked above.
    unsafe { e.launch(kernel, flat(len_out), &p, &mut [Arg::In(x), Arg::Out(&mut y)])? };
    Ok(y)
}

/// Gathers channels `index` of each row of `c`: `crate::ops::channels::cpu::gather`, and with
/// `backward` its adjoint `scatter_add` (from `dy` with `index.len()` channels). The indices must
/// be below `c`.
pub fn gather_channels<E: Exec>(
    e: &E,
    backward: bool,
    [rows, c]: [usize; 2],
    index: &E::Buf<i32>,
    x: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda gather_channels";
    let k = e.len(index);
    if e.download(index)?.iter().any(|&i| i < 0 || i as usize >= c) {
        return Err(Error::invalid(OP, format!("an index is outside the {c} channels")));
    }
    let p = channel_params(OP, rows, c, 0, k)?;
    let (kernel, len_in, len_out) = if backward {
        ("scatter_add_channels", rows * k, rows * c)
    } else {
        ("gather_channels", rows * c, rows * k)
    };
    expect_len(e, OP, "input", x, len_in)?;
    let mut y = e.alloc(len_out)?;
    // SAFETY: gather_channels / scatter_add_channels(ChannelParams, x, index, y) with every index
    // below c (checked above), lengths checked above.
    unsafe { e.launch(kernel, flat(len_out), &p, &mut [Arg::In(x), Arg::Index(index), Arg::Out(&mut y)])? };
    Ok(y)
}

/// The option-A shortcut of `x: [n, h, w, c]` to `c_out` channels:
/// `crate::ops::channels::cpu::shortcut_a`, and with `backward` its adjoint
/// `shortcut_a_backward` (from `dy: [n, ceil(h/2), ceil(w/2), c_out]`).
pub fn shortcut_a<E: Exec>(
    e: &E,
    backward: bool,
    [n, h, w, c]: [usize; 4],
    c_out: usize,
    x: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda shortcut_a";
    if c_out < c || !(c_out - c).is_multiple_of(2) {
        return Err(Error::invalid(OP, format!("cannot pad {c} channels evenly to {c_out}")));
    }
    let (big, small) = (n * h * w * c, n * h.div_ceil(2) * w.div_ceil(2) * c_out);
    non_empty(OP, "input", big)?;
    fits(OP, &[("input elements", big), ("output elements", small)])?;
    let p = SubsampleParams { n: n as i32, h: h as i32, w: w as i32, c: c as i32, c_out: c_out as i32 };
    let (kernel, len_in, len_out) =
        if backward { ("shortcut_a_backward", small, big) } else { ("shortcut_a_forward", big, small) };
    expect_len(e, OP, "input", x, len_in)?;
    let mut y = e.alloc(len_out)?;
    // SAFETY: shortcut_a_forward / _backward(SubsampleParams, x, y), lengths checked above.
    unsafe { e.launch(kernel, flat(len_out), &p, &mut [Arg::In(x), Arg::Out(&mut y)])? };
    Ok(y)
}

/// One SGD update of `param` by `grad` in place, with the momentum buffer `buf` when
/// `cfg.momentum > 0` (overwritten when `first`): `crate::optim::cpu::step_plain` and
/// `step_momentum`.
pub fn sgd_step<E: Exec>(
    e: &E,
    cfg: &SgdConfig,
    first: bool,
    grad: &E::Buf<f32>,
    param: &mut E::Buf<f32>,
    buf: Option<&mut E::Buf<f32>>,
) -> Result<()> {
    const OP: &str = "cuda sgd_step";
    let len = e.len(param);
    non_empty(OP, "parameter", len)?;
    fits(OP, &[("elements", len)])?;
    expect_len(e, OP, "gradient", grad, len)?;
    let buf = match (cfg.momentum > 0.0, buf) {
        (true, Some(b)) => {
            expect_len(e, OP, "momentum buffer", b, len)?;
            Arg::Out(b)
        }
        (false, None) => Arg::Null,
        (true, None) => return Err(Error::invalid(OP, "momentum needs a buffer")),
        (false, Some(_)) => return Err(Error::invalid(OP, "a momentum buffer was given without momentum")),
    };
    let p = SgdParams {
        len: len as i32,
        nesterov: cfg.nesterov as i32,
        first: first as i32,
        lr: cfg.lr,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
    };
    // SAFETY: sgd_step(SgdParams, grad, param, buf) over len elements, lengths checked above.
    unsafe { e.launch("sgd_step", flat(len), &p, &mut [Arg::In(grad), Arg::Out(param), buf]) }
}
