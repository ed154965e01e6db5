//! Gradient-check cases of `add`, `mul` and `scale`.

use super::reference;
use crate::ops;
use crate::ops::check::gradcheck::{Case, FastFn, Input, ReferenceFn};

fn binary(op: &'static str, x: &[usize]) -> Case {
    let (fast, r): (FastFn, ReferenceFn) = match op {
        "add" => (Box::new(|t| ops::add(&t[0], &t[1])), Box::new(|v| reference::add(&v[0], &v[1]))),
        _ => (Box::new(|t| ops::mul(&t[0], &t[1])), Box::new(|v| reference::mul(&v[0], &v[1]))),
    };
    Case::new(op, format!("{x:?}"), vec![Input::normal("a", x), Input::normal("b", x)], fast, r)
}

/// Each op on a 4-D map and on a smaller tensor; `scale` by a positive and a negative factor.
pub fn cases() -> Vec<Case> {
    let scale = |x: &[usize], s: f32| {
        let (fast, r) =
            (move |t: &[_]| ops::scale(&t[0], s), move |v: &[Vec<f64>]| reference::scale(&v[0], s as f64));
        Case::unary("scale", format!("by {s}"), x, Box::new(fast), Box::new(r))
    };
    vec![
        binary("add", &[3, 4, 5, 3]),
        binary("add", &[1, 7]),
        binary("mul", &[3, 4, 5, 3]),
        binary("mul", &[2, 9]),
        scale(&[2, 3, 4, 5], 2.5),
        scale(&[5, 3], -0.3),
    ]
}
