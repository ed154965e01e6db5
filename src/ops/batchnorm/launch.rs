//! The device launchers of batch normalisation (`kernels/batchnorm.cu`).

use crate::cuda::exec::Exec;
use crate::cuda::kernels;
use crate::cuda::launch::{channel_blocks, fits, flat, non_empty, output};
use crate::cuda::params::BnParams;
use crate::error::{Error, Result};

/// Rows one block of a per-channel reduction sums.
const SPLIT_ROWS: usize = 256;

/// The parameters of a normalisation of `rows x c` values, after checking the sizes.
fn bn_params(op: &'static str, rows: usize, c: usize) -> Result<BnParams> {
    non_empty(op, "input", rows * c)?;
    fits(op, &[("elements", rows * c)])?;
    Ok(BnParams { rows: rows as i32, c: c as i32, split_rows: SPLIT_ROWS as i32, ..BnParams::default() })
}

/// Per-channel mean and biased variance of `x: [rows, c]`: `crate::ops::batchnorm::cpu::stats`.
pub fn bn_stats<E: Exec>(
    e: &E,
    rows: usize,
    c: usize,
    x: &E::Buf<f32>,
) -> Result<(E::Buf<f32>, E::Buf<f32>)> {
    const OP: &str = "cuda bn_stats";
    let p = bn_params(OP, rows, c)?;
    let splits = rows.div_ceil(SPLIT_ROWS);
    let partial = output(e, 2 * splits * c, |part| {
        kernels::bn_stats_partial(e, channel_blocks(OP, c, splits)?, &p, x, part)
    })?;
    let (mut mean, mut var) = (e.alloc(c)?, e.alloc(c)?);
    kernels::bn_stats_finalize(e, flat(c), &p, x, &partial, &mut mean, &mut var)?;
    Ok((mean, var))
}

/// `scale = gamma / sqrt(var + eps)` per channel (the batch or the running variance).
pub fn bn_scale<E: Exec>(
    e: &E,
    c: usize,
    eps: f32,
    gamma: &E::Buf<f32>,
    var: &E::Buf<f32>,
) -> Result<E::Buf<f32>> {
    let p = BnParams { eps, ..bn_params("cuda bn_scale", 1, c)? };
    output(e, c, |scale| kernels::bn_scale(e, flat(c), &p, gamma, var, scale))
}

/// Folds a batch's `mean` and biased `var` (`count` values per channel) into the running
/// statistics in place: `crate::ops::batchnorm::cpu::update_running`.
pub fn bn_running_update<E: Exec>(
    e: &E,
    momentum: f32,
    count: usize,
    [mean, var]: [&E::Buf<f32>; 2],
    running_mean: &mut E::Buf<f32>,
    running_var: &mut E::Buf<f32>,
) -> Result<()> {
    const OP: &str = "cuda bn_running_update";
    let c = e.len(mean);
    if count < 2 {
        return Err(Error::invalid(OP, format!("{count} value(s) per channel: no unbiased variance")));
    }
    let unbias = (count as f64 / (count - 1) as f64) as f32;
    let p = BnParams { momentum, unbias, ..bn_params(OP, 1, c)? };
    kernels::bn_running_update(e, flat(c), &p, mean, var, running_mean, running_var)
}

/// The per-channel vectors of a normalisation, each `[c]`: `y = (x - center) * scale + beta`.
pub struct Affine<'a, B> {
    /// The subtracted mean (batch or running).
    pub center: &'a B,
    /// `gamma / sqrt(var + eps)`.
    pub scale: &'a B,
    /// The shift.
    pub beta: &'a B,
}

/// `y = act((x - center) * scale + beta [+ residual])` for `x: [rows, c]`, `act` ReLU when `relu`:
/// `crate::ops::batchnorm::cpu::forward`.
pub fn bn_forward<E: Exec>(
    e: &E,
    [rows, c]: [usize; 2],
    relu: bool,
    x: &E::Buf<f32>,
    affine: &Affine<'_, E::Buf<f32>>,
    residual: Option<&E::Buf<f32>>,
) -> Result<E::Buf<f32>> {
    let p = BnParams { relu: relu as i32, ..bn_params("cuda bn_forward", rows, c)? };
    let Affine { center, scale, beta } = *affine;
    output(e, rows * c, |y| kernels::bn_forward(e, flat(rows * c), &p, x, center, scale, beta, residual, y))
}

/// What the backward of a normalisation of `rows x c` values reads.
pub struct BnBackward<'a, B> {
    /// The input `x`.
    pub x: &'a B,
    /// The gradient reaching the output.
    pub dy: &'a B,
    /// The output, when it went through the ReLU (its sign masks `dy`).
    pub relu_out: Option<&'a B>,
    /// The affine map of the forward (`center`, `scale`; `beta` is not read).
    pub affine: Affine<'a, B>,
    /// The variance the forward used (batch or running).
    pub var: &'a B,
    /// The forward's `eps`.
    pub eps: f32,
    /// Whether `center` and `var` were batch statistics (so `dx` flows through them).
    pub training: bool,
    /// Whether to return the residual's gradient `dz`.
    pub want_dz: bool,
}

/// The gradients of a normalisation.
pub struct BnGrads<B> {
    /// The input's gradient.
    pub dx: B,
    /// The residual's gradient, when asked for.
    pub dz: Option<B>,
    /// `sum dz * xhat` per channel.
    pub dgamma: B,
    /// `sum dz` per channel.
    pub dbeta: B,
}

/// The backward of [`bn_forward`], as the CPU op composes `backward_sums` and `backward_data`
/// (`crate::ops::batchnorm::cpu`): one reduction pass, the per-channel coefficients, one pass
/// writing `dx` (and `dz`).
pub fn bn_backward<E: Exec>(
    e: &E,
    [rows, c]: [usize; 2],
    b: &BnBackward<'_, E::Buf<f32>>,
) -> Result<BnGrads<E::Buf<f32>>> {
    const OP: &str = "cuda bn_backward";
    let p = BnParams { training: b.training as i32, eps: b.eps, ..bn_params(OP, rows, c)? };
    let Affine { center, scale, .. } = b.affine;
    let splits = rows.div_ceil(SPLIT_ROWS);
    let blocks = channel_blocks(OP, c, splits)?;
    let partial = output(e, 2 * splits * c, |part| {
        kernels::bn_backward_partial(e, blocks, &p, b.x, b.dy, b.relu_out, center, part)
    })?;
    let (mut dgamma, mut dbeta, mut k_mean, mut k_x) = (e.alloc(c)?, e.alloc(c)?, e.alloc(c)?, e.alloc(c)?);
    kernels::bn_backward_finalize(
        e,
        flat(c),
        &p,
        &partial,
        b.var,
        &mut dgamma,
        &mut dbeta,
        &mut k_mean,
        &mut k_x,
    )?;
    let mut dz = if b.want_dz { Some(e.alloc(rows * c)?) } else { None };
    let dx = output(e, rows * c, |dx| {
        let (y, dz) = (b.relu_out, dz.as_mut());
        kernels::bn_backward_data(e, flat(rows * c), &p, b.x, b.dy, y, center, scale, &k_mean, &k_x, dx, dz)
    })?;
    Ok(BnGrads { dx, dz, dgamma, dbeta })
}
