//! Batch normalisation on the CPU: data is `rows x c` (channels-last, a row is one pixel's `c`
//! contiguous values), rayon over chunks of rows.
//!
//! Per-channel reductions accumulate in f32 within blocks of [`BLOCK_ROWS`] rows, then in f64
//! per group of tasks, added in a fixed order (`ordered_sum`). The statistics sum `d = x - x[0, :]` and `d^2` (a shift by the
//! first row), so a large mean does not cancel the variance away.

use std::ops::Range;

use rayon::prelude::*;

use crate::cpu::reduce::ordered_sum;

/// Elements a rayon task aims for.
const TASK_ELEMS: usize = 1 << 14;
/// Rows summed in f32 before the block is added to the f64 total.
const BLOCK_ROWS: usize = 32;

fn rows_per_task(c: usize) -> usize {
    (TASK_ELEMS / c).max(1)
}

/// Two per-channel sums over `rows` rows: `add_rows(range, a, b)` adds the contributions of the
/// rows in `range` to the f32 accumulators `a` and `b` (each `c` long).
fn channel_sums(
    rows: usize,
    c: usize,
    add_rows: impl Fn(Range<usize>, &mut [f32], &mut [f32]) + Sync,
) -> (Vec<f64>, Vec<f64>) {
    let per = rows_per_task(c);
    let totals = ordered_sum(rows.div_ceil(per), 2 * c, |tasks, acc: &mut [f64]| {
        let (mut a, mut b) = (vec![0.0f32; c], vec![0.0f32; c]);
        let end = (tasks.end * per).min(rows);
        let mut start = tasks.start * per;
        while start < end {
            let stop = (start + BLOCK_ROWS).min(end);
            a.fill(0.0);
            b.fill(0.0);
            add_rows(start..stop, &mut a, &mut b);
            let (acc_a, acc_b) = acc.split_at_mut(c);
            acc_a.iter_mut().zip(&a).for_each(|(s, &v)| *s += v as f64);
            acc_b.iter_mut().zip(&b).for_each(|(s, &v)| *s += v as f64);
            start = stop;
        }
    });
    let b = totals[c..].to_vec();
    let mut a = totals;
    a.truncate(c);
    (a, b)
}

/// Per-channel mean and biased variance of `x` (`rows x c`, `rows >= 1`), in one pass.
pub(crate) fn stats(x: &[f32], c: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / c;
    let shift = &x[..c];
    let (s1, s2) = channel_sums(rows, c, |range, a, b| {
        for row in x[range.start * c..range.end * c].chunks_exact(c) {
            for (((a, b), &v), &s) in a.iter_mut().zip(b.iter_mut()).zip(row).zip(shift) {
                let d = v - s;
                *a += d;
                *b += d * d;
            }
        }
    });
    let n = rows as f64;
    let mean = s1.iter().zip(shift).map(|(s, &k)| (k as f64 + s / n) as f32).collect();
    let var = s1.iter().zip(&s2).map(|(s1, s2)| (s2 / n - (s1 / n).powi(2)).max(0.0) as f32).collect();
    (mean, var)
}

/// Folds a batch's `mean` and biased `var` (`count >= 2` values per channel) into the running
/// statistics in place: `running = (1 - momentum) * running + momentum * stat`, the variance
/// unbiased by `count / (count - 1)`.
pub(crate) fn update_running(
    [running_mean, running_var]: [&mut [f32]; 2],
    [mean, var]: [&[f32]; 2],
    count: usize,
    momentum: f32,
) {
    let unbias = (count as f64 / (count - 1) as f64) as f32;
    for (r, &m) in running_mean.iter_mut().zip(mean) {
        *r = (1.0 - momentum) * *r + momentum * m;
    }
    for (r, &v) in running_var.iter_mut().zip(var) {
        *r = (1.0 - momentum) * *r + momentum * v * unbias;
    }
}

/// `y = act((x - center) * scale + beta [+ residual])`, `act` ReLU when `relu`, else the identity.
pub(crate) fn forward(
    x: &[f32],
    c: usize,
    center: &[f32],
    scale: &[f32],
    beta: &[f32],
    residual: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    let per = rows_per_task(c) * c;
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(per).enumerate().for_each(|(task, y)| {
        let range = task * per..task * per + y.len();
        for (yr, xr) in y.chunks_exact_mut(c).zip(x[range.clone()].chunks_exact(c)) {
            for ((((y, &v), &m), &s), &b) in yr.iter_mut().zip(xr).zip(center).zip(scale).zip(beta) {
                *y = (v - m) * s + b;
            }
        }
        if let Some(r) = residual {
            y.iter_mut().zip(&r[range]).for_each(|(y, r)| *y += r);
        }
        if relu {
            y.iter_mut().for_each(|y| *y = if *y > 0.0 { *y } else { 0.0 });
        }
    });
    y
}

/// The upstream gradient of the normalised value: `dy`, masked by `y > 0` when the ReLU output
/// `y` is given.
fn masked(dy: &[f32], y: Option<&[f32]>, dz: &mut [f32]) {
    match y {
        Some(y) => dz.iter_mut().zip(dy).zip(y).for_each(|((z, &g), &v)| *z = if v > 0.0 { g } else { 0.0 }),
        None => dz.copy_from_slice(dy),
    }
}

/// Per-channel `sum dz` and `sum dz * (x - center)`, with `dz` as in [`masked`].
pub(crate) fn backward_sums(
    x: &[f32],
    dy: &[f32],
    y: Option<&[f32]>,
    c: usize,
    center: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    channel_sums(x.len() / c, c, |range, a, b| {
        for o in range.map(|r| r * c) {
            let (dy, x) = (&dy[o..o + c], &x[o..o + c]);
            let sums = a.iter_mut().zip(b.iter_mut()).zip(dy).zip(x).zip(center);
            match y {
                Some(y) => sums.zip(&y[o..o + c]).for_each(|(((((a, b), &g), &v), &m), &out)| {
                    let g = if out > 0.0 { g } else { 0.0 };
                    *a += g;
                    *b += g * (v - m);
                }),
                None => sums.for_each(|((((a, b), &g), &v), &m)| {
                    *a += g;
                    *b += g * (v - m);
                }),
            }
        }
    })
}

/// The per-channel coefficients of `dx = scale * (dz - k_mean - (x - center) * k_x)`.
pub(crate) struct DxCoefficients<'a> {
    /// The subtracted mean of `x`.
    pub center: &'a [f32],
    /// `gamma / sqrt(var + eps)`.
    pub scale: &'a [f32],
    /// `sum dz / n` in training, 0 in evaluation.
    pub k_mean: &'a [f32],
    /// `sum dz (x - mean) / (n (var + eps))` in training, 0 in evaluation.
    pub k_x: &'a [f32],
}

/// `dx` for the coefficients `k`, and `dz` (the residual's gradient) when `want_dz`.
pub(crate) fn backward_data(
    x: &[f32],
    dy: &[f32],
    y: Option<&[f32]>,
    c: usize,
    k: &DxCoefficients,
    want_dz: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let per = rows_per_task(c) * c;
    let chunk = |task: usize, dx: &mut [f32], dz: Option<&mut [f32]>| {
        let off = task * per;
        let range = off..off + dx.len();
        masked(&dy[range.clone()], y.map(|y| &y[range.clone()]), dx);
        if let Some(dz) = dz {
            dz.copy_from_slice(dx);
        }
        for (dr, xr) in dx.chunks_exact_mut(c).zip(x[range].chunks_exact(c)) {
            for (((((d, &v), &m), &s), &km), &kx) in
                dr.iter_mut().zip(xr).zip(k.center).zip(k.scale).zip(k.k_mean).zip(k.k_x)
            {
                *d = s * (*d - km - (v - m) * kx);
            }
        }
    };
    let mut dx = vec![0.0; x.len()];
    if want_dz {
        let mut dz = vec![0.0; x.len()];
        dx.par_chunks_mut(per)
            .zip(dz.par_chunks_mut(per))
            .enumerate()
            .for_each(|(t, (dx, dz))| chunk(t, dx, Some(dz)));
        (dx, Some(dz))
    } else {
        dx.par_chunks_mut(per).enumerate().for_each(|(t, dx)| chunk(t, dx, None));
        (dx, None)
    }
}
