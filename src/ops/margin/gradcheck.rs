//! Gradient-check cases of `margin_relu` (the gradient at the input; the margin is constant).

use super::reference;
use crate::ops::check::gradcheck::{Case, Init, Input};

fn case(x: [usize; 4]) -> Case {
    let c = x[3];
    Case::new(
        "margin_relu",
        format!("x{x:?} margin[{c}]"),
        vec![Input::normal("x", &x), Input::with_init("margin", &[c], Init::Uniform(-1.0, 0.0)).constant()],
        Box::new(|t| super::margin_relu(&t[0], &t[1])),
        Box::new(|v| reference::margin_relu(&v[0], &v[1])),
    )
}

/// Odd channel counts, H != W, batch 1 and 3.
pub fn cases() -> Vec<Case> {
    vec![case([3, 5, 4, 3]), case([1, 3, 2, 7]), case([2, 1, 1, 1])]
}
