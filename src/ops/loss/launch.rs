//! The device launchers of the losses (`kernels/losses.cu`); per-row losses are averaged by
//! [`column_sums`], so every loss stays on the device until it is read.

use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::builtin::column_sums;
use crate::cuda::launch::{block_per_row, expect_len, fits, flat, non_empty, output, warp_per_row};
use crate::cuda::params::{MapParams, RowParams};
use crate::error::{Error, Result};

fn row_params(op: &'static str, rows: usize, cols: usize, mode: i32, a: f32) -> Result<RowParams> {
    non_empty(op, "input", rows * cols)?;
    fits(op, &[("elements", rows * cols)])?;
    Ok(RowParams { rows: rows as i32, cols: cols as i32, mode, a })
}

/// The results of [`softmax_ce`].
pub struct CrossEntropy<B> {
    /// The batch-mean loss, one element.
    pub loss: B,
    /// The softmax, when asked for (the taped backward's input).
    pub prob: Option<B>,
    /// `grad_scale * (softmax - onehot)`, when a scale was given (the fused gradient).
    pub dz: Option<B>,
}

/// Softmax cross-entropy of `logits: [rows, k]` against `labels` (each in `[0, k)`), batch-mean:
/// `crate::ops::loss::cross_entropy::cpu::forward`, fused with the gradient
/// (`cpu::backward` with `scale = grad_scale`) when `grad_scale` is given.
pub fn softmax_ce<E: Exec>(
    e: &E,
    [rows, k]: [usize; 2],
    logits: &E::Buf<f32>,
    labels: &E::Buf<i32>,
    keep_prob: bool,
    grad_scale: Option<f32>,
) -> Result<CrossEntropy<E::Buf<f32>>> {
    const OP: &str = "cuda softmax_ce";
    let p = row_params(OP, rows, k, 0, grad_scale.unwrap_or(0.0))?;
    check_labels(e, OP, rows, labels)?;
    let mut prob = if keep_prob { Some(e.alloc(rows * k)?) } else { None };
    let mut dz = if grad_scale.is_some() { Some(e.alloc(rows * k)?) } else { None };
    let row_loss = output(e, rows, |row_loss| {
        kernels::softmax_ce(e, warp_per_row(rows), &p, logits, labels, prob.as_mut(), dz.as_mut(), row_loss)
    })?;
    let loss = column_sums(e, rows, 1, 1.0 / rows as f32, &row_loss)?;
    Ok(CrossEntropy { loss, prob, dz })
}

/// Checks that there is one label per row; their values are not read back (a wait for the
/// device): the op checks them on the host, and the kernels give a NaN loss for a label outside
/// `[0, k)` and never read out of bounds.
fn check_labels<E: Exec>(e: &E, op: &'static str, rows: usize, labels: &E::Buf<i32>) -> Result<()> {
    expect_len(e, op, "labels", labels, rows)
}

/// `dz = scale * (prob - onehot(labels))`: `crate::ops::loss::cross_entropy::cpu::backward`.
pub fn softmax_ce_backward<E: Exec>(
    e: &E,
    [rows, k]: [usize; 2],
    scale: f32,
    prob: &E::Buf<f32>,
    labels: &E::Buf<i32>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda softmax_ce_backward";
    let p = row_params(OP, rows, k, 0, scale)?;
    check_labels(e, OP, rows, labels)?;
    output(e, rows * k, |dz| kernels::softmax_ce_backward(e, flat(rows * k), &p, prob, labels, dz))
}

/// The results of [`kd_forward`].
pub struct Distillation<B> {
    /// `T^2 / N * sum KL(p_t || p_s)`, one element.
    pub loss: B,
    /// `log_softmax(s / T)`.
    pub ls: B,
    /// `log_softmax(t / T)`.
    pub lt: B,
}

/// Hinton's loss between `student` and `teacher` logits `[rows, k]`:
/// `crate::ops::loss::kd::cpu::forward`, averaged and scaled by `T^2`.
pub fn kd_forward<E: Exec>(
    e: &E,
    [rows, k]: [usize; 2],
    temperature: f32,
    student: &E::Buf<f32>,
    teacher: &E::Buf<f32>,
) -> Result<Distillation<E::Buf<f32>>> {
    const OP: &str = "cuda kd_forward";
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(Error::invalid(OP, format!("temperature {temperature} must be positive and finite")));
    }
    let p = row_params(OP, rows, k, 0, 1.0 / temperature)?;
    let (mut ls, mut lt) = (e.alloc(rows * k)?, e.alloc(rows * k)?);
    let row_loss = output(e, rows, |row| {
        kernels::kd_forward(e, warp_per_row(rows), &p, student, teacher, &mut ls, &mut lt, row)
    })?;
    let loss = column_sums(e, rows, 1, temperature * temperature / rows as f32, &row_loss)?;
    Ok(Distillation { loss, ls, lt })
}

/// Gradients at two inputs; the second only when it was asked for.
pub struct TwoGrads<B> {
    /// The gradient at the first input.
    pub first: B,
    /// The gradient at the second input.
    pub second: Option<B>,
}

/// The gradients of `scale * sum KL` at the student and, when `want_teacher`, the teacher:
/// `crate::ops::loss::kd::cpu::backward_student` and `backward_teacher` (`scale = dL T / N`).
pub fn kd_backward<E: Exec>(
    e: &E,
    [rows, k]: [usize; 2],
    scale: f32,
    [ls, lt]: [&E::Buf<f32>; 2],
    want_teacher: bool,
) -> Result<TwoGrads<E::Buf<f32>>> {
    let p = row_params("cuda kd_backward", rows, k, 0, scale)?;
    two_grads(e, rows * k, want_teacher, |ds, dt| {
        kernels::kd_backward(e, warp_per_row(rows), &p, ls, lt, Some(ds), dt)
    })
}

/// Fresh gradients of `len` elements at the first input and, when `want_second`, the second,
/// written by `fill` (one launch).
fn two_grads<E: Exec>(
    e: &E,
    len: usize,
    want_second: bool,
    fill: impl FnOnce(&mut E::Buf<f32>, Option<&mut E::Buf<f32>>) -> Result<()>,
) -> Result<TwoGrads<E::Buf<f32>>> {
    let mut second = if want_second { Some(e.alloc(len)?) } else { None };
    let first = output(e, len, |first| fill(first, second.as_mut()))?;
    Ok(TwoGrads { first, second })
}

/// The parameters of an elementwise kernel over the elements of `x`, which must not be empty.
fn map_params<E: Exec>(e: &E, op: &'static str, x: &E::Buf<f32>, mode: i32, a: f32) -> Result<MapParams> {
    let len = e.len(x);
    non_empty(op, "input", len)?;
    fits(op, &[("elements", len)])?;
    Ok(MapParams { len: len as i32, mode, a })
}

/// `phi = x / max(||x||, NORM_EPS)` per row of `d` and the norms:
/// `crate::ops::loss::factor::cpu::normalize_rows`.
pub fn normalize_rows<E: Exec>(
    e: &E,
    [rows, d]: [usize; 2],
    x: &E::Buf<f32>,
) -> Result<(E::Buf<f32>, E::Buf<f32>)> {
    let p = row_params("cuda normalize_rows", rows, d, 0, 0.0)?;
    let mut phi = e.alloc(rows * d)?;
    let norms =
        output(e, rows, |norms| kernels::normalize_rows(e, block_per_row(rows), &p, x, &mut phi, norms))?;
    Ok((phi, norms))
}

/// The gradient reaching `x` from `g` reaching `phi`:
/// `crate::ops::loss::factor::cpu::normalize_rows_backward`.
pub fn normalize_rows_backward<E: Exec>(
    e: &E,
    [rows, d]: [usize; 2],
    [phi, norms, g]: [&E::Buf<f32>; 3],
) -> Result<E::Buf<f32>> {
    let p = row_params("cuda normalize_rows_backward", rows, d, 0, 0.0)?;
    output(e, rows * d, |dx| kernels::normalize_rows_backward(e, block_per_row(rows), &p, phi, norms, g, dx))
}

/// What [`row_reduce`] sums per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowReduce {
    /// `|a - b|`: `factor::cpu::distance` with L1, and `recon::cpu::forward` on one row.
    AbsDiff = 0,
    /// `(a - b)^2`: the same with L2 / squared.
    SquaredDiff = 1,
    /// `a * b`: `factor::cpu::dots`.
    Dot = 2,
}

/// `out[r] = sum_j f(a[r, j], b[r, j])` per row of `d` (one row of all elements gives the
/// reconstruction losses' sums).
pub fn row_reduce<E: Exec>(
    e: &E,
    [rows, d]: [usize; 2],
    f: RowReduce,
    a: &E::Buf<f32>,
    b: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    let p = row_params("cuda row_distance", rows, d, f as i32, 0.0)?;
    output(e, rows, |out| kernels::row_distance(e, block_per_row(rows), &p, a, b, out))
}

/// The gradient at `a` of `scale * sum |a - b|` (`squared = false`) or `scale * sum (a - b)^2`,
/// and its negation (the gradient at `b`) when `want_b`: `crate::ops::loss::recon::cpu::backward`
/// and `factor::cpu::distance_backward`.
pub fn diff_backward<E: Exec>(
    e: &E,
    squared: bool,
    scale: f32,
    a: &E::Buf<f32>,
    b: &E::Buf<f32>,
    want_b: bool,
) -> Result<TwoGrads<E::Buf<f32>>> {
    let p = map_params(e, "cuda diff_backward", a, squared as i32, scale)?;
    let len = e.len(a);
    two_grads(e, len, want_b, |ga, gb| kernels::diff_backward(e, flat(len), &p, a, b, ga, gb))
}

/// `g = scale * sign(dots[r]) * other[r, :]`: `crate::ops::loss::factor::cpu::dots_backward`.
pub fn dots_backward<E: Exec>(
    e: &E,
    [rows, d]: [usize; 2],
    scale: f32,
    dots: &E::Buf<f32>,
    other: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    let p = row_params("cuda dots_backward", rows, d, 0, scale)?;
    output(e, rows * d, |g| kernels::dots_backward(e, flat(rows * d), &p, dots, other, g))
}

/// `q[p] = sum_c x[p, c]^2 / C` per pixel of `c` channels, and with `dq` given its backward
/// `dx = 2 / C * dq[p] * x`: `crate::ops::loss::attention::cpu::channel_mean_square` and
/// `channel_mean_square_backward`.
pub fn channel_mean_square<E: Exec>(
    e: &E,
    [pixels, c]: [usize; 2],
    x: &E::Buf<f32>,
    dq: Option<&E::Buf<f32>>,
) -> Result<E::Buf<f32>> {
    let p = row_params("cuda channel_mean_square", pixels, c, 0, 0.0)?;
    match dq {
        None => output(e, pixels, |q| kernels::channel_mean_square(e, warp_per_row(pixels), &p, x, q)),
        Some(dq) => output(e, pixels * c, |dx| {
            kernels::channel_mean_square_backward(e, flat(pixels * c), &p, x, dq, dx)
        }),
    }
}

/// `out[r] = sum_j mask * (s - t)^2` per row of `d`, `mask = (s > t) | (t > 0)`:
/// `crate::ops::loss::partial_l2::cpu::rows`.
pub fn partial_l2_rows<E: Exec>(
    e: &E,
    [rows, d]: [usize; 2],
    s: &E::Buf<f32>,
    t: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    let p = row_params("cuda partial_l2_rows", rows, d, 0, 0.0)?;
    output(e, rows, |out| kernels::partial_l2_rows(e, block_per_row(rows), &p, s, t, out))
}

/// The gradient at `s` of `scale * sum mask * (s - t)^2`, and its negation (the gradient at `t`)
/// when `want_t`: `crate::ops::loss::partial_l2::cpu::backward`.
pub fn partial_l2_backward<E: Exec>(
    e: &E,
    scale: f32,
    s: &E::Buf<f32>,
    t: &E::Buf<f32>,
    want_t: bool,
) -> Result<TwoGrads<E::Buf<f32>>> {
    let p = map_params(e, "cuda partial_l2_backward", s, 0, scale)?;
    let len = e.len(s);
    two_grads(e, len, want_t, |gs, gt| kernels::partial_l2_backward(e, flat(len), &p, s, t, gs, gt))
}
