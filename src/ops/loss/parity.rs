//! Parity of the loss kernels with the CPU paths of [`cross_entropy`](mod@super::cross_entropy),
//! [`kd`](super::kd), [`factor`](super::factor), [`attention`](super::attention) and
//! [`recon`](super::recon), and of OD's [`partial_l2`](mod@super::partial_l2).

use rand::Rng;

use super::factor::FactorNorm;
use super::launch::{
    RowReduce, TwoGrads, channel_mean_square, diff_backward, dots_backward, kd_backward, kd_forward,
    normalize_rows, normalize_rows_backward, partial_l2_backward, partial_l2_rows, row_reduce, softmax_ce,
    softmax_ce_backward,
};
use super::{
    attention::cpu as at, cross_entropy::cpu as ce, factor::cpu as factor, kd::cpu as kd,
    partial_l2::cpu as partial, recon::cpu as recon,
};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// Exponentials, logarithms and short sums in another order.
const ROW: Tol = Tol { atol: 1e-6, rtol: 1e-5 };
/// Long sums (a whole row or batch) in another order.
const REDUCTION: Tol = Tol { atol: 1e-5, rtol: 1e-4 };

/// Cross-entropy and KD on heads of one to 100 classes, then the factor and reconstruction
/// kernels, then the attention maps.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    // [rows, classes]: sizes 1; CIFAR-10 and CIFAR-100 heads; a warp of classes, and one more.
    for [rows, k] in [[1, 1], [3, 10], [33, 100], [8, 32], [9, 33]] {
        let case = format!("z[{rows},{k}]");
        let z: Vec<f32> = cx.normal(rows * k).iter().map(|v| 3.0 * v).collect();
        let labels: Vec<usize> = (0..rows).map(|_| cx.rng.random_range(0..k)).collect();
        let (zb, lb) = (cx.up(&z)?, cx.e.upload(&labels.iter().map(|&y| y as i32).collect::<Vec<i32>>())?);
        let mut prob = vec![0.0; rows * k];
        let loss = (ce::forward(k, &z, &labels, &mut prob) / rows as f64) as f32;
        let scale = 1.0 / rows as f32;
        let dz = ce::backward(k, &prob, &labels, scale);
        let fused = softmax_ce(cx.e, [rows, k], &zb, &lb, true, Some(scale))?;
        cx.compare("softmax_ce+column_sums", &format!("{case} loss"), &fused.loss, &[loss], ROW)?;
        cx.compare_opt("softmax_ce", &format!("{case} softmax"), fused.prob.as_ref(), &prob, ROW)?;
        cx.compare_opt("softmax_ce", &format!("{case} fused gradient"), fused.dz.as_ref(), &dz, ROW)?;
        let alone = softmax_ce(cx.e, [rows, k], &zb, &lb, false, None)?;
        cx.compare("softmax_ce+column_sums", &format!("{case} loss only"), &alone.loss, &[loss], ROW)?;
        let got = softmax_ce_backward(cx.e, [rows, k], scale, &cx.up(&prob)?, &lb)?;
        cx.compare("softmax_ce_backward", &case, &got, &dz, ROW)?;

        for t in [1.0f32, 4.0] {
            let case = format!("{case} T {t}");
            let teacher: Vec<f32> = cx.normal(rows * k).iter().map(|v| 3.0 * v).collect();
            let (mut ls, mut lt) = (vec![0.0; rows * k], vec![0.0; rows * k]);
            let sum = kd::forward(k, &z, &teacher, 1.0 / t, &mut ls, &mut lt);
            let loss = ((t as f64).powi(2) * sum / rows as f64) as f32;
            let got = kd_forward(cx.e, [rows, k], t, &zb, &cx.up(&teacher)?)?;
            cx.compare("kd_forward+column_sums", &format!("{case} loss"), &got.loss, &[loss], REDUCTION)?;
            cx.compare("kd_forward", &format!("{case} log p_s"), &got.ls, &ls, ROW)?;
            cx.compare("kd_forward", &format!("{case} log p_t"), &got.lt, &lt, ROW)?;
            let scale = t / rows as f32;
            let TwoGrads { first: ds, second: dt } =
                kd_backward(cx.e, [rows, k], scale, [&cx.up(&ls)?, &cx.up(&lt)?], true)?;
            cx.compare(
                "kd_backward",
                &format!("{case} student"),
                &ds,
                &kd::backward_student(&ls, &lt, scale),
                ROW,
            )?;
            let want = kd::backward_teacher(k, &ls, &lt, scale);
            cx.compare_opt("kd_backward", &format!("{case} teacher"), dt.as_ref(), &want, ROW)?;
        }
    }
    factors(cx)?;
    // [pixels, channels]: sizes 1; 33 channels (one past a warp); 9x9 maps of 64 channels.
    for [pixels, c] in [[1, 1], [50, 33], [81, 64]] {
        let case = format!("x[{pixels},{c}]");
        let (x, dq) = (cx.normal(pixels * c), cx.normal(pixels));
        let xb = cx.up(&x)?;
        let got = channel_mean_square(cx.e, [pixels, c], &xb, None)?;
        cx.compare("channel_mean_square", &case, &got, &at::channel_mean_square(c, &x), ROW)?;
        let got = channel_mean_square(cx.e, [pixels, c], &xb, Some(&cx.up(&dq)?))?;
        let want = at::channel_mean_square_backward(c, &x, &dq);
        cx.compare("channel_mean_square_backward", &case, &got, &want, ROW)?;
    }
    Ok(())
}

/// Normalisation, distances, dot products and the L1 / L2 gradients of the factor and
/// reconstruction losses.
fn factors<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    // [rows, d]: sizes 1; a block + 1; an all-zero row (the NORM_EPS guard); long rows.
    for ([rows, d], zero_row) in [([1, 1], false), ([2, 257], true), ([3, 300], false), ([4, 2048], false)] {
        let case = format!("x[{rows},{d}]{}", if zero_row { " zero row" } else { "" });
        let mut a = cx.normal(rows * d);
        if zero_row {
            a[d..2 * d].fill(0.0);
        }
        let (b, g) = (cx.normal(rows * d), cx.normal(rows * d));
        let (ab, bb) = (cx.up(&a)?, cx.up(&b)?);
        let (mut pa, mut pb) = (vec![0.0; rows * d], vec![0.0; rows * d]);
        let (na, _) = (factor::normalize_rows(d, &a, &mut pa), factor::normalize_rows(d, &b, &mut pb));
        let (phi, norms) = normalize_rows(cx.e, [rows, d], &ab)?;
        cx.compare("normalize_rows", &format!("{case} phi"), &phi, &pa, ROW)?;
        cx.compare("normalize_rows", &format!("{case} norms"), &norms, &na, REDUCTION)?;
        let got = normalize_rows_backward(cx.e, [rows, d], [&cx.up(&pa)?, &cx.up(&na)?, &cx.up(&g)?])?;
        cx.compare(
            "normalize_rows_backward",
            &case,
            &got,
            &factor::normalize_rows_backward(d, &pa, &na, &g),
            REDUCTION,
        )?;

        let (pab, pbb) = (cx.up(&pa)?, cx.up(&pb)?);
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        let reductions = [
            (RowReduce::AbsDiff, f32s(factor::distance(d, &pa, &pb, FactorNorm::L1))),
            (RowReduce::SquaredDiff, f32s(factor::distance(d, &pa, &pb, FactorNorm::L2))),
            (RowReduce::Dot, f32s(factor::dots(d, &pa, &pb))),
        ];
        for (f, want) in reductions {
            let got = row_reduce(cx.e, [rows, d], f, &pab, &pbb)?;
            cx.compare("row_distance", &format!("{case} {f:?}"), &got, &want, REDUCTION)?;
        }
        let dots = f32s(factor::dots(d, &pa, &pb));
        let got = dots_backward(cx.e, [rows, d], 0.25, &cx.up(&dots)?, &pbb)?;
        cx.compare("dots_backward", &case, &got, &factor::dots_backward(d, &dots, &pb, 0.25), ROW)?;

        for (squared, norm) in [(false, FactorNorm::L1), (true, FactorNorm::L2)] {
            let case = format!("{case} squared {squared}");
            let TwoGrads { first: ga, second: gb } = diff_backward(cx.e, squared, -0.5, &ab, &bb, true)?;
            let want = recon::backward(&a, &b, squared, -0.5);
            cx.compare("diff_backward (recon)", &case, &ga, &want, ROW)?;
            let neg: Vec<f32> = want.iter().map(|g| -g).collect();
            cx.compare_opt("diff_backward (recon)", &format!("{case} other"), gb.as_ref(), &neg, ROW)?;
            let ga = diff_backward(cx.e, squared, 0.5, &pab, &pbb, false)?.first;
            cx.compare(
                "diff_backward (factor)",
                &case,
                &ga,
                &factor::distance_backward(&pa, &pb, norm, 0.5),
                ROW,
            )?;
            let sum = recon::forward(&a, &b, squared) as f32;
            let got = row_reduce(
                cx.e,
                [1, rows * d],
                if squared { RowReduce::SquaredDiff } else { RowReduce::AbsDiff },
                &ab,
                &bb,
            )?;
            cx.compare("row_distance (recon sum)", &case, &got, &[sum], REDUCTION)?;
        }
    }
    Ok(())
}

/// The partial L2 kernels of OD: per-row sums and the gradients, on rows of one element to a
/// block + 1 and more; run after every other suite (appended to `run_all`).
pub fn partial_l2<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    // [rows, d]: sizes 1; a block + 1; 8x8 maps of 33 channels.
    for [rows, d] in [[1, 1], [3, 257], [2, 64 * 33]] {
        let case = format!("s,t[{rows},{d}]");
        let (s, t) = (cx.normal(rows * d), cx.normal(rows * d));
        let (sb, tb) = (cx.up(&s)?, cx.up(&t)?);
        let want: Vec<f32> = partial::rows(d, &s, &t).into_iter().map(|v| v as f32).collect();
        let got = partial_l2_rows(cx.e, [rows, d], &sb, &tb)?;
        cx.compare("partial_l2_rows", &case, &got, &want, REDUCTION)?;
        let TwoGrads { first, second } = partial_l2_backward(cx.e, 0.25, &sb, &tb, true)?;
        let want = partial::backward(&s, &t, 0.25);
        cx.compare("partial_l2_backward", &case, &first, &want, ROW)?;
        let neg: Vec<f32> = want.iter().map(|g| -g).collect();
        cx.compare_opt("partial_l2_backward", &format!("{case} target"), second.as_ref(), &neg, ROW)?;
    }
    Ok(())
}
