//! Gradient-check cases of `global_avg_pool`.

use super::reference;
use crate::ops;
use crate::ops::check::gradcheck::Case;

/// Odd channel counts, H != W, a single pixel, batch 1 to 3.
pub fn cases() -> Vec<Case> {
    let gap = |x: [usize; 4]| {
        let (fast, r) = (
            |t: &[_]| ops::global_avg_pool(&t[0]),
            move |v: &[Vec<f64>]| reference::global_avg_pool(&v[0], x),
        );
        Case::unary("global_avg_pool", String::new(), &x, Box::new(fast), Box::new(r))
    };
    vec![gap([3, 5, 4, 3]), gap([1, 1, 1, 7]), gap([2, 8, 8, 5])]
}
