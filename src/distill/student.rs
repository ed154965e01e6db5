//! Stage 2: one student trained from scratch against a frozen teacher (IE-FT, FT, KD, AT, IE-AT,
//! OD, IE-OD)
//! or alone (none). The formulas are those of [`Method`]; the student and its encoders share one
//! SGD optimiser, the teacher and its auto-encoder are never in it.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::encoder::{EncoderKind, FactorAutoEncoder, StudentEncoder};
use super::overhaul::{Overhaul, stage_channels};
use super::spatial::match_spatial;
use super::split::{ChannelSplit, SplitKind};
use super::teacher::FrozenTeacher;
use super::{
    Exploration, Hyper, Method, Terms, batch_terms, load_modules, pack_terms, params_of, save_modules, sum,
    with_encoders,
};
use crate::checkpoint::Checkpoint;
use crate::cuda::graph::StepGraph;
use crate::data::Loader;
use crate::error::{Error, Result};
use crate::nn::{Arch, Module, Network};
use crate::ops::accuracy;
use crate::ops::arith::scale;
use crate::ops::loss::{
    at_loss, cross_entropy, exploration_loss, factor_dot_loss, inheritance_loss, kd_loss,
};
use crate::optim::{Sgd, SgdConfig};
use crate::tensor::Tensor;
use crate::tensor::autograd;
use crate::train::{StepStats, Trainee, evaluate};

/// How a distillation run is set up (beside the networks themselves).
#[derive(Clone, Copy, Debug)]
pub struct DistillConfig {
    /// The recipe.
    pub method: Method,
    /// Its weights.
    pub hyper: Hyper,
    /// The family of the student's encoders.
    pub encoder: EncoderKind,
    /// How the feature's channels are split (IE recipes).
    pub split: SplitKind,
    /// The share of channels that inherit (IE recipes; 0.5 for halves).
    pub split_ratio: f32,
    /// The optimiser of the student and its encoders.
    pub sgd: SgdConfig,
    /// Seed of the encoders' initialisation and of a random split.
    pub seed: u64,
}

impl DistillConfig {
    /// `method` with its default weights, Coder encoders and the natural split.
    pub fn new(method: Method, sgd: SgdConfig, seed: u64) -> Self {
        let (encoder, split) = (EncoderKind::Coder, SplitKind::Natural);
        DistillConfig { method, hyper: Hyper::defaults(method), encoder, split, split_ratio: 0.5, sgd, seed }
    }
}

/// The distillation setting of the benchmarks and of the device check, for 32x32 RGB images of
/// 10 classes: a ResNet-56 teacher (with its Coder(64, 32) auto-encoder when `method` needs one)
/// teaching a ResNet-20 (IE-FT: with two Coder(32, 32) encoders), every network drawn from `seed`.
pub fn resnet56_to_resnet20(method: Method, sgd: SgdConfig, seed: u64) -> Result<Distiller> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let teacher = "resnet56".parse::<Arch>()?.build(3, 10, &mut rng)?;
    let ae = FactorAutoEncoder::new(EncoderKind::Coder, 64, 32, &mut rng)?;
    let student = "resnet20".parse::<Arch>()?.build(3, 10, &mut rng)?;
    let teacher = FrozenTeacher::new(teacher, method.needs_autoencoder().then_some(ae));
    Distiller::new(student, Some(teacher), DistillConfig::new(method, sgd, seed))
}

/// A step's losses: the total on the tape, the student's logits, and each term's unweighted value.
pub struct Losses {
    /// The weighted sum of the terms (what is minimised).
    pub total: Tensor,
    /// The student's logits.
    pub logits: Tensor,
    /// Each term by name (`ce`, `kd`, `l_inh`, `l_exp`, `at`, `od`), unweighted, one element each.
    pub terms: Vec<(&'static str, Tensor)>,
}

/// A student, its encoders and the frozen teacher, trained with one recipe.
pub struct Distiller {
    /// The recipe and its weights.
    pub config: DistillConfig,
    /// The student network.
    pub student: Box<dyn Network>,
    /// The student's encoders: IE-FT `[inheritance, exploration]`, FT `[translator]`, else none.
    pub encoders: Vec<StudentEncoder>,
    /// The frozen teacher (none for plain training).
    pub teacher: Option<FrozenTeacher>,
    /// IE-FT: the feature's split; IE-AT, IE-OD: one split per group output; else none.
    pub splits: Vec<ChannelSplit>,
    /// The optimiser of the student, its encoders and, for OD and IE-OD, its connectors.
    pub sgd: Sgd,
    /// OD, IE-OD: the connectors and the teacher's margins.
    overhaul: Option<Overhaul>,
    /// The graph of its steps on a GPU (`None`: every kernel launched each step).
    graph: Option<StepGraph>,
}

/// The checkpoint names of the OD connectors.
const CONNECTORS: [&str; 6] =
    ["connector0", "connector1", "connector2", "connector3", "connector4", "connector5"];

/// The trained modules, in the optimiser's order: the student, its encoders, then the connectors.
fn modules<'a>(
    student: &'a mut dyn Network,
    encoders: &'a mut [StudentEncoder],
    overhaul: Option<&'a mut Overhaul>,
) -> Vec<(&'static str, &'a mut dyn Module)> {
    let mut modules = with_encoders("student", student, encoders);
    if let Some(o) = overhaul {
        modules.extend(CONNECTORS.into_iter().zip(o.connectors.iter_mut().map(|c| c as &mut dyn Module)));
    }
    modules
}

impl Distiller {
    /// Sets up `config.method` for `student`; `teacher` is required by every recipe but `none`
    /// (and ignored by it), with its auto-encoder for IE-FT and FT (dropped for the others).
    pub fn new(
        student: Box<dyn Network>,
        teacher: Option<FrozenTeacher>,
        config: DistillConfig,
    ) -> Result<Self> {
        let method = config.method;
        config.hyper.validate()?;
        if method.is_mutual() {
            return Err(Error::invalid("distill", format!("{method} trains two networks; use Mutual")));
        }
        let mut teacher =
            if method.needs_teacher() {
                Some(teacher.ok_or_else(|| {
                    Error::invalid("distill", format!("{method} needs a teacher (--teacher)"))
                })?)
            } else {
                None
            };
        if let Some(t) = teacher.as_mut().filter(|_| !method.needs_autoencoder()) {
            t.autoencoder = None;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x1e4d);
        let c = student.feature_channels();
        let (mut encoders, mut splits) = (Vec::new(), Vec::new());
        match method {
            Method::IeFt => {
                let factor = teacher.as_ref().expect("checked").factor_channels(method.name())?;
                let split = ChannelSplit::new(config.split, c, config.seed).with_ratio(config.split_ratio)?;
                let (a, b) = split.half_sizes();
                encoders.push(StudentEncoder::new(config.encoder, a, factor, &mut rng)?);
                encoders.push(StudentEncoder::new(config.encoder, b, factor, &mut rng)?);
                splits.push(split);
            }
            Method::Ft => {
                let factor = teacher.as_ref().expect("checked").factor_channels(method.name())?;
                encoders.push(StudentEncoder::new(config.encoder, c, factor, &mut rng)?);
            }
            Method::IeAt => {
                for (g, channels) in student.group_channels().into_iter().enumerate() {
                    let seed = config.seed.wrapping_add(g as u64);
                    splits.push(
                        ChannelSplit::new(config.split, channels, seed).with_ratio(config.split_ratio)?,
                    );
                }
            }
            Method::IeOd => {
                for (g, channels) in stage_channels(student.as_ref())?.into_iter().enumerate() {
                    let seed = config.seed.wrapping_add(g as u64);
                    splits.push(
                        ChannelSplit::new(config.split, channels, seed).with_ratio(config.split_ratio)?,
                    );
                }
            }
            _ => {}
        }
        let overhaul = match (method, &teacher) {
            (Method::Od | Method::IeOd, Some(t)) => {
                Some(Overhaul::new(student.as_ref(), t.net.as_ref(), &splits, &mut rng)?)
            }
            _ => None,
        };
        let (sgd, graph) = (Sgd::new(config.sgd)?, Some(StepGraph::default()));
        Ok(Distiller { config, student, encoders, teacher, splits, sgd, overhaul, graph })
    }

    /// The losses of one training-mode forward pass on a batch; the teacher runs once.
    pub fn losses(&mut self, images: &Tensor, labels: &[usize]) -> Result<Losses> {
        let images = &images.to_device(&self.student.device())?;
        let pre_relu = matches!(self.config.method, Method::Od | Method::IeOd);
        let (out, student_pre) = if pre_relu {
            let (out, pre) = self.student.forward_pre_relu(images, true)?;
            (out, Some(pre))
        } else {
            (self.student.forward(images, true)?, None)
        };
        let teacher = match &mut self.teacher {
            Some(t) if pre_relu => Some(t.forward_pre_relu(images)?),
            Some(t) => Some(t.forward(images)?),
            None => None,
        };
        let h = self.config.hyper;
        let mut terms = Terms::default();
        let ce = cross_entropy(&out.logits, labels)?;
        let factor = || {
            teacher
                .as_ref()
                .and_then(|t| t.factor.as_ref())
                .ok_or_else(|| Error::invalid("distill", "no teacher factor"))
        };
        let t = || teacher.as_ref().ok_or_else(|| Error::invalid("distill", "no teacher"));
        match self.config.method {
            Method::None | Method::Dml | Method::IeDml => terms.push("ce", 1.0, ce),
            Method::Kd => {
                terms.push("ce", 1.0 - h.alpha, ce);
                terms.push("kd", h.alpha, kd_loss(&out.logits, &t()?.logits, h.temperature)?);
            }
            Method::Ft => {
                terms.push("ce", 1.0, ce);
                let s = self.encoders[0].forward(&out.groups[2], true)?;
                let (s, f) = match_spatial(&s, factor()?)?;
                terms.push("l_inh", h.beta, inheritance_loss(&s, &f, h.factor_norm)?);
            }
            Method::IeFt => {
                terms.push("ce", 1.0, ce);
                let (inh, exp) = self.splits[0].halves(&out.groups[2])?;
                let (inh, exp) =
                    (self.encoders[0].forward(&inh, true)?, self.encoders[1].forward(&exp, true)?);
                let ((inh, f_inh), (exp, f_exp)) =
                    (match_spatial(&inh, factor()?)?, match_spatial(&exp, factor()?)?);
                terms.push("l_inh", h.lambda_inh, inheritance_loss(&inh, &f_inh, h.factor_norm)?);
                let l_exp = match h.exploration {
                    Exploration::L1 => exploration_loss(&exp, &f_exp, h.factor_norm)?,
                    Exploration::Dot => factor_dot_loss(&exp, &f_exp)?,
                };
                terms.push("l_exp", h.lambda_exp, l_exp);
            }
            Method::At => {
                terms.push("ce", 1.0, ce);
                let t = t()?;
                let at = (0..3)
                    .map(|g| match_spatial(&out.groups[g], &t.groups[g]).and_then(|(s, t)| at_loss(&s, &t)))
                    .collect::<Result<_>>()?;
                terms.push("at", h.beta, sum(at)?);
            }
            Method::IeAt => {
                terms.push("ce", 1.0, ce);
                let t = t()?;
                let (mut inh, mut exp) = (Vec::new(), Vec::new());
                for g in 0..3 {
                    let (a, b) = self.splits[g].halves(&out.groups[g])?;
                    let ((a, ta), (b, tb)) =
                        (match_spatial(&a, &t.groups[g])?, match_spatial(&b, &t.groups[g])?);
                    inh.push(at_loss(&a, &ta)?);
                    exp.push(at_loss(&b, &tb)?);
                }
                terms.push("l_inh", h.lambda_inh, sum(inh)?);
                terms.push("l_exp", h.lambda_exp, scale(&sum(exp)?, -1.0)?);
            }
            Method::Od | Method::IeOd => {
                terms.push("ce", 1.0, ce);
                let missing = || Error::invalid("distill", "no pre-ReLU features");
                let s = student_pre.as_ref().ok_or_else(missing)?;
                let t = t()?.pre_relu.as_ref().ok_or_else(missing)?;
                let od = self.overhaul.as_mut().ok_or_else(|| Error::invalid("distill", "no connectors"))?;
                if self.config.method == Method::Od {
                    od.push_od(s, t, h.beta, &mut terms)?;
                } else {
                    od.push_ie_od([s, t], &self.splits, [h.lambda_inh, h.lambda_exp], &mut terms)?;
                }
            }
        }
        let (total, terms) = terms.total()?;
        Ok(Losses { total, logits: out.logits, terms })
    }

    /// Channel counts the splits must have.
    fn split_channels(&self) -> Vec<usize> {
        self.splits.iter().map(ChannelSplit::channels).collect()
    }
}

impl Trainee for Distiller {
    fn train_step(&mut self, images: &Tensor, labels: &[usize], lr: f32) -> Result<StepStats> {
        self.sgd.set_lr(lr)?;
        let device = self.student.device();
        let images = images.to_device(&device)?;
        let mut graph = self.graph.take();
        let packed = device.step(graph.as_mut(), || {
            let losses = self.losses(&images, labels)?;
            let grads = autograd::backward(&losses.total)?;
            let modules = modules(self.student.as_mut(), &mut self.encoders, self.overhaul.as_mut());
            let mut params = params_of(modules.into_iter().map(|(_, m)| m).collect());
            self.sgd.step(&mut params, &grads)?;
            let correct = accuracy::count_correct(&losses.logits, labels)?;
            pack_terms(&losses.total, &correct, &losses.terms)
        });
        self.graph = graph;
        // One read back, after the whole step is queued.
        let v = packed?.read()?;
        let n = labels.len();
        Ok(StepStats {
            loss: v.loss * n as f64,
            correct: v.correct,
            images: n,
            terms: batch_terms(&v.terms, n),
        })
    }

    fn use_graphs(&mut self, on: bool) {
        self.graph = on.then(StepGraph::default);
    }

    fn evaluate(&mut self, test: &Loader) -> Result<(f64, f64)> {
        evaluate(self.student.as_mut(), test)
    }

    fn to_device(&mut self, device: &crate::Device) -> Result<()> {
        for (_, module) in with_encoders("student", self.student.as_mut(), &mut self.encoders) {
            module.to_device(device)?;
        }
        if let Some(o) = &mut self.overhaul {
            o.move_to(device)?;
        }
        self.teacher.as_mut().map_or(Ok(()), |t| t.to_device(device))
    }

    fn save_state(&mut self, ckpt: &mut Checkpoint) -> Result<()> {
        let modules = modules(self.student.as_mut(), &mut self.encoders, self.overhaul.as_mut());
        save_modules(ckpt, "", modules, "momentum", &self.sgd)?;
        ChannelSplit::save(&self.splits, ckpt);
        Ok(())
    }

    fn load_state(&mut self, ckpt: &Checkpoint) -> Result<()> {
        self.splits = ChannelSplit::load(ckpt, &self.split_channels())?;
        let modules = modules(self.student.as_mut(), &mut self.encoders, self.overhaul.as_mut());
        load_modules(ckpt, "", modules, "momentum", &mut self.sgd)
    }

    fn model(&mut self) -> Result<Checkpoint> {
        let mut ckpt = Checkpoint::new();
        ckpt.add_module("", self.student.as_mut())?;
        ckpt.metadata.insert("method".into(), self.config.method.name().into());
        if !self.splits.is_empty() {
            ChannelSplit::save(&self.splits, &mut ckpt);
        }
        Ok(ckpt)
    }
}
