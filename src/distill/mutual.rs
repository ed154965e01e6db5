//! Deep mutual learning (DML) and its inheritance-and-exploration form (IE-DML): two networks
//! trained together from scratch, updated in turn within each step.
//!
//! A step is two phases, first `i = 1, j = 2`, then `i = 2, j = 1`. Phase `i`: network `j` runs
//! forward (training-mode batch norm, not recorded) with its current weights, then network `i`
//! runs forward and is updated on `CE(s_i) + KL(p_j || p_i)` (`p = softmax`, temperature 1). So
//! network 1 learns from network 2's predictions before either moved, and network 2 from network
//! 1's predictions after network 1's update. Each network therefore sees every batch twice per
//! step in training mode and its batch-norm running statistics take two updates.
//!
//! IE-DML adds, in phase `i`, `lambda_inh * L_inh(E_inh,i(F_i,inh), R_j) + lambda_exp *
//! L_exp(E_exp,i(F_i,exp), R_j)` where `R_j` (not differentiated) is the factor of network `j`'s
//! own auto-encoder, which is trained in the same phase on its reconstruction loss of `F_j`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::autoencoder::Recon;
use super::encoder::{FactorAutoEncoder, StudentEncoder};
use super::spatial::match_spatial;
use super::split::ChannelSplit;
use super::student::DistillConfig;
use super::{
    Exploration, Method, PackedTerms, Terms, load_modules, pack_terms, params_of, save_modules, with_encoders,
};
use crate::checkpoint::Checkpoint;
use crate::cuda::graph::StepGraph;
use crate::data::Loader;
use crate::error::{Error, Result};
use crate::nn::{Module, Network};
use crate::ops::accuracy;
use crate::ops::arith::add;
use crate::ops::loss::{cross_entropy, exploration_loss, factor_dot_loss, inheritance_loss, kd_loss};
use crate::optim::Sgd;
use crate::tensor::Tensor;
use crate::tensor::autograd;
use crate::train::{StepStats, Trainee, evaluate};

/// One of the two networks, with what it trains beside it.
pub struct Side {
    /// The network.
    pub net: Box<dyn Network>,
    /// IE-DML: the `[inheritance, exploration]` encoders of this network's feature halves.
    pub encoders: Vec<StudentEncoder>,
    /// IE-DML: the split of this network's feature.
    pub split: Option<ChannelSplit>,
    /// IE-DML: this network's auto-encoder, whose factor the peer learns from.
    pub autoencoder: Option<FactorAutoEncoder>,
    /// The optimiser of the network and its encoders.
    pub sgd: Sgd,
    /// IE-DML: the optimiser of the auto-encoder.
    pub ae_sgd: Option<Sgd>,
}

impl Side {
    fn new(net: Box<dyn Network>, config: &DistillConfig, factor: usize, seed: u64) -> Result<Self> {
        let mut side = Side {
            net,
            encoders: Vec::new(),
            split: None,
            autoencoder: None,
            sgd: Sgd::new(config.sgd)?,
            ae_sgd: None,
        };
        if config.method == Method::IeDml {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1e4d);
            let c = side.net.feature_channels();
            let split = ChannelSplit::new(config.split, c, seed).with_ratio(config.split_ratio)?;
            let (a, b) = split.half_sizes();
            side.encoders = vec![
                StudentEncoder::new(config.encoder, a, factor, &mut rng)?,
                StudentEncoder::new(config.encoder, b, factor, &mut rng)?,
            ];
            side.split = Some(split);
            side.autoencoder = Some(FactorAutoEncoder::new(config.encoder, c, factor, &mut rng)?);
            side.ae_sgd = Some(Sgd::new(config.sgd)?);
        }
        Ok(side)
    }

    fn save(&mut self, ckpt: &mut Checkpoint, prefix: &str) -> Result<()> {
        let modules = with_encoders("net", self.net.as_mut(), &mut self.encoders);
        save_modules(ckpt, prefix, modules, &format!("{prefix}.momentum"), &self.sgd)?;
        if let (Some(ae), Some(ae_sgd)) = (&mut self.autoencoder, &self.ae_sgd) {
            save_modules(ckpt, prefix, vec![("autoencoder", ae)], &format!("{prefix}.ae_momentum"), ae_sgd)?;
        }
        Ok(())
    }

    fn load(&mut self, ckpt: &Checkpoint, prefix: &str) -> Result<()> {
        let modules = with_encoders("net", self.net.as_mut(), &mut self.encoders);
        load_modules(ckpt, prefix, modules, &format!("{prefix}.momentum"), &mut self.sgd)?;
        if let (Some(ae), Some(ae_sgd)) = (&mut self.autoencoder, &mut self.ae_sgd) {
            load_modules(ckpt, prefix, vec![("autoencoder", ae)], &format!("{prefix}.ae_momentum"), ae_sgd)?;
        }
        Ok(())
    }
}

/// What one phase reports.
struct Phase {
    loss: f64,
    correct: usize,
    terms: Vec<(&'static str, f64)>,
    recon: Option<f64>,
}

/// Two networks learning from each other (DML, IE-DML).
pub struct Mutual {
    /// The recipe (`dml` or `ie-dml`) and its weights.
    pub config: DistillConfig,
    /// Network 1 (the one evaluated and saved as the model) and network 2.
    pub sides: [Side; 2],
    /// The reconstruction loss of the online auto-encoders (IE-DML).
    pub recon: Recon,
    /// The graphs of the two phases' steps on a GPU (`None`: every kernel launched each step).
    graphs: [Option<StepGraph>; 2],
}

impl Mutual {
    /// Sets up `config.method` (dml or ie-dml) for `net1` and `net2`; IE-DML factors have
    /// `factor_channels` channels.
    pub fn new(
        net1: Box<dyn Network>,
        net2: Box<dyn Network>,
        config: DistillConfig,
        factor_channels: usize,
        recon: Recon,
    ) -> Result<Self> {
        config.hyper.validate()?;
        if !config.method.is_mutual() {
            return Err(Error::invalid(
                "mutual",
                format!("{} is not a mutual-learning recipe", config.method),
            ));
        }
        let sides = [
            Side::new(net1, &config, factor_channels, config.seed)?,
            Side::new(net2, &config, factor_channels, config.seed.wrapping_add(1))?,
        ];
        Ok(Mutual { config, sides, recon, graphs: [Some(StepGraph::default()), Some(StepGraph::default())] })
    }

    /// Phase `i` (0 or 1): updates network `i` against the current predictions (and factor) of
    /// the other, whose auto-encoder is trained at the same time; one step of device work, read
    /// back once.
    fn phase(&mut self, i: usize, images: &Tensor, labels: &[usize]) -> Result<Phase> {
        let mut graph = self.graphs[i].take();
        let device = images.device();
        let packed = device.step(graph.as_mut(), || self.phase_work(i, images, labels));
        self.graphs[i] = graph;
        let (packed, has_recon) = packed?;
        let mut v = packed.read()?;
        let recon = if has_recon { v.terms.pop().map(|(_, r)| r) } else { None };
        Ok(Phase { loss: v.loss, correct: v.correct, terms: v.terms, recon })
    }

    /// The device work of phase `i`, with its values gathered for reading and whether the
    /// reconstruction loss is the last of them.
    fn phase_work(&mut self, i: usize, images: &Tensor, labels: &[usize]) -> Result<(PackedTerms, bool)> {
        let [a, b] = &mut self.sides;
        let (me, peer) = if i == 0 { (a, b) } else { (b, a) };
        let peer_out = {
            let _guard = autograd::no_grad();
            peer.net.forward(images, true)?
        };
        let (mut peer_factor, mut recon) = (None, None);
        if let Some(ae) = &mut peer.autoencoder {
            let (factor, rebuilt) = ae.reconstruct(&peer_out.groups[2], true)?;
            recon = Some(self.recon.loss(&rebuilt, &peer_out.groups[2])?);
            peer_factor = Some(factor.detach());
        }
        let out = me.net.forward(images, true)?;
        let h = self.config.hyper;
        let mut terms = Terms::default();
        terms.push("ce", 1.0, cross_entropy(&out.logits, labels)?);
        terms.push("kl", 1.0, kd_loss(&out.logits, &peer_out.logits, 1.0)?);
        if let (Some(split), Some(factor)) = (&me.split, &peer_factor) {
            let (inh, exp) = split.halves(&out.groups[2])?;
            let (inh, exp) = (me.encoders[0].forward(&inh, true)?, me.encoders[1].forward(&exp, true)?);
            let ((inh, f_inh), (exp, f_exp)) = (match_spatial(&inh, factor)?, match_spatial(&exp, factor)?);
            terms.push("l_inh", h.lambda_inh, inheritance_loss(&inh, &f_inh, h.factor_norm)?);
            let l_exp = match h.exploration {
                Exploration::L1 => exploration_loss(&exp, &f_exp, h.factor_norm)?,
                Exploration::Dot => factor_dot_loss(&exp, &f_exp)?,
            };
            terms.push("l_exp", h.lambda_exp, l_exp);
        }
        let (loss, mut values) = terms.total()?;
        // The reconstruction loss reaches only the peer's auto-encoder, the rest only this side.
        let objective = match &recon {
            Some(r) => add(&loss, r)?,
            None => loss.clone(),
        };
        let grads = autograd::backward(&objective)?;
        let modules = with_encoders("net", me.net.as_mut(), &mut me.encoders);
        let mut params = params_of(modules.into_iter().map(|(_, m)| m).collect());
        me.sgd.step(&mut params, &grads)?;
        if let (Some(ae), Some(ae_sgd)) = (&mut peer.autoencoder, &mut peer.ae_sgd) {
            ae_sgd.step(&mut ae.params_mut(), &grads)?;
        }
        // One read back, after the updates are queued; the reconstruction loss last.
        values.extend(recon.as_ref().map(|r| ("recon", r.detach())));
        let correct = accuracy::count_correct(&out.logits, labels)?;
        Ok((pack_terms(&loss, &correct, &values)?, recon.is_some()))
    }
}

impl Trainee for Mutual {
    fn train_step(&mut self, images: &Tensor, labels: &[usize], lr: f32) -> Result<StepStats> {
        for side in &mut self.sides {
            side.sgd.set_lr(lr)?;
            if let Some(s) = &mut side.ae_sgd {
                s.set_lr(lr)?;
            }
        }
        let images = &images.to_device(&self.sides[0].net.device())?;
        let first = self.phase(0, images, labels)?;
        let second = self.phase(1, images, labels)?;
        let n = labels.len() as f64;
        let mut terms: std::collections::BTreeMap<String, f64> =
            first.terms.iter().map(|(k, v)| (k.to_string(), v * n)).collect();
        terms.insert("peer_loss".into(), second.loss * n);
        terms.insert("peer_acc".into(), 100.0 * second.correct as f64);
        for (name, recon) in [("recon2", first.recon), ("recon1", second.recon)] {
            if let Some(r) = recon {
                terms.insert(name.into(), r * n);
            }
        }
        Ok(StepStats { loss: first.loss * n, correct: first.correct, images: labels.len(), terms })
    }

    fn use_graphs(&mut self, on: bool) {
        self.graphs = [on.then(StepGraph::default), on.then(StepGraph::default)];
    }

    fn evaluate(&mut self, test: &Loader) -> Result<(f64, f64)> {
        evaluate(self.sides[0].net.as_mut(), test)
    }

    fn to_device(&mut self, device: &crate::Device) -> Result<()> {
        for side in &mut self.sides {
            for (_, module) in with_encoders("net", side.net.as_mut(), &mut side.encoders) {
                module.to_device(device)?;
            }
            if let Some(ae) = &mut side.autoencoder {
                crate::nn::Module::to_device(ae, device)?;
            }
        }
        Ok(())
    }

    fn save_state(&mut self, ckpt: &mut Checkpoint) -> Result<()> {
        let [a, b] = &mut self.sides;
        a.save(ckpt, "net1")?;
        b.save(ckpt, "net2")?;
        let splits: Vec<ChannelSplit> = self.sides.iter().filter_map(|s| s.split.clone()).collect();
        ChannelSplit::save(&splits, ckpt);
        Ok(())
    }

    fn load_state(&mut self, ckpt: &Checkpoint) -> Result<()> {
        let expected: Vec<usize> =
            self.sides.iter().filter_map(|s| s.split.as_ref().map(ChannelSplit::channels)).collect();
        let mut splits = ChannelSplit::load(ckpt, &expected)?.into_iter();
        for side in &mut self.sides {
            if side.split.is_some() {
                side.split = splits.next();
            }
        }
        let [a, b] = &mut self.sides;
        a.load(ckpt, "net1")?;
        b.load(ckpt, "net2")
    }

    fn model(&mut self) -> Result<Checkpoint> {
        let mut ckpt = Checkpoint::new();
        ckpt.add_module("", self.sides[0].net.as_mut())?;
        ckpt.metadata.insert("method".into(), self.config.method.name().into());
        if let Some(split) = &self.sides[0].split {
            ChannelSplit::save(std::slice::from_ref(split), &mut ckpt);
        }
        Ok(ckpt)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::distill::{EncoderKind, Hyper, SplitKind};
    use crate::nn::Arch;
    use crate::optim::SgdConfig;

    const SGD: SgdConfig = SgdConfig { lr: 0.05, momentum: 0.9, weight_decay: 5e-4, nesterov: true };

    fn net(seed: u64) -> Box<dyn Network> {
        "resnet8".parse::<Arch>().unwrap().build(1, 10, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap()
    }

    fn batch() -> (Tensor, Vec<usize>) {
        (Tensor::randn(&[3, 16, 16, 1], 1.0, &mut ChaCha8Rng::seed_from_u64(11)), vec![2, 7, 2])
    }

    fn config(method: Method) -> DistillConfig {
        let hyper = Hyper { lambda_inh: 3.0, lambda_exp: 5.0, ..Hyper::defaults(method) };
        DistillConfig {
            method,
            hyper,
            encoder: EncoderKind::Coder,
            split: SplitKind::Random,
            split_ratio: 0.5,
            sgd: SGD,
            seed: 3,
        }
    }

    /// Every tensor of `m` (parameters and buffers) as bits.
    fn bits(m: &mut dyn Module) -> Vec<(String, Vec<u32>)> {
        let mut ckpt = Checkpoint::new();
        ckpt.add_module("", m).unwrap();
        ckpt.tensors.into_iter().map(|(k, (_, v))| (k, v.iter().map(|x| x.to_bits()).collect())).collect()
    }

    /// CE + KL(p_peer || p_self) of `me` against the given peer logits, then one SGD step.
    fn dml_update(me: &mut dyn Network, sgd: &mut Sgd, peer_logits: &Tensor, x: &Tensor, y: &[usize]) {
        let out = me.forward(x, true).unwrap();
        let loss =
            add(&cross_entropy(&out.logits, y).unwrap(), &kd_loss(&out.logits, peer_logits, 1.0).unwrap())
                .unwrap();
        let grads = autograd::backward(&loss).unwrap();
        sgd.step(&mut me.params_mut(), &grads).unwrap();
    }

    fn predictions(net: &mut dyn Network, x: &Tensor) -> Tensor {
        let _guard = autograd::no_grad();
        net.forward(x, true).unwrap().logits
    }

    #[test]
    fn dml_updates_net_1_on_old_then_net_2_on_new_predictions() {
        let (x, y) = batch();
        let cfg = config(Method::Dml);
        let mut m = Mutual::new(net(1), net(2), cfg, 8, Recon::L1).unwrap();
        m.train_step(&x, &y, 0.05).unwrap();
        let (got1, got2) = (bits(m.sides[0].net.as_mut()), bits(m.sides[1].net.as_mut()));

        // By hand: net 1 learns from net 2's predictions before either moved, then net 2 from net 1's
        // updated predictions.
        let (mut n1, mut n2) = (net(1), net(2));
        let (mut s1, mut s2) = (Sgd::new(SGD).unwrap(), Sgd::new(SGD).unwrap());
        let old2 = predictions(n2.as_mut(), &x);
        dml_update(n1.as_mut(), &mut s1, &old2, &x, &y);
        let new1 = predictions(n1.as_mut(), &x);
        dml_update(n2.as_mut(), &mut s2, &new1, &x, &y);
        assert!(bits(n1.as_mut()) == got1, "net 1 is not the one updated on net 2's old predictions");
        assert!(bits(n2.as_mut()) == got2, "net 2 is not the one updated on net 1's new predictions");

        // Net 2 trained on net 1's *old* predictions ends elsewhere: the order is visible.
        let (mut o1, mut o2, mut so2) = (net(1), net(2), Sgd::new(SGD).unwrap());
        let old1 = predictions(o1.as_mut(), &x);
        let _ = predictions(o2.as_mut(), &x);
        let _ = predictions(o1.as_mut(), &x);
        dml_update(o2.as_mut(), &mut so2, &old1, &x, &y);
        assert!(bits(o2.as_mut()) != got2);
    }

    #[test]
    fn ie_dml_trains_both_networks_encoders_and_online_autoencoders() {
        let (x, y) = batch();
        let cfg = config(Method::IeDml);
        let mut m = Mutual::new(net(1), net(2), cfg, 8, Recon::L1).unwrap();
        let before: Vec<_> = m
            .sides
            .iter_mut()
            .map(|s| (bits(s.net.as_mut()), bits(s.autoencoder.as_mut().unwrap())))
            .collect();
        let stats = m.train_step(&x, &y, 0.05).unwrap();
        for key in ["ce", "kl", "l_inh", "l_exp", "recon1", "recon2", "peer_loss"] {
            assert!(stats.terms.contains_key(key), "missing {key}: {:?}", stats.terms);
        }
        assert!(stats.terms["l_exp"] < 0.0);
        for (side, (net_bits, ae_bits)) in m.sides.iter_mut().zip(before) {
            assert!(bits(side.net.as_mut()) != net_bits);
            assert!(bits(side.autoencoder.as_mut().unwrap()) != ae_bits);
        }
        let mut state = Checkpoint::new();
        m.save_state(&mut state).unwrap();
        let mut again = Mutual::new(net(5), net(6), cfg, 8, Recon::L1).unwrap();
        again.load_state(&state).unwrap();
        assert!(
            bits(again.sides[1].autoencoder.as_mut().unwrap())
                == bits(m.sides[1].autoencoder.as_mut().unwrap())
        );
    }
}
