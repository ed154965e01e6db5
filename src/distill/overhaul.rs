//! The OD and IE-OD terms of a [`super::Distiller`]: connectors from the student's pre-ReLU stage
//! outputs to the teacher's widths, and the teacher's margins.
//!
//! OD (Heo et al., ICCV 2019, and their code clovaai/overhaul-distillation): at each stage `i` of
//! three, the teacher's pre-ReLU output through the margin ReLU is the target `T_i = max(P_T,i,
//! m_i)` (`m_i` from the teacher's batch norm, [`crate::ops::margin::bn_margin`]); the student's
//! pre-ReLU output goes through a connector `C_i` (1x1 conv + BN); the term is `sum_i
//! partial_l2(C_i(P_S,i), T_i) / 2^(2 - i)` (the code's `/ 2 ** (feat_num - i - 1)`), batch-mean.
//!
//! IE-OD is iekd's formulation (the IE-KD paper compares an IE-OD, but its formula is not
//! available): each student stage output is split into channel halves ([`ChannelSplit`]), each
//! half with its own connector; the inheritance half minimises OD's term; the exploration half's
//! term is the negated normalized partial L2 (each sample's connector output and target divided
//! by their L2 norms), bounded by 4 per stage, so pushing away cannot grow without limit (as
//! IE-FT's `L_exp`).
//!
//! Teacher and student stages of different resolutions (a ResNet's 32x32, 16x16, 8x8 on CIFAR
//! against VGG-13's 16x16, 8x8, 4x4 or MobileNetV2's 8x8, 4x4, 2x2) are made comparable as the
//! AT and FT recipes do, with [`match_spatial`]: after the connector, the larger of the connector
//! output and the margin target is average-pooled down to the other's resolution (a pooled target
//! is the mean of margin-ReLU values, so still `>= m_i`), and the partial L2 is taken there; it
//! sums over the smaller map's positions.

use rand::Rng;

use super::Terms;
use super::spatial::match_spatial;
use super::split::ChannelSplit;
use crate::error::{Error, Result};
use crate::nn::{Connector, Network};
use crate::ops::arith::scale;
use crate::ops::loss::{normalized_partial_l2_loss, partial_l2_loss};
use crate::ops::{bn_margin, margin_relu};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// Stage `i`'s weight `1 / 2^(2 - i)` (the last stage weighs most).
fn stage_weight(i: usize) -> f32 {
    1.0 / (1u32 << (2 - i)) as f32
}

/// The channels of each stage's pre-ReLU output.
pub(crate) fn stage_channels(net: &dyn Network) -> Result<[usize; 3]> {
    Ok(net.pre_relu_bns()?.map(|bn| bn.weight.numel()))
}

/// The connectors and margins of OD (one connector per stage) or IE-OD (two per stage: the
/// inheritance half's at `2i`, the exploration half's at `2i + 1`).
pub(crate) struct Overhaul {
    /// The connectors, trained with the student.
    pub(crate) connectors: Vec<Connector>,
    margins: Vec<Tensor>,
}

impl Overhaul {
    /// OD's connectors from `student` to `teacher` (`splits` empty), or IE-OD's from the halves
    /// of `splits` (one per stage), drawn from `rng`; the margins from the teacher's batch norms.
    pub(crate) fn new(
        student: &dyn Network,
        teacher: &dyn Network,
        splits: &[ChannelSplit],
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let (s, t) = (stage_channels(student)?, stage_channels(teacher)?);
        let mut connectors = Vec::new();
        for i in 0..3 {
            match splits.get(i) {
                Some(split) => {
                    let (a, b) = split.half_sizes();
                    connectors.push(Connector::new(a, t[i], rng));
                    connectors.push(Connector::new(b, t[i], rng));
                }
                None => connectors.push(Connector::new(s[i], t[i], rng)),
            }
        }
        let margins = teacher
            .pre_relu_bns()?
            .iter()
            .map(|bn| bn_margin(&bn.weight, &bn.bias))
            .collect::<Result<_>>()?;
        Ok(Overhaul { connectors, margins })
    }

    /// Moves the connectors and margins to `device`.
    pub(crate) fn move_to(&mut self, device: &crate::Device) -> Result<()> {
        use crate::nn::Module;
        self.connectors.iter_mut().try_for_each(|c| c.to_device(device))?;
        self.margins.iter_mut().try_for_each(|m| m.move_to(device))
    }

    /// The margin-ReLU targets of the teacher's pre-ReLU outputs (not recorded).
    fn targets(&self, teacher: &[Tensor; 3]) -> Result<Vec<Tensor>> {
        let _guard = autograd::no_grad();
        teacher.iter().zip(&self.margins).map(|(t, m)| margin_relu(t, m)).collect()
    }

    /// OD's term `od` (weight `beta`) from the student's and the teacher's pre-ReLU outputs.
    pub(crate) fn push_od(
        &mut self,
        s: &[Tensor; 3],
        t: &[Tensor; 3],
        beta: f32,
        terms: &mut Terms,
    ) -> Result<()> {
        let targets = self.targets(t)?;
        let mut parts = Vec::new();
        for i in 0..3 {
            let (c, t) = match_spatial(&self.connectors[i].forward(&s[i], true)?, &targets[i])?;
            parts.push(scale(&partial_l2_loss(&c, &t)?, stage_weight(i))?);
        }
        terms.push("od", beta, super::sum(parts)?);
        Ok(())
    }

    /// IE-OD's terms `l_inh` and `l_exp` (weights `lambda_inh`, `lambda_exp`; `l_exp` is
    /// negative) with each stage split by `splits[i]`.
    pub(crate) fn push_ie_od(
        &mut self,
        [s, t]: [&[Tensor; 3]; 2],
        splits: &[ChannelSplit],
        [lambda_inh, lambda_exp]: [f32; 2],
        terms: &mut Terms,
    ) -> Result<()> {
        if splits.len() != 3 || self.connectors.len() != 6 {
            return Err(Error::invalid("distill", "ie-od needs three splits and six connectors"));
        }
        let targets = self.targets(t)?;
        let (mut inh, mut exp) = (Vec::new(), Vec::new());
        for i in 0..3 {
            let (a, b) = splits[i].halves(&s[i])?;
            let (a, ta) = match_spatial(&self.connectors[2 * i].forward(&a, true)?, &targets[i])?;
            let (b, tb) = match_spatial(&self.connectors[2 * i + 1].forward(&b, true)?, &targets[i])?;
            inh.push(scale(&partial_l2_loss(&a, &ta)?, stage_weight(i))?);
            exp.push(scale(&normalized_partial_l2_loss(&b, &tb)?, -stage_weight(i))?);
        }
        terms.push("l_inh", lambda_inh, super::sum(inh)?);
        terms.push("l_exp", lambda_exp, super::sum(exp)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_weights_halve_towards_the_input() {
        assert_eq!([0, 1, 2].map(stage_weight), [0.25, 0.5, 1.0]);
    }
}
