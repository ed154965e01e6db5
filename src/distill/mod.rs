//! Knowledge distillation: IE-KD and the baselines it is compared with, as [`Trainee`]s for the
//! training loop, plus the analyses of the paper (linear CKA, active neurons) and the end-to-end
//! demo.
//!
//! The three stages of IE-KD:
//! 0. a teacher trained with cross-entropy (`iekd train`, [`crate::train::Supervised`]);
//! 1. the teacher's auto-encoder ([`AutoEncoderTrainee`]): the teacher frozen, its distillation
//!    feature `F_T` (the last group's output) encoded to a factor and rebuilt, trained on the
//!    reconstruction loss;
//! 2. a student trained from scratch ([`Distiller`]): its feature split into channel halves
//!    ([`ChannelSplit`]), one encoder per half, the inheritance half pulled towards the teacher's
//!    factor and the exploration half pushed away from it:
//!    `L = CE + lambda_inh * L_inh + lambda_exp * L_exp`.
//!
//! The same [`Distiller`] trains the single-network baselines (none, KD, FT, AT, IE-AT, OD,
//! IE-OD);
//! [`Mutual`] trains two networks together (DML, IE-DML). Every recipe's formula is on its
//! [`Method`] variant.
//!
//! [`Trainee`]: crate::train::Trainee

pub mod analysis;
mod autoencoder;
pub mod cli;
#[cfg(feature = "cli")]
pub mod demo;
mod encoder;
mod mutual;
mod overhaul;
#[cfg(feature = "cli")]
mod plot;
mod preset;
mod spatial;
mod split;
mod student;
mod teacher;

pub use analysis::{active_fraction, collect_features, feature_cka};
pub use autoencoder::{AutoEncoderTrainee, Recon};
pub use encoder::{EncoderKind, FactorAutoEncoder, StudentEncoder, load_autoencoder};
pub use mutual::{Mutual, Side};
#[cfg(feature = "cli")]
pub use plot::{Curve, write_curves};
pub use preset::{PRESETS, Preset};
pub use spatial::match_spatial;
pub use split::{ChannelSplit, SplitKind};
pub use student::{DistillConfig, Distiller, Losses, resnet56_to_resnet20};
pub use teacher::{FrozenTeacher, TeacherOutput};

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::nn::{Module, Network};
use crate::ops::arith::{add, scale};
use crate::ops::loss::FactorNorm;
use crate::tensor::{Scalars, Tensor, pack_scalars};
pub(crate) use crate::train::{count_correct, load_modules, save_modules};

/// A distillation recipe. `CE` is the cross-entropy on the labels, `s`/`t` the student's and the
/// teacher's logits, `F` a distillation feature, `E(.)` a trainable encoder, `R_T` the teacher's
/// frozen factor (its auto-encoder's encoder applied to `F_T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Method {
    /// Inheritance and exploration on factors: `CE + lambda_inh * L_inh(E_inh(F_S,inh), R_T) +
    /// lambda_exp * L_exp(E_exp(F_S,exp), R_T)`.
    IeFt,
    /// Factor Transfer: `CE + beta * L_inh(E(F_S), R_T)`, one translator on the whole feature.
    Ft,
    /// Hinton's KD: `(1 - alpha) * CE + alpha * T^2 * KL(softmax(t/T) || softmax(s/T))`.
    Kd,
    /// Attention transfer: `CE + beta * sum_g at_loss(G_S,g, G_T,g)` over the three group outputs.
    At,
    /// IE on attention maps: each group output split in channel halves, `CE + lambda_inh *
    /// sum_g at_loss(G_inh,g, G_T,g) - lambda_exp * sum_g at_loss(G_exp,g, G_T,g)`; no encoder.
    IeAt,
    /// Overhaul of feature distillation (Heo et al., ICCV 2019): `CE + beta * sum_i
    /// partial_l2(C_i(P_S,i), max(P_T,i, m_i)) / 2^(2 - i)` over the three stages' pre-ReLU
    /// outputs `P`, `C_i` a 1x1 conv + BN connector, `m_i` the teacher's margin.
    Od,
    /// iekd's IE on OD (the paper gives no formula): each student stage split in channel halves,
    /// each with its own connector, `CE + lambda_inh * sum_i partial_l2(C_inh,i(P_inh,i), T_i) /
    /// 2^(2-i) - lambda_exp * sum_i partial_l2(phi(C_exp,i(P_exp,i)), phi(T_i)) / 2^(2-i)`, `phi`
    /// the per-sample L2 normalization, `T_i = max(P_T,i, m_i)`.
    IeOd,
    /// Deep mutual learning: two networks, each with `CE + KL(p_peer || p_self)`, updated in turn.
    Dml,
    /// DML plus inheritance from / exploration away from the peer's factor, the peer's
    /// auto-encoder trained online on its reconstruction loss.
    IeDml,
    /// Plain training with cross-entropy (the baseline).
    None,
}

impl Method {
    /// The name as the command line spells it (`ie-ft`).
    pub fn name(self) -> &'static str {
        match self {
            Method::IeFt => "ie-ft",
            Method::Ft => "ft",
            Method::Kd => "kd",
            Method::At => "at",
            Method::IeAt => "ie-at",
            Method::Od => "od",
            Method::IeOd => "ie-od",
            Method::Dml => "dml",
            Method::IeDml => "ie-dml",
            Method::None => "none",
        }
    }

    /// Whether the recipe distils from a trained teacher.
    pub fn needs_teacher(self) -> bool {
        !matches!(self, Method::None | Method::Dml | Method::IeDml)
    }

    /// Whether the recipe needs the teacher's auto-encoder (its factor).
    pub fn needs_autoencoder(self) -> bool {
        matches!(self, Method::IeFt | Method::Ft)
    }

    /// Whether two networks are trained together ([`Mutual`]).
    pub fn is_mutual(self) -> bool {
        matches!(self, Method::Dml | Method::IeDml)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The form of the exploration loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Exploration {
    /// `-1/(B*D) * sum_b ||phi(F_exp,b) - phi(R_T,b)||_p^p` (the authors' code; `p` is
    /// the factor distance's, `--factor-norm`).
    L1,
    /// `1/B * sum_b |<phi(F_exp,b), phi(R_T,b)>|` (the alternative in the authors' code).
    Dot,
}

/// The weights and settings of the recipes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    /// Weight of the inheritance loss (IE-FT, IE-AT, IE-DML).
    pub lambda_inh: f32,
    /// Weight of the exploration loss (IE-FT, IE-AT, IE-DML).
    pub lambda_exp: f32,
    /// Weight of the FT or AT loss.
    pub beta: f32,
    /// KD's weight of the distillation term.
    pub alpha: f32,
    /// KD's temperature.
    pub temperature: f32,
    /// Form of the exploration loss.
    pub exploration: Exploration,
    /// `p` of the factor distance (1 as the authors' code, or 2).
    pub factor_norm: FactorNorm,
}

/// Default `lambda_inh` of IE-FT and IE-DML: Factor Transfer's `beta` on the same loss; with
/// [`DEFAULT_LAMBDA_EXP`] the best validation accuracy of the sweep (500, 10), (500, 50),
/// (500, 200), (100, 20) on Fashion-MNIST (ResNet-20 teacher, ResNet-8 student; held-out
/// images, never the test set: `bench-results/2026-12-02-ie-kd-protocol-fashion-mnist.md`).
pub const DEFAULT_LAMBDA_INH: f32 = 500.0;
/// Default `lambda_exp` of IE-FT and IE-DML, chosen with [`DEFAULT_LAMBDA_INH`] on validation
/// accuracy (the sweep's differences were within one seed's noise).
pub const DEFAULT_LAMBDA_EXP: f32 = 10.0;
/// Factor Transfer's `beta` on the mean-reduced factor loss.
pub const DEFAULT_FT_BETA: f32 = 500.0;
/// Attention transfer's `beta`.
pub const DEFAULT_AT_BETA: f32 = 1000.0;
/// OD's `beta`, the weight of the batch-mean partial L2 distance: the authors' CIFAR training
/// script adds `loss_distill.sum() / batch_size / 1000` (their ImageNet script `/ 10000`).
/// IE-OD's `lambda_inh` is the same.
pub const DEFAULT_OD_BETA: f32 = 1e-3;
/// IE-OD's `lambda_exp`: the bounded exploration term is at most 4 per stage, 7 with the stage
/// weights, so at 0.1 it moves the loss by at most 0.7, below the cross-entropy of an untrained
/// 10-class network (ln 10 = 2.3) and of the order of IE-FT's `10 * 2 / sqrt(D)` (0.44 for
/// D = 2048); it beat 0.01 on validation accuracy in the Fashion-MNIST protocol (README).
pub const DEFAULT_IE_OD_LAMBDA_EXP: f32 = 0.1;

impl Hyper {
    /// The defaults of `method`: IE weights [`DEFAULT_LAMBDA_INH`] and [`DEFAULT_LAMBDA_EXP`]
    /// (IE-AT: AT's 1000 for both; IE-OD: [`DEFAULT_OD_BETA`] and [`DEFAULT_IE_OD_LAMBDA_EXP`]),
    /// FT beta 500, AT beta 1000, OD beta 1e-3, KD alpha 0.9 and T 4, L1
    /// exploration, p = 1.
    pub fn defaults(method: Method) -> Hyper {
        let (lambda_inh, lambda_exp, beta) = match method {
            Method::IeAt | Method::At => (DEFAULT_AT_BETA, DEFAULT_AT_BETA, DEFAULT_AT_BETA),
            Method::Od | Method::IeOd => (DEFAULT_OD_BETA, DEFAULT_IE_OD_LAMBDA_EXP, DEFAULT_OD_BETA),
            _ => (DEFAULT_LAMBDA_INH, DEFAULT_LAMBDA_EXP, DEFAULT_FT_BETA),
        };
        Hyper {
            lambda_inh,
            lambda_exp,
            beta,
            alpha: 0.9,
            temperature: 4.0,
            exploration: Exploration::L1,
            factor_norm: FactorNorm::L1,
        }
    }

    /// Rejects weights that are negative or not finite, `alpha` outside `[0, 1]` and a
    /// temperature that is not positive.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in
            [("lambda_inh", self.lambda_inh), ("lambda_exp", self.lambda_exp), ("beta", self.beta)]
        {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(
                    "distill",
                    format!("{name} must be finite and non-negative, got {v}"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::invalid("distill", format!("alpha must be in [0, 1], got {}", self.alpha)));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::invalid(
                "distill",
                format!("temperature must be positive, got {}", self.temperature),
            ));
        }
        Ok(())
    }
}

/// The sum of one-element loss tensors (on the tape).
pub(crate) fn sum(terms: Vec<Tensor>) -> Result<Tensor> {
    let mut terms = terms.into_iter();
    let first = terms.next().ok_or_else(|| Error::invalid("distill", "no loss terms to add"))?;
    terms.try_fold(first, |acc, t| add(&acc, &t))
}

/// The loss terms of one step, each with its weight: the total is `sum weight * value`.
#[derive(Default)]
pub(crate) struct Terms {
    parts: Vec<(&'static str, f32, Tensor)>,
}

impl Terms {
    /// Adds `weight * value` under `name`.
    pub(crate) fn push(&mut self, name: &'static str, weight: f32, value: Tensor) {
        self.parts.push((name, weight, value));
    }

    /// The weighted sum (a one-element tensor on the tape) and each term's unweighted value
    /// (one-element tensors, to read once the step is queued: see [`pack_terms`]).
    pub(crate) fn total(self) -> Result<(Tensor, Vec<(&'static str, Tensor)>)> {
        let (mut values, mut weighted) = (Vec::new(), Vec::new());
        for (name, weight, value) in self.parts {
            weighted.push(if weight == 1.0 { value.clone() } else { scale(&value, weight)? });
            values.push((name, value.detach()));
        }
        Ok((sum(weighted)?, values))
    }
}

/// The values of a step, read back on the host.
pub(crate) struct StepValues {
    /// The total loss.
    pub(crate) loss: f64,
    /// Top-1 hits.
    pub(crate) correct: usize,
    /// The named terms, in order.
    pub(crate) terms: Vec<(&'static str, f64)>,
}

/// The total loss, the hit count and the named terms of a step, gathered for one read back
/// ([`PackedTerms::read`]: one wait on a device).
pub(crate) fn pack_terms(
    total: &Tensor,
    correct: &Tensor,
    terms: &[(&'static str, Tensor)],
) -> Result<PackedTerms> {
    let mut all = vec![total, correct];
    all.extend(terms.iter().map(|(_, t)| t));
    Ok(PackedTerms { values: pack_scalars(&all)?, names: terms.iter().map(|(n, _)| *n).collect() })
}

/// What [`pack_terms`] gathered.
pub(crate) struct PackedTerms {
    values: Scalars,
    names: Vec<&'static str>,
}

impl PackedTerms {
    /// The values, read back.
    pub(crate) fn read(self) -> Result<StepValues> {
        let v = self.values.read()?;
        let named = self.names.iter().zip(&v[2..]).map(|(name, &x)| (*name, x as f64)).collect();
        Ok(StepValues { loss: v[0] as f64, correct: v[1] as usize, terms: named })
    }
}

/// Named values summed over a batch of `n` images, as [`crate::train::StepStats::terms`] wants.
pub(crate) fn batch_terms(values: &[(&'static str, f64)], n: usize) -> BTreeMap<String, f64> {
    values.iter().map(|(k, v)| (k.to_string(), v * n as f64)).collect()
}

/// A network and its encoders, named `name`, `encoder0`, `encoder1`, in the optimiser's order.
pub(crate) fn with_encoders<'a>(
    name: &'static str,
    net: &'a mut dyn Network,
    encoders: &'a mut [StudentEncoder],
) -> Vec<(&'static str, &'a mut dyn Module)> {
    let mut modules: Vec<(&str, &mut dyn Module)> = vec![(name, net)];
    modules.extend(encoders.iter_mut().zip(["encoder0", "encoder1"]).map(|(e, n)| (n, e as &mut dyn Module)));
    modules
}

/// The trainable tensors of several modules, in order (one optimiser over all of them).
pub(crate) fn params_of(modules: Vec<&mut dyn Module>) -> Vec<&mut Tensor> {
    modules.into_iter().flat_map(|m| m.params_mut()).collect()
}
