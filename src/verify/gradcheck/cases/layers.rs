//! Cases for the layer ops: reshapes.

use crate::ops;
use crate::reference::shape;
use crate::verify::gradcheck::Case;

fn dense_cases() -> Vec<Case> {
    let view = |x: &[usize], to: Option<&[usize]>| {
        let to = to.map(<[usize]>::to_vec);
        let detail = to.as_ref().map_or_else(|| "flatten".to_string(), |s| format!("-> {s:?}"));
        let fast = move |t: &[_]| match &to {
            Some(s) => ops::reshape(&t[0], s),
            None => ops::flatten(&t[0]),
        };
        Case::unary("reshape", detail, x, Box::new(fast), Box::new(|v| shape::reshape(&v[0])))
    };
    vec![view(&[3, 2, 4, 5], None), view(&[2, 3, 4, 1], Some(&[6, 4]))]
}

/// Every layer op on awkward sizes: odd channel counts, H != W, batch 1 and 3.
pub fn cases() -> Vec<Case> {
    [dense_cases()].into_iter().flatten().collect()
}
