//! The device launchers of batch normalisation (`kernels/batchnorm.cu`): a training forward and
//! a backward in two launches each (per-block partial sums, then one kernel that adds them and
//! writes every output), an evaluation forward in one.

use crate::cuda::exec::{Exec, Grid};
use crate::cuda::kernels;
use crate::cuda::launch::{MAX_YZ, RED_C, channel_blocks, fits, non_empty, output};
use crate::cuda::params::BnParams;
use crate::error::{Error, Result};

/// Rows per block of the two kernels of a training forward or a backward: `rows / splits` with
/// about `sqrt(rows) / 2` splits.
///
/// Every block of a second kernel re-reads the partial sums of all the splits for its channels
/// before it writes its own rows: `splits^2` rows of partials in all, against `rows` rows of data.
/// With `sqrt(rows) / 2` splits those re-reads (from the L2 cache) are a quarter of the data, and a
/// large input still gets a few hundred blocks: ResNet-20 at batch 128 (131 072, 32 768 and 8 192
/// rows) gets 181, 90 and 45 splits of 725, 365 and 183 rows.
fn reduction_split(rows: usize) -> usize {
    rows.div_ceil((rows / 4).isqrt().max(1))
}

/// Rows per block of the evaluation forward, which reads no partials: about 2 048 elements a
/// block (8 a thread), within the grid's y limit.
fn map_split(rows: usize, c: usize) -> usize {
    (2048 / c.clamp(1, RED_C)).max(rows.div_ceil(MAX_YZ))
}

/// The parameters of a normalisation of `rows x c` values in blocks of `split` rows, after
/// checking the sizes, and the launch shape of its kernels: channel tiles by row splits.
fn bn_params(op: &'static str, [rows, c]: [usize; 2], split: usize) -> Result<(BnParams, Grid)> {
    non_empty(op, "input", rows * c)?;
    fits(op, &[("elements", rows * c)])?;
    let p = BnParams { rows: rows as i32, c: c as i32, split_rows: split as i32, ..BnParams::default() };
    Ok((p, channel_blocks(op, c, rows.div_ceil(split))?))
}

/// The length of a first kernel's per-channel sums, `[splits, 2, c]`.
fn partial_len(p: &BnParams) -> usize {
    2 * (p.rows as usize).div_ceil(p.split_rows as usize) * p.c as usize
}

/// What a normalisation of `x: [rows, c]` reads besides its statistics.
pub struct BnInput<'a, B> {
    /// The input.
    pub x: &'a B,
    /// What is applied to it after centring.
    pub affine: BnAffine<'a, B>,
}

/// What a normalisation applies after centring: the scale and shift, then a residual add and a
/// ReLU (alone in a convolution's batch-norm epilogue, which has no separate input).
pub struct BnAffine<'a, B> {
    /// The scale, `[c]`.
    pub gamma: &'a B,
    /// The shift, `[c]`.
    pub beta: &'a B,
    /// Added to the variance before the square root.
    pub eps: f32,
    /// Added after the affine map, before the ReLU (shaped like the output).
    pub residual: Option<&'a B>,
    /// Whether a ReLU follows.
    pub relu: bool,
}

/// The running statistics a training forward updates in place, `[c]` each.
pub struct Running<'a, B> {
    /// The running mean.
    pub mean: &'a mut B,
    /// The running (unbiased) variance.
    pub var: &'a mut B,
    /// The weight of the batch's statistics.
    pub momentum: f32,
}

/// The outputs of a training forward.
pub struct Trained<B> {
    /// The normalised (and activated) output.
    pub y: B,
    /// The batch mean per channel.
    pub mean: B,
    /// The biased batch variance per channel.
    pub var: B,
}

/// The training forward in two launches: the batch statistics of `x`
/// (`crate::ops::batchnorm::cpu::stats`), then `y = act((x - mean) * gamma / sqrt(var + eps) +
/// beta [+ residual])` (`crate::ops::batchnorm::cpu::forward`), the statistics and, when given,
/// the update of the running statistics (`crate::ops::batchnorm::cpu::update_running`).
pub fn bn_forward_train<E: Exec>(
    e: &E,
    [rows, c]: [usize; 2],
    n: &BnInput<'_, E::Buf<f32>>,
    running: Option<Running<'_, E::Buf<f32>>>,
) -> Result<Trained<E::Buf<f32>>> {
    const OP: &str = "cuda bn_forward_train";
    let (p, grid) = bn_params(OP, [rows, c], reduction_split(rows))?;
    let (momentum, unbias) = momentum_unbias(OP, rows, running.as_ref())?;
    let p = BnParams { relu: n.affine.relu as i32, eps: n.affine.eps, momentum, unbias, ..p };
    let partial = output(e, partial_len(&p), |part| kernels::bn_stats_partial(e, grid, &p, n.x, part))?;
    let (mut y, mut mean, mut var) = (e.alloc(rows * c)?, e.alloc(c)?, e.alloc(c)?);
    let (rm, rv) = match running {
        Some(r) => (Some(r.mean), Some(r.var)),
        None => (None, None),
    };
    let (x, gamma, beta, residual) = (n.x, n.affine.gamma, n.affine.beta, n.affine.residual);
    kernels::bn_forward_train(
        e, grid, &p, x, &partial, gamma, beta, residual, &mut y, &mut mean, &mut var, rm, rv,
    )?;
    Ok(Trained { y, mean, var })
}

/// The forward with given statistics `[center, var]` (`[c]` each) in one launch:
/// `crate::ops::batchnorm::cpu::forward` with `scale = gamma / sqrt(var + eps)`. In evaluation
/// they are the running statistics and `running` is `None`; in training they are the batch
/// statistics of `x` computed before (a convolution's epilogue), folded into `running` when it is
/// given (`crate::ops::batchnorm::cpu::update_running`), as [`bn_forward_train`] does.
pub fn bn_forward<E: Exec>(
    e: &E,
    [rows, c]: [usize; 2],
    n: &BnInput<'_, E::Buf<f32>>,
    [center, var]: [&E::Buf<f32>; 2],
    running: Option<Running<'_, E::Buf<f32>>>,
) -> Result<E::Buf<f32>> {
    const OP: &str = "cuda bn_forward";
    let (p, grid) = bn_params(OP, [rows, c], map_split(rows, c))?;
    let (momentum, unbias) = momentum_unbias(OP, rows, running.as_ref())?;
    let p = BnParams { relu: n.affine.relu as i32, eps: n.affine.eps, momentum, unbias, ..p };
    let (rm, rv) = match running {
        Some(r) => (Some(r.mean), Some(r.var)),
        None => (None, None),
    };
    output(e, rows * c, |y| {
        let a = &n.affine;
        kernels::bn_forward(e, grid, &p, n.x, center, var, a.gamma, a.beta, a.residual, y, rm, rv)
    })
}

/// The momentum of `running` and the factor `rows / (rows - 1)` that unbiases the variance it
/// takes in (0 and 1 without it); an error for one row.
fn momentum_unbias(
    op: &'static str,
    rows: usize,
    running: Option<&Running<'_, impl Sized>>,
) -> Result<(f32, f32)> {
    match running {
        Some(_) if rows < 2 => {
            Err(Error::invalid(op, format!("{rows} value(s) per channel: no unbiased variance")))
        }
        Some(r) => Ok((r.momentum, (rows as f64 / (rows - 1) as f64) as f32)),
        None => Ok((0.0, 1.0)),
    }
}

/// What the backward of a normalisation of `rows x c` values reads.
pub struct BnBackward<'a, B> {
    /// The input `x`.
    pub x: &'a B,
    /// The gradient reaching the output.
    pub dy: &'a B,
    /// The output, when it went through the ReLU (its sign masks `dy`).
    pub relu_out: Option<&'a B>,
    /// The mean the forward subtracted (batch or running).
    pub center: &'a B,
    /// The variance the forward used (batch or running).
    pub var: &'a B,
    /// The forward's scale parameter.
    pub gamma: &'a B,
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

/// The backward of [`bn_forward_train`] or [`bn_forward`] in two launches, as the CPU op composes
/// `backward_sums` and `backward_data` (`crate::ops::batchnorm::cpu`): the per-block sums, then
/// one kernel adding them into `dgamma`, `dbeta` and the coefficients of `dx`, writing `dx` (and
/// `dz`).
pub fn bn_backward<E: Exec>(
    e: &E,
    [rows, c]: [usize; 2],
    b: &BnBackward<'_, E::Buf<f32>>,
) -> Result<BnGrads<E::Buf<f32>>> {
    const OP: &str = "cuda bn_backward";
    let (p, grid) = bn_params(OP, [rows, c], reduction_split(rows))?;
    let p = BnParams { training: b.training as i32, eps: b.eps, ..p };
    let partial = output(e, partial_len(&p), |part| {
        kernels::bn_backward_partial(e, grid, &p, b.x, b.dy, b.relu_out, b.center, part)
    })?;
    let (mut dx, mut dgamma, mut dbeta) = (e.alloc(rows * c)?, e.alloc(c)?, e.alloc(c)?);
    let mut dz = if b.want_dz { Some(e.alloc(rows * c)?) } else { None };
    let (x, dy, y, center, var, gamma) = (b.x, b.dy, b.relu_out, b.center, b.var, b.gamma);
    kernels::bn_backward_data(
        e,
        grid,
        &p,
        x,
        dy,
        y,
        center,
        var,
        gamma,
        &partial,
        &mut dx,
        dz.as_mut(),
        &mut dgamma,
        &mut dbeta,
    )?;
    Ok(BnGrads { dx, dz, dgamma, dbeta })
}

#[cfg(test)]
mod tests {
    use super::{map_split, reduction_split};

    #[test]
    fn reductions_split_the_rows_about_sqrt_rows_over_two_ways() {
        let splits = |rows: usize| rows.div_ceil(reduction_split(rows));
        assert_eq!([1, 7, 8, 513].map(reduction_split), [1, 7, 8, 47]);
        assert_eq!([131_072, 32_768, 8_192].map(reduction_split), [725, 365, 183]);
        assert_eq!([2, 162, 300, 513, 131_072].map(splits), [1, 6, 8, 11, 181]);
    }

    #[test]
    fn the_evaluation_forward_gives_a_block_about_2048_elements() {
        assert_eq!(
            [(1, 1), (100, 16), (100, 33), (100, 64)].map(|(r, c)| map_split(r, c)),
            [2048, 128, 64, 64]
        );
        assert_eq!(map_split(1 << 28, 1), 4097);
    }
}
