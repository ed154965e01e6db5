//! Gradient-check cases of `linear`.

use super::reference;
use crate::ops;
use crate::ops::check::gradcheck::{Case, Input};

/// With and without bias, batch 1 to 4, a classifier head (64 -> 10).
pub fn cases() -> Vec<Case> {
    let lin = |x: [usize; 2], out: usize, bias: bool| {
        let mut inputs = vec![Input::normal("x", &x), Input::normal("weight", &[out, x[1]])];
        if bias {
            inputs.push(Input::normal("bias", &[out]));
        }
        Case::new(
            "linear",
            format!("x{x:?} w{:?}{}", [out, x[1]], if bias { " +b" } else { "" }),
            inputs,
            Box::new(|t| ops::linear(&t[0], &t[1], t.get(2))),
            Box::new(move |v| reference::linear(&v[0], x[0], &v[1], out, v.get(2).map(Vec::as_slice))),
        )
    };
    vec![lin([3, 7], 5, true), lin([1, 4], 3, false), lin([4, 64], 10, true)]
}
