//! Gradient-check cases of batch norm: plain and fused with a ReLU or a residual add and ReLU, in
//! training and evaluation.

use super::reference;
use crate::ops;
use crate::ops::activation::reference::relu;
use crate::ops::arith::reference::add;
use crate::ops::check::gradcheck::{Case, Init, Input};

const EPS: f32 = 1e-5;

/// What follows the normalisation.
#[derive(Clone, Copy, PartialEq)]
enum Fusion {
    Plain,
    Relu,
    AddRelu,
}

/// Inputs `[x, gamma, beta, residual?, running_mean?, running_var?]`.
fn bn_case(fusion: Fusion, train: bool, x: [usize; 4], x_init: Init) -> Case {
    let c = x[3];
    let detail = format!("x{x:?} {x_init:?}");
    let mut inputs =
        vec![Input::with_init("x", &x, x_init), Input::normal("gamma", &[c]), Input::normal("beta", &[c])];
    if fusion == Fusion::AddRelu {
        inputs.push(Input::normal("residual", &x));
    }
    let running = inputs.len();
    if !train {
        inputs.push(Input::with_init("running_mean", &[c], Init::Normal(0.5)).constant());
        inputs.push(Input::with_init("running_var", &[c], Init::Uniform(0.5, 2.0)).constant());
    }
    let op = match (fusion, train) {
        (Fusion::Plain, true) => "batch_norm_train",
        (Fusion::Relu, true) => "batch_norm_relu_train",
        (Fusion::AddRelu, true) => "batch_norm_add_relu_train",
        (Fusion::Plain, false) => "batch_norm_eval",
        (Fusion::Relu, false) => "batch_norm_relu_eval",
        (Fusion::AddRelu, false) => "batch_norm_add_relu_eval",
    };
    Case::new(
        op,
        detail,
        inputs,
        Box::new(move |t| {
            let (x, g, b, (rm, rv)) = (&t[0], &t[1], &t[2], (t.get(running), t.get(running + 1)));
            let after = match fusion {
                Fusion::Plain => ops::batchnorm::After::Identity,
                Fusion::Relu => ops::batchnorm::After::Relu,
                Fusion::AddRelu => ops::batchnorm::After::AddRelu(&t[3]),
            };
            match rm.zip(rv) {
                None => Ok(ops::batch_norm_train(x, after, g, b, EPS, None)?.0),
                Some((rm, rv)) => ops::batch_norm_eval(x, after, g, b, rm, rv, EPS),
            }
        }),
        Box::new(move |v| {
            let z = if train {
                reference::batch_norm_train(&v[0], c, &v[1], &v[2], EPS as f64)
            } else {
                reference::normalize(&v[0], c, &v[1], &v[2], &v[running], &v[running + 1], EPS as f64)
            };
            match fusion {
                Fusion::Plain => z,
                Fusion::Relu => relu(&z),
                Fusion::AddRelu => relu(&add(&z, &v[3])),
            }
        }),
    )
}

/// Each fusion in training and evaluation on odd channel counts, batch 1 to 5, H != W, inputs
/// centred and far from zero.
pub fn cases() -> Vec<Case> {
    let n = || Init::Normal(1.0);
    vec![
        bn_case(Fusion::Plain, true, [3, 5, 4, 3], n()),
        bn_case(Fusion::Plain, true, [1, 3, 5, 7], Init::Uniform(2.0, 4.0)),
        bn_case(Fusion::Plain, true, [5, 1, 1, 3], n()),
        bn_case(Fusion::Relu, true, [2, 3, 5, 3], n()),
        bn_case(Fusion::Relu, true, [1, 4, 3, 5], Init::Uniform(-1.0, 3.0)),
        bn_case(Fusion::AddRelu, true, [3, 4, 3, 3], n()),
        bn_case(Fusion::AddRelu, true, [1, 5, 2, 6], n()),
        bn_case(Fusion::Plain, false, [3, 5, 4, 3], n()),
        bn_case(Fusion::Plain, false, [1, 2, 3, 5], n()),
        bn_case(Fusion::Relu, false, [2, 3, 4, 3], n()),
        bn_case(Fusion::AddRelu, false, [1, 4, 3, 5], n()),
    ]
}
