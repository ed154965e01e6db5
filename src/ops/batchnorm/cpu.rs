//! Batch normalisation on the CPU: data is `rows x c` (channels-last, a row is one pixel's `c`
//! contiguous values), rayon over chunks of rows.
//!
//! Per-channel reductions accumulate in f32 within blocks of [`BLOCK_ROWS`] rows, then in f64
//! per group of tasks, added in a fixed order (`ordered_sum`). The statistics sum `d = x - x[0, :]` and `d^2` (a shift by the
//! first row), so a large mean does not cancel the variance away.

use std::mem::MaybeUninit;
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

/// `y = act((x - center) * scale + beta [+ residual])`, `act` ReLU when `relu`, else the identity;
/// one pass, each output written once.
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
    let mut y = Vec::with_capacity(x.len());
    y.spare_capacity_mut()[..x.len()].par_chunks_mut(per).enumerate().for_each(|(task, y)| {
        let range = task * per..task * per + y.len();
        let act = |v: f32| if !relu || v > 0.0 { v } else { 0.0 };
        let rows = y.chunks_exact_mut(c).zip(x[range.clone()].chunks_exact(c));
        let norm = |(yr, xr): (&mut [MaybeUninit<f32>], &[f32]), res: Option<&[f32]>| {
            let terms = yr.iter_mut().zip(xr).zip(center).zip(scale).zip(beta).enumerate();
            for (i, ((((y, &v), &m), &s), &b)) in terms {
                let v = (v - m) * s + b;
                y.write(act(res.map_or(v, |r| v + r[i])));
            }
        };
        match residual {
            Some(r) => rows.zip(r[range].chunks_exact(c)).for_each(|(row, r)| norm(row, Some(r))),
            None => rows.for_each(|row| norm(row, None)),
        }
    });
    // SAFETY: the chunks cover `x.len()` elements and each was written above.
    unsafe { y.set_len(x.len()) };
    y
}

/// Per-channel `sum dz` and `sum dz * (x - center)`, with `dz` the upstream gradient `dy`, masked
/// by `y > 0` when the ReLU output `y` is given.
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

/// `dx` for the coefficients `k`, and `dz` (the residual's gradient) when `want_dz`; one pass,
/// each output written once.
pub(crate) fn backward_data(
    x: &[f32],
    dy: &[f32],
    y: Option<&[f32]>,
    c: usize,
    k: &DxCoefficients,
    want_dz: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (len, per) = (x.len(), rows_per_task(c) * c);
    let chunk = |task: usize, dx: &mut [MaybeUninit<f32>], mut dz: Option<&mut [MaybeUninit<f32>]>| {
        let off = task * per;
        for (r, dr) in dx.chunks_exact_mut(c).enumerate() {
            let o = off + r * c;
            let (xr, gr, yr) = (&x[o..o + c], &dy[o..o + c], y.map(|y| &y[o..o + c]));
            let mut dzr = dz.as_deref_mut().map(|dz| &mut dz[r * c..(r + 1) * c]);
            let coefs = k.center.iter().zip(k.scale).zip(k.k_mean).zip(k.k_x);
            for (i, (((d, &v), &g), (((&m, &s), &km), &kx))) in
                dr.iter_mut().zip(xr).zip(gr).zip(coefs).enumerate()
            {
                let g = match yr {
                    Some(yr) if yr[i] <= 0.0 || yr[i].is_nan() => 0.0,
                    _ => g,
                };
                if let Some(dzr) = dzr.as_deref_mut() {
                    dzr[i].write(g);
                }
                d.write(s * (g - km - (v - m) * kx));
            }
        }
    };
    let mut dx = Vec::with_capacity(len);
    let mut dz = want_dz.then(|| Vec::with_capacity(len));
    let dx_chunks = dx.spare_capacity_mut()[..len].par_chunks_mut(per).enumerate();
    match dz.as_mut() {
        Some(dz) => dx_chunks
            .zip(dz.spare_capacity_mut()[..len].par_chunks_mut(per))
            .for_each(|((t, dx), dz)| chunk(t, dx, Some(dz))),
        None => dx_chunks.for_each(|(t, dx)| chunk(t, dx, None)),
    }
    // SAFETY: the chunks cover `len` elements of `dx` (and of `dz` when wanted), each written above.
    unsafe {
        dx.set_len(len);
        if let Some(dz) = dz.as_mut() {
            dz.set_len(len);
        }
    }
    (dx, dz)
}
