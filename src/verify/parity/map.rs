//! Elementwise, channel-selection and SGD kernels: `ops::activation::parity`,
//! `ops::arith::parity` and the others against `ops::channels::cpu` and `optim::cpu`.

use super::{Ctx, Tol};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops;
use crate::ops::channels::cpu as chan;
use crate::ops::channels::launch::{gather_channels, shortcut_a, slice_channels};
use crate::optim::launch::sgd_step;
use crate::optim::{SgdConfig, cpu as sgd};

/// A few operations that a GPU may fuse into one multiply-add.
const FUSED: Tol = Tol { atol: 1e-7, rtol: 1e-6 };

pub(super) fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    // Lengths 1, a block - 1, a block, a block + 1, and several blocks; the activation and the
    // arithmetic kernels share each length's inputs.
    for len in [1, 255, 256, 257, 5000] {
        let (x, y, dy) = (cx.normal(len), cx.normal(len), cx.normal(len));
        ops::activation::parity::check(cx, &x, &dy)?;
        ops::arith::parity::check(cx, &x, &y)?;
    }
    // [rows, c], start..end: sizes 1; the second half of 33 channels; the first half of 64.
    for ([rows, c], start, end) in [([1, 1], 0, 1), ([98, 33], 16, 33), ([50, 64], 0, 32)] {
        let case = format!("x[{rows},{c}] {start}..{end}");
        let (x, dy) = (cx.normal(rows * c), cx.normal(rows * (end - start)));
        let got = slice_channels(cx.e, false, [rows, c], start, end, &cx.up(&x)?)?;
        cx.compare("slice_channels", &case, &got, &chan::slice(&x, c, start, end), Tol::EXACT)?;
        let got = slice_channels(cx.e, true, [rows, c], start, end, &cx.up(&dy)?)?;
        cx.compare(
            "slice_channels_backward",
            &case,
            &got,
            &chan::slice_backward(&dy, c, start, end),
            Tol::EXACT,
        )?;
    }
    // A permutation-like index with repeats (their gradients add up), and a single channel.
    for ([rows, c], index) in
        [([1, 1], vec![0usize]), ([70, 7], vec![6, 0, 6, 3, 2]), ([33, 64], (0..64).rev().collect())]
    {
        let case = format!("x[{rows},{c}] {} indices", index.len());
        let (x, dy) = (cx.normal(rows * c), cx.normal(rows * index.len()));
        let ib = cx.e.upload(&index.iter().map(|&i| i as i32).collect::<Vec<i32>>())?;
        let got = gather_channels(cx.e, false, [rows, c], &ib, &cx.up(&x)?)?;
        cx.compare("gather_channels", &case, &got, &chan::gather(&x, c, &index), Tol::EXACT)?;
        let got = gather_channels(cx.e, true, [rows, c], &ib, &cx.up(&dy)?)?;
        cx.compare("scatter_add_channels", &case, &got, &chan::scatter_add(&dy, c, &index), Tol::EXACT)?;
    }
    // [n, h, w, c] -> c_out: sizes 1; odd sizes; a ResNet stage change (16 -> 32 channels).
    for (dims @ [n, h, w, c], c_out) in [([1, 1, 1, 1], 1), ([2, 9, 7, 3], 5), ([3, 8, 8, 16], 32)] {
        let g = chan::Subsample { n, h, w, c, c_out };
        let case = format!("x[{n},{h},{w},{c}] -> {c_out}");
        let (x, dy) = (cx.normal(n * h * w * c), cx.normal(n * h.div_ceil(2) * w.div_ceil(2) * c_out));
        let got = shortcut_a(cx.e, false, dims, c_out, &cx.up(&x)?)?;
        cx.compare("shortcut_a_forward", &case, &got, &chan::shortcut_a(&g, &x), Tol::EXACT)?;
        let got = shortcut_a(cx.e, true, dims, c_out, &cx.up(&dy)?)?;
        cx.compare("shortcut_a_backward", &case, &got, &chan::shortcut_a_backward(&g, &dy), Tol::EXACT)?;
    }
    sgd_steps(cx)
}

/// Two steps of each optimiser setting (the first initialises the momentum buffer).
fn sgd_steps<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    let settings = [(0.0, 0.0, false), (0.0, 5e-4, false), (0.9, 5e-4, false), (0.9, 5e-4, true)];
    for (momentum, weight_decay, nesterov) in settings {
        let cfg = SgdConfig { lr: 0.1, momentum, weight_decay, nesterov };
        let len = 1000;
        let case = format!("len {len} m {momentum} wd {weight_decay} nesterov {nesterov}");
        let (mut p, mut buf) = (cx.normal(len), vec![0.0; len]);
        let (mut pb, mut bb) = (cx.up(&p)?, cx.up(&buf)?);
        for first in [true, false] {
            let g = cx.normal(len);
            let gb = cx.up(&g)?;
            if momentum > 0.0 {
                sgd::step_momentum(&cfg, &mut p, &g, &mut buf, first);
                sgd_step(cx.e, &cfg, first, &gb, &mut pb, Some(&mut bb))?;
                cx.compare("sgd_step", &format!("{case} buffer"), &bb, &buf, FUSED)?;
            } else {
                sgd::step_plain(&cfg, &mut p, &g);
                sgd_step(cx.e, &cfg, first, &gb, &mut pb, None)?;
            }
            cx.compare("sgd_step", &format!("{case} first {first}"), &pb, &p, FUSED)?;
        }
    }
    Ok(())
}
