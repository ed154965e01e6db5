//! Gradient-check cases of `max_pool2d`.

use super::reference;
use crate::ops;
use crate::ops::check::gradcheck::Case;

/// Odd channels, odd H and W (a dropped row and column), H != W, batch 1, the smallest map.
pub fn cases() -> Vec<Case> {
    let case = |x: [usize; 4]| {
        let (fast, r) =
            (|t: &[_]| ops::max_pool2d(&t[0]), move |v: &[Vec<f64>]| reference::max_pool2d(&v[0], x));
        Case::unary("max_pool2d", String::new(), &x, Box::new(fast), Box::new(r))
    };
    vec![case([3, 5, 7, 3]), case([1, 4, 6, 5]), case([2, 2, 2, 1])]
}
