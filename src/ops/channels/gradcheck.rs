//! Gradient-check cases of `slice_channels`, `gather_channels` and `shortcut_a`.

use super::reference;
use crate::ops;
use crate::ops::check::gradcheck::Case;

/// Slices at the start, middle and end, gathers with repeats and reversals, shortcuts that widen
/// and keep the channels, on 4-D maps and matrices.
pub fn cases() -> Vec<Case> {
    let slice = |x: &[usize], s: usize, e: usize| {
        let c = *x.last().expect("rank >= 1");
        let (fast, r) = (
            move |t: &[_]| ops::slice_channels(&t[0], s, e),
            move |v: &[Vec<f64>]| reference::slice_channels(&v[0], c, s, e),
        );
        Case::unary("slice_channels", format!("{s}..{e}"), x, Box::new(fast), Box::new(r))
    };
    let gather = |x: &[usize], idx: &[usize]| {
        let (c, i1, i2) = (*x.last().expect("rank >= 1"), idx.to_vec(), idx.to_vec());
        let (fast, r) = (
            move |t: &[_]| ops::gather_channels(&t[0], &i1),
            move |v: &[Vec<f64>]| reference::gather_channels(&v[0], c, &i2),
        );
        Case::unary("gather_channels", format!("{idx:?}"), x, Box::new(fast), Box::new(r))
    };
    let shortcut = |x: [usize; 4], c_out: usize| {
        let (fast, r) = (
            move |t: &[_]| ops::shortcut_a(&t[0], c_out),
            move |v: &[Vec<f64>]| reference::shortcut_a(&v[0], x, c_out),
        );
        Case::unary("shortcut_a", format!("-> {c_out} channels"), &x, Box::new(fast), Box::new(r))
    };
    vec![
        slice(&[3, 4, 5, 7], 2, 5),
        slice(&[1, 3, 2, 6], 0, 3),
        slice(&[2, 5, 4, 6], 3, 6),
        slice(&[3, 5], 1, 4),
        gather(&[2, 3, 4, 6], &[5, 0, 0, 3]),
        gather(&[1, 2, 3, 5], &[4, 2, 0, 1, 3]),
        gather(&[3, 7], &[6, 6, 1]),
        shortcut([2, 5, 3, 3], 7),
        shortcut([1, 4, 6, 4], 8),
        shortcut([3, 3, 3, 2], 2),
    ]
}
