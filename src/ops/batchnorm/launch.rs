//! The device launchers of batch normalisation (`kernels/batchnorm.cu`).

use crate::cuda::exec::{Arg, Exec};
use crate::cuda::launch::{channel_blocks, expect_len, fits, flat, non_empty};
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
    expect_len(e, OP, "input", x, rows * c)?;
    let splits = rows.div_ceil(SPLIT_ROWS);
    let mut partial = e.alloc(2 * splits * c)?;
    let (mut mean, mut var) = (e.alloc(c)?, e.alloc(c)?);
    // SAFETY: bn_stats_partial(BnParams, x, partial) writes 2 * splits * c sums;
    // bn_stats_finalize(BnParams, x, partial, mean, var) reads them; lengths checked above.
    unsafe {
        e.launch(
            "bn_stats_partial",
            channel_blocks(OP, c, splits)?,
            &p,
            &mut [Arg::In(x), Arg::Out(&mut partial)],
        )?;
        e.launch(
            "bn_stats_finalize",
            flat(c),
            &p,
            &mut [Arg::In(x), Arg::In(&partial), Arg::Out(&mut mean), Arg::Out(&mut var)],
        )?;
    }
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
    const OP: &str = "cuda bn_scale";
    let p = BnParams { eps, ..bn_params(OP, 1, c)? };
    expect_len(e, OP, "gamma", gamma, c)?;
    expect_len(e, OP, "variance", var, c)?;
    let mut scale = e.alloc(c)?;
    // SAFETY: bn_scale(BnParams, gamma, var, scale) over c channels, lengths checked above.
    unsafe { e.launch("bn_scale", flat(c), &p, &mut [Arg::In(gamma), Arg::In(var), Arg::Out(&mut scale)])? };
    Ok(scale)
}

/// Folds a batch's `mean` and biased `var` (`count` values per channel) into the running
/// statistics in place: `crate::ops::batchnorm::update_running_stats`.
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
    expect_len(e, OP, "batch variance", var, c)?;
    expect_len(e, OP, "running mean", running_mean, c)?;
    expect_len(e, OP, "running variance", running_var, c)?;
    // SAFETY: bn_running_update(BnParams, mean, var, running_mean, running_var) over c channels.
    unsafe {
        e.launch(
            "bn_running_update",
            flat(c),
            &p,
            &mut [Arg::In(mean), Arg::In(var), Arg::Out(running_mean), Arg::Out(running_var)],
        )
    }
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
    const OP: &str = "cuda bn_forward";
    let p = BnParams { relu: relu as i32, ..bn_params(OP, rows, c)? };
    expect_len(e, OP, "input", x, rows * c)?;
    for (what, v) in [("center", affine.center), ("scale", affine.scale), ("beta", affine.beta)] {
        expect_len(e, OP, what, v, c)?;
    }
    if let Some(r) = residual {
        expect_len(e, OP, "residual", r, rows * c)?;
    }
    let mut y = e.alloc(rows * c)?;
    let residual = residual.map_or(Arg::Null, Arg::In);
    // SAFETY: bn_forward(BnParams, x, center, scale, beta, residual, y), lengths checked above.
    unsafe {
        e.launch(
            "bn_forward",
            flat(rows * c),
            &p,
            &mut [
                Arg::In(x),
                Arg::In(affine.center),
                Arg::In(affine.scale),
                Arg::In(affine.beta),
                residual,
                Arg::Out(&mut y),
            ],
        )?;
    }
    Ok(y)
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
    for (what, v) in
        [("input", b.x), ("output gradient", b.dy)].into_iter().chain(b.relu_out.map(|y| ("output", y)))
    {
        expect_len(e, OP, what, v, rows * c)?;
    }
    for (what, v) in [("center", b.affine.center), ("scale", b.affine.scale), ("variance", b.var)] {
        expect_len(e, OP, what, v, c)?;
    }
    let splits = rows.div_ceil(SPLIT_ROWS);
    let mut partial = e.alloc(2 * splits * c)?;
    let (mut dgamma, mut dbeta, mut k_mean, mut k_x) = (e.alloc(c)?, e.alloc(c)?, e.alloc(c)?, e.alloc(c)?);
    let mut dx = e.alloc(rows * c)?;
    let mut dz = if b.want_dz { Some(e.alloc(rows * c)?) } else { None };
    let y = || b.relu_out.map_or(Arg::Null, Arg::In);
    // SAFETY: bn_backward_partial(BnParams, x, dy, y, center, partial) writes 2 * splits * c sums;
    // bn_backward_finalize(BnParams, partial, var, dgamma, dbeta, k_mean, k_x) and
    // bn_backward_data(BnParams, x, dy, y, center, scale, k_mean, k_x, dx, dz) stay within the
    // lengths checked or allocated above.
    unsafe {
        e.launch(
            "bn_backward_partial",
            channel_blocks(OP, c, splits)?,
            &p,
            &mut [Arg::In(b.x), Arg::In(b.dy), y(), Arg::In(b.affine.center), Arg::Out(&mut partial)],
        )?;
        e.launch(
            "bn_backward_finalize",
            flat(c),
            &p,
            &mut [
                Arg::In(&partial),
                Arg::In(b.var),
                Arg::Out(&mut dgamma),
                Arg::Out(&mut dbeta),
                Arg::Out(&mut k_mean),
                Arg::Out(&mut k_x),
            ],
        )?;
        e.launch(
            "bn_backward_data",
            flat(rows * c),
            &p,
            &mut [
                Arg::In(b.x),
                Arg::In(b.dy),
                y(),
                Arg::In(b.affine.center),
                Arg::In(b.affine.scale),
                Arg::In(&k_mean),
                Arg::In(&k_x),
                Arg::Out(&mut dx),
                dz.as_mut().map_or(Arg::Null, Arg::Out),
            ],
        )?;
    }
    Ok(BnGrads { dx, dz, dgamma, dbeta })
}
