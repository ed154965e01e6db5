//! Cases for the layer ops: linear and reshapes.

use crate::ops;
use crate::reference::{linear, shape};
use crate::verify::gradcheck::{Case, Input};

fn dense_cases() -> Vec<Case> {
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
            Box::new(move |v| linear::linear(&v[0], x[0], &v[1], out, v.get(2).map(Vec::as_slice))),
        )
    };
    let view = |x: &[usize], to: Option<&[usize]>| {
        let to = to.map(<[usize]>::to_vec);
        let detail = to.as_ref().map_or_else(|| "flatten".to_string(), |s| format!("-> {s:?}"));
        let fast = move |t: &[_]| match &to {
            Some(s) => ops::reshape(&t[0], s),
            None => ops::flatten(&t[0]),
        };
        Case::unary("reshape", detail, x, Box::new(fast), Box::new(|v| shape::reshape(&v[0])))
    };
    vec![
        lin([3, 7], 5, true),
        lin([1, 4], 3, false),
        lin([4, 64], 10, true),
        view(&[3, 2, 4, 5], None),
        view(&[2, 3, 4, 1], Some(&[6, 4])),
    ]
}

/// Every layer op on awkward sizes: odd channel counts, H != W, batch 1 and 3.
pub fn cases() -> Vec<Case> {
    [dense_cases()].into_iter().flatten().collect()
}
