//! Gradient-check cases of `conv2d` and `conv_transpose2d`.

use super::reference::{self, Operands};
use crate::ops;
use crate::ops::check::gradcheck::{Case, Input};

fn arr4(s: &[usize]) -> [usize; 4] {
    [s[0], s[1], s[2], s[3]]
}

fn conv_case(x: [usize; 4], w: [usize; 4], stride: usize, pad: usize, bias: bool) -> Case {
    let mut inputs = vec![Input::normal("x", &x), Input::normal("weight", &w)];
    if bias {
        inputs.push(Input::normal("bias", &[w[0]]));
    }
    Case::new(
        "conv2d",
        format!("x{x:?} w{w:?} s{stride} p{pad}{}", if bias { " +b" } else { "" }),
        inputs,
        Box::new(move |t| ops::conv2d(&t[0], &t[1], t.get(2), stride, pad)),
        Box::new(move |v| {
            reference::conv2d(
                Operands { x: &v[0], xs: x, w: &v[1], ws: w, b: v.get(2).map(Vec::as_slice) },
                stride,
                pad,
            )
        }),
    )
}

fn conv_transpose_case(x: [usize; 4], w: [usize; 4], stride: usize, pad: usize) -> Case {
    Case::new(
        "conv_transpose2d",
        format!("x{x:?} w{w:?} s{stride} p{pad} +b"),
        vec![Input::normal("x", &x), Input::normal("weight", &w), Input::normal("bias", &[w[1]])],
        Box::new(move |t| ops::conv_transpose2d(&t[0], &t[1], Some(&t[2]), stride, pad)),
        Box::new(move |v| {
            reference::conv_transpose2d(
                Operands { x: &v[0], xs: arr4(&x), w: &v[1], ws: w, b: Some(&v[2]) },
                stride,
                pad,
            )
        }),
    )
}

/// Stride 1 and 2, 3x3 and 1x1, odd channels, H != W, batch 1 and 3, with and without bias.
pub fn cases() -> Vec<Case> {
    vec![
        conv_case([3, 5, 7, 3], [4, 3, 3, 3], 1, 1, true),
        conv_case([1, 6, 5, 5], [3, 5, 3, 3], 2, 1, false),
        conv_case([3, 7, 6, 4], [5, 4, 1, 1], 2, 0, false),
        conv_case([2, 4, 4, 3], [2, 3, 1, 1], 1, 0, true),
        conv_case([1, 5, 4, 2], [3, 2, 3, 2], 1, 0, true),
        conv_transpose_case([2, 4, 5, 3], [3, 5, 3, 3], 1, 1),
        conv_transpose_case([1, 3, 3, 2], [2, 3, 3, 3], 2, 1),
    ]
}
