//! Gradient-check cases of ReLU and LeakyReLU.

use super::reference;
use crate::ops;
use crate::ops::check::gradcheck::Case;

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
