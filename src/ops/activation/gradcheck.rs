//! Gradient-check cases of ReLU, LeakyReLU and ReLU6.

use super::reference;
use crate::ops;
use crate::ops::check::gradcheck::{Case, Init, Input};

/// ReLU and two slopes of LeakyReLU, on a 4-D map and on a matrix.
pub fn cases() -> Vec<Case> {
    let relu = |x: &[usize]| {
        Case::unary(
            "relu",
            String::new(),
            x,
            Box::new(|t| ops::relu(&t[0])),
            Box::new(|v| reference::relu(&v[0])),
        )
    };
    let leaky = |x: &[usize], a: f32| {
        let (fast, r) = (
            move |t: &[_]| ops::leaky_relu(&t[0], a),
            move |v: &[Vec<f64>]| reference::leaky_relu(&v[0], a as f64),
        );
        Case::unary("leaky_relu", format!("slope {a}"), x, Box::new(fast), Box::new(r))
    };
    vec![relu(&[3, 5, 4, 3]), relu(&[1, 7]), leaky(&[2, 3, 5, 3], 0.1), leaky(&[4, 9], 0.2)]
}

/// ReLU6 on odd sizes and batch 1, with inputs drawn from N(0, 16) so that both kinks are crossed.
pub fn relu6_cases() -> Vec<Case> {
    let case = |x: &[usize]| {
        Case::new(
            "relu6",
            format!("x{x:?} std 4"),
            vec![Input::with_init("x", x, Init::Normal(4.0))],
            Box::new(|t| ops::relu6(&t[0])),
            Box::new(|v| reference::relu6(&v[0])),
        )
    };
    vec![case(&[3, 5, 7, 3]), case(&[1, 3, 5, 9])]
}
