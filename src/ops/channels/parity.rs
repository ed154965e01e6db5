//! Parity of the channel-selection and option-A shortcut kernels with the CPU path (`cpu`), bit
//! for bit.

use super::cpu;
use super::launch::{gather_channels, shortcut_a, slice_channels};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// Slices, gathers with repeated indices and shortcuts, forward and backward.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    // [rows, c], start..end: sizes 1; the second half of 33 channels; the first half of 64.
    for ([rows, c], start, end) in [([1, 1], 0, 1), ([98, 33], 16, 33), ([50, 64], 0, 32)] {
        let case = format!("x[{rows},{c}] {start}..{end}");
        let (x, dy) = (cx.normal(rows * c), cx.normal(rows * (end - start)));
        let got = slice_channels(cx.e, false, [rows, c], start, end, &cx.up(&x)?)?;
        cx.compare("slice_channels", &case, &got, &cpu::slice(&x, c, start, end), Tol::EXACT)?;
        let got = slice_channels(cx.e, true, [rows, c], start, end, &cx.up(&dy)?)?;
        cx.compare(
            "slice_channels_backward",
            &case,
            &got,
            &cpu::slice_backward(&dy, c, start, end),
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
        cx.compare("gather_channels", &case, &got, &cpu::gather(&x, c, &index), Tol::EXACT)?;
        let got = gather_channels(cx.e, true, [rows, c], &ib, &cx.up(&dy)?)?;
        cx.compare("scatter_add_channels", &case, &got, &cpu::scatter_add(&dy, c, &index), Tol::EXACT)?;
    }
    // [n, h, w, c] -> c_out: sizes 1; odd sizes; a ResNet stage change (16 -> 32 channels).
    for (dims @ [n, h, w, c], c_out) in [([1, 1, 1, 1], 1), ([2, 9, 7, 3], 5), ([3, 8, 8, 16], 32)] {
        let g = cpu::Subsample { n, h, w, c, c_out };
        let case = format!("x[{n},{h},{w},{c}] -> {c_out}");
        let (x, dy) = (cx.normal(n * h * w * c), cx.normal(n * h.div_ceil(2) * w.div_ceil(2) * c_out));
        let got = shortcut_a(cx.e, false, dims, c_out, &cx.up(&x)?)?;
        cx.compare("shortcut_a_forward", &case, &got, &cpu::shortcut_a(&g, &x), Tol::EXACT)?;
        let got = shortcut_a(cx.e, true, dims, c_out, &cx.up(&dy)?)?;
        cx.compare("shortcut_a_backward", &case, &got, &cpu::shortcut_a_backward(&g, &dy), Tol::EXACT)?;
    }
    Ok(())
}
