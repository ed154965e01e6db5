//! Gradient-check cases of `reshape` and `flatten`.

use super::reference;
use crate::ops;
use crate::ops::check::gradcheck::Case;

/// A flatten of a 4-D map and a reshape to a matrix.
pub fn cases() -> Vec<Case> {
    let view = |x: &[usize], to: Option<&[usize]>| {
        let to = to.map(<[usize]>::to_vec);
        let detail = to.as_ref().map_or_else(|| "flatten".to_string(), |s| format!("-> {s:?}"));
        let fast = move |t: &[_]| match &to {
            Some(s) => ops::reshape(&t[0], s),
            None => ops::flatten(&t[0]),
        };
        Case::unary("reshape", detail, x, Box::new(fast), Box::new(|v| reference::reshape(&v[0])))
    };
    vec![view(&[3, 2, 4, 5], None), view(&[2, 3, 4, 1], Some(&[6, 4]))]
}
