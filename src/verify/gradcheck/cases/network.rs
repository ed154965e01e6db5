//! The tape end to end: a small network (conv-BN-ReLU-conv-pool-linear-CE) whose every parameter
//! gradient is checked against finite differences of the whole f64 loss.

use crate::ops;
use crate::ops::conv2d::reference::{self, Operands};
use crate::verify::gradcheck::{Case, Input};

const X: [usize; 4] = [3, 6, 5, 3];
const W1: [usize; 4] = [4, 3, 3, 3];
const W2: [usize; 4] = [5, 4, 3, 3];
const CLASSES: usize = 7;
const LABELS: [usize; 3] = [1, 6, 3];
const EPS: f32 = 1e-5;

/// The whole small network as one case.
pub fn cases() -> Vec<Case> {
    let inputs = vec![
        Input::normal("x", &X),
        Input::normal("conv1.weight", &W1),
        Input::normal("bn.weight", &[W1[0]]),
        Input::normal("bn.bias", &[W1[0]]),
        Input::normal("conv2.weight", &W2),
        Input::normal("fc.weight", &[CLASSES, W2[0]]),
        Input::normal("fc.bias", &[CLASSES]),
    ];
    vec![Case::new(
        "network",
        "conv-bn-relu-conv(s2)-pool-linear-ce",
        inputs,
        Box::new(|t| {
            let h = ops::conv2d(&t[0], &t[1], None, 1, 1)?;
            let (h, _) = ops::batch_norm_train(&h, ops::batchnorm::After::Relu, &t[2], &t[3], EPS, None)?;
            let h = ops::conv2d(&h, &t[4], None, 2, 1)?;
            let h = ops::pool::global_avg_pool(&h)?;
            let logits = ops::linear::linear(&h, &t[5], Some(&t[6]))?;
            ops::loss::cross_entropy(&logits, &LABELS)
        }),
        Box::new(|v| {
            let h = reference::conv2d(Operands { x: &v[0], xs: X, w: &v[1], ws: W1, b: None }, 1, 1);
            let h = ops::activation::reference::relu(&ops::batchnorm::reference::batch_norm_train(
                &h, W1[0], &v[2], &v[3], EPS as f64,
            ));
            let h = reference::conv2d(
                Operands { x: &h, xs: [X[0], X[1], X[2], W1[0]], w: &v[4], ws: W2, b: None },
                2,
                1,
            );
            let h = ops::pool::reference::global_avg_pool(&h, [X[0], 3, 3, W2[0]]);
            let logits = ops::linear::reference::linear(&h, X[0], &v[5], CLASSES, Some(&v[6]));
            ops::loss::cross_entropy::reference::cross_entropy(&logits, CLASSES, &LABELS)
        }),
    )]
}
