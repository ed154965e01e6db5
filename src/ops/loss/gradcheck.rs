//! Gradient-check cases of the losses: cross-entropy, KD, the normalized-factor losses, attention
//! transfer, L1 and L2 reconstruction, and OD's partial L2 distance (plain and normalized).

use super::{self as loss, FactorNorm, attention, cross_entropy, factor, kd, partial_l2, recon};
use crate::error::Result;
use crate::ops::check::gradcheck::{Case, Init, Input};
use crate::tensor::Tensor;

/// Deterministic labels in `[0, k)` for a batch of `n`.
fn labels(n: usize, k: usize) -> Vec<usize> {
    (0..n).map(|i| (3 * i + 2) % k).collect()
}

fn cross_entropy_case(n: usize, k: usize) -> Case {
    let (y, y_ref) = (labels(n, k), labels(n, k));
    Case::new(
        "cross_entropy",
        format!("logits[{n}, {k}]"),
        vec![Input::with_init("logits", &[n, k], Init::Normal(3.0))],
        Box::new(move |t| loss::cross_entropy(&t[0], &y)),
        Box::new(move |v| cross_entropy::reference::cross_entropy(&v[0], k, &y_ref)),
    )
}

fn kd_case(n: usize, k: usize, temperature: f32, teacher_grad: bool) -> Case {
    let teacher = Input::with_init("teacher", &[n, k], Init::Normal(3.0));
    Case::new(
        "kd_loss",
        format!("logits[{n}, {k}] T={temperature}{}", if teacher_grad { " +dt" } else { "" }),
        vec![
            Input::with_init("student", &[n, k], Init::Normal(3.0)),
            if teacher_grad { teacher } else { teacher.constant() },
        ],
        Box::new(move |t| loss::kd_loss(&t[0], &t[1], temperature)),
        Box::new(move |v| kd::reference::kd(&v[0], &v[1], k, temperature as f64)),
    )
}

fn factor_case(shape: [usize; 4], norm: FactorNorm, sign: f32) -> Case {
    let p = match norm {
        FactorNorm::L1 => 1,
        FactorNorm::L2 => 2,
    };
    Case::new(
        "factor_loss",
        format!("a,b{shape:?} p={p} sign={sign:+}"),
        vec![Input::normal("a", &shape), Input::normal("b", &shape)],
        Box::new(move |t| loss::factor_loss(&t[0], &t[1], norm, sign)),
        Box::new(move |v| factor::reference::factor(&v[0], &v[1], shape[0], p, sign as f64)),
    )
}

fn factor_dot_case(shape: [usize; 4]) -> Case {
    Case::new(
        "factor_dot_loss",
        format!("a,b{shape:?}"),
        vec![Input::normal("a", &shape), Input::normal("b", &shape)],
        Box::new(|t| loss::factor_dot_loss(&t[0], &t[1])),
        Box::new(move |v| factor::reference::factor_dot(&v[0], &v[1], shape[0])),
    )
}

fn attention_map_case(shape: [usize; 4]) -> Case {
    Case::new(
        "attention_map",
        format!("x{shape:?}"),
        vec![Input::normal("x", &shape)],
        Box::new(|t| loss::attention_map(&t[0])),
        Box::new(move |v| attention::reference::attention_map(&v[0], shape)),
    )
}

fn at_loss_case(s: [usize; 4], t_channels: usize) -> Case {
    let t = [s[0], s[1], s[2], t_channels];
    Case::new(
        "at_loss",
        format!("s{s:?} t{t:?}"),
        vec![Input::normal("student", &s), Input::normal("teacher", &t)],
        Box::new(|x| loss::at_loss(&x[0], &x[1])),
        Box::new(move |v| attention::reference::at_loss(&v[0], s, &v[1], t)),
    )
}

fn recon_case(squared: bool, shape: &[usize]) -> Case {
    type Loss = fn(&Tensor, &Tensor) -> Result<Tensor>;
    type Reference = fn(&[f64], &[f64]) -> Vec<f64>;
    let (op, fast, reference): (_, Loss, Reference) = if squared {
        ("mse_loss", loss::mse_loss, recon::reference::mse)
    } else {
        ("l1_loss", loss::l1_loss, recon::reference::l1)
    };
    Case::new(
        op,
        format!("a,b{shape:?}"),
        vec![Input::normal("a", shape), Input::normal("b", shape)],
        Box::new(move |t| fast(&t[0], &t[1])),
        Box::new(move |v| reference(&v[0], &v[1])),
    )
}

fn partial_l2_case(shape: [usize; 4], normalized: bool, target_grad: bool) -> Case {
    type Loss = fn(&Tensor, &Tensor) -> Result<Tensor>;
    type Reference = fn(&[f64], &[f64], usize) -> Vec<f64>;
    let (op, fast, reference): (_, Loss, Reference) = if normalized {
        (
            "normalized_partial_l2_loss",
            loss::normalized_partial_l2_loss,
            partial_l2::reference::normalized_partial_l2,
        )
    } else {
        ("partial_l2_loss", loss::partial_l2_loss, partial_l2::reference::partial_l2)
    };
    let target = Input::normal("target", &shape);
    Case::new(
        op,
        format!("s,t{shape:?}{}", if target_grad { " +dt" } else { "" }),
        vec![Input::normal("student", &shape), if target_grad { target } else { target.constant() }],
        Box::new(move |t| fast(&t[0], &t[1])),
        Box::new(move |v| reference(&v[0], &v[1], shape[0])),
    )
}

/// Batch 1 and 3, odd class and channel counts, H != W, both temperatures and both signs.
pub fn cases() -> Vec<Case> {
    vec![
        cross_entropy_case(1, 7),
        cross_entropy_case(3, 5),
        cross_entropy_case(3, 11),
        kd_case(3, 5, 1.0, true),
        kd_case(2, 7, 4.0, true),
        kd_case(1, 10, 4.0, false),
        factor_case([3, 3, 5, 4], FactorNorm::L1, 1.0),
        factor_case([3, 3, 5, 4], FactorNorm::L1, -1.0),
        factor_case([1, 5, 3, 3], FactorNorm::L2, 1.0),
        factor_case([2, 4, 3, 5], FactorNorm::L2, -1.0),
        factor_dot_case([3, 3, 5, 3]),
        factor_dot_case([1, 2, 3, 5]),
        attention_map_case([3, 5, 4, 3]),
        attention_map_case([1, 3, 5, 2]),
        at_loss_case([3, 5, 4, 3], 5),
        at_loss_case([1, 4, 3, 2], 3),
        recon_case(false, &[3, 5, 4, 3]),
        recon_case(false, &[1, 7]),
        recon_case(true, &[3, 5, 4, 3]),
        recon_case(true, &[2, 7, 3]),
    ]
}

/// OD's partial L2 distance, plain and normalized: batch 1 and 3, odd channels, with and without
/// the target's gradient (listed after the other cases, so their seeds stay the same).
pub fn partial_l2_cases() -> Vec<Case> {
    vec![
        partial_l2_case([3, 5, 4, 3], false, true),
        partial_l2_case([1, 3, 2, 7], false, false),
        partial_l2_case([3, 4, 3, 5], true, true),
        partial_l2_case([1, 2, 3, 3], true, false),
    ]
}
