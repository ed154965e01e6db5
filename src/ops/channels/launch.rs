//! The device launchers of channel slicing, gathering and the option-A shortcut
//! (`kernels/elementwise.cu`).

use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::{fits, flat, non_empty, output};
use crate::cuda::params::{ChannelParams, SubsampleParams};
use crate::error::{Error, Result};

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
    if backward {
        output(e, rows * c, |dx| kernels::slice_channels_backward(e, flat(rows * c), &p, x, dx))
    } else {
        let len = rows * (end - start);
        output(e, len, |y| kernels::slice_channels(e, flat(len), &p, x, y))
    }
}

/// Gathers channels `index` of each row of `c`: `crate::ops::channels::cpu::gather`, and with
/// `backward` its adjoint `scatter_add` (from `dy` with `index.len()` channels). The indices
/// should be below `c` (the op checks them on the host); the kernel writes NaN for one that is
/// not, and never reads out of bounds.
pub fn gather_channels<E: Exec>(
    e: &E,
    backward: bool,
    [rows, c]: [usize; 2],
    index: &E::Buf<i32>,
    x: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda gather_channels";
    let k = e.len(index);
    let p = channel_params(OP, rows, c, 0, k)?;
    if backward {
        output(e, rows * c, |dx| kernels::scatter_add_channels(e, flat(rows * c), &p, x, index, dx))
    } else {
        output(e, rows * k, |y| kernels::gather_channels(e, flat(rows * k), &p, x, index, y))
    }
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
    if backward {
        output(e, big, |dx| kernels::shortcut_a_backward(e, flat(big), &p, x, dx))
    } else {
        output(e, small, |y| kernels::shortcut_a_forward(e, flat(small), &p, x, y))
    }
}
