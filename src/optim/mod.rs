//! Stochastic gradient descent with momentum, as PyTorch's `torch.optim.SGD` with dampening 0.
//!
//! For each parameter `p` with gradient `g` (parameters without a gradient are skipped):
//! `d = g + weight_decay * p`; with momentum `m > 0`, `buf = d` on the parameter's first step and
//! `buf = m * buf + d` afterwards, then `d = d + m * buf` (Nesterov) or `d = buf`; finally
//! `p = p - lr * d`. Momentum buffers are kept per parameter position in the list given to
//! [`Sgd::step`], which must therefore be the same list, in the same order, at every step.

mod device;
pub mod launch;

use std::borrow::BorrowMut;

use crate::tensor::autograd::Gradients;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

const OP: &str = "sgd";

/// The hyper-parameters of [`Sgd`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0 disables momentum).
    pub momentum: f32,
    /// L2 penalty added to the gradient before momentum.
    pub weight_decay: f32,
    /// Nesterov momentum (needs `momentum > 0`).
    pub nesterov: bool,
}

impl SgdConfig {
    fn validate(&self) -> Result<()> {
        for (name, v) in [("lr", self.lr), ("momentum", self.momentum), ("weight_decay", self.weight_decay)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(OP, format!("{name} must be finite and non-negative, got {v}")));
            }
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(Error::invalid(OP, "Nesterov momentum needs momentum > 0"));
        }
        Ok(())
    }
}

/// CPU kernels over one parameter's slices.
pub(crate) mod cpu {
    use rayon::prelude::*;

    use super::SgdConfig;

    /// Elements a rayon task handles.
    const CHUNK: usize = 1 << 15;

    /// One update of `p` by `g` without momentum: `p -= lr * (g + wd * p)`.
    pub(crate) fn step_plain(cfg: &SgdConfig, p: &mut [f32], g: &[f32]) {
        p.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(p, g)| {
            for (p, &g) in p.iter_mut().zip(g) {
                *p -= cfg.lr * (g + cfg.weight_decay * *p);
            }
        });
    }

    /// One update of `p` by `g` with the momentum buffer `buf` (overwritten when `first`).
    pub(crate) fn step_momentum(cfg: &SgdConfig, p: &mut [f32], g: &[f32], buf: &mut [f32], first: bool) {
        let m = cfg.momentum;
        p.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).zip(buf.par_chunks_mut(CHUNK)).for_each(
            |((p, g), buf)| {
                for ((p, &g), b) in p.iter_mut().zip(g).zip(buf) {
                    let d = g + cfg.weight_decay * *p;
                    *b = if first { d } else { m * *b + d };
                    let d = if cfg.nesterov { d + m * *b } else { *b };
                    *p -= cfg.lr * d;
                }
            },
        );
    }
}

/// One parameter's update by `g` on the host.
fn update_on_host(
    config: &SgdConfig,
    p: &mut Tensor,
    g: &Tensor,
    buf: Option<&mut Tensor>,
    first: bool,
) -> Result<()> {
    let g = g.host()?;
    match buf {
        None => cpu::step_plain(config, p.host_mut()?, g),
        Some(b) => cpu::step_momentum(config, p.host_mut()?, g, b.host_mut()?, first),
    }
    Ok(())
}

/// SGD with momentum buffers keyed by parameter position, each on its parameter's device.
#[derive(Clone, Debug)]
pub struct Sgd {
    config: SgdConfig,
    buffers: Vec<Option<Tensor>>,
    /// The learning rate on the device, read there by the update (see [`device`]).
    lr_at: device::LearningRate,
}

impl Sgd {
    /// An optimiser with no momentum state yet; rejects negative or non-finite settings.
    pub fn new(config: SgdConfig) -> Result<Sgd> {
        config.validate()?;
        Ok(Sgd { config, buffers: Vec::new(), lr_at: Default::default() })
    }

    /// The current settings.
    pub fn config(&self) -> SgdConfig {
        self.config
    }

    /// Changes the learning rate (a schedule's step); rejects negative or non-finite values.
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        SgdConfig { lr, ..self.config }.validate()?;
        self.config.lr = lr;
        Ok(())
    }

    /// Updates every parameter that has a gradient in `grads`, in place; `params` holds tensors or
    /// `&mut Tensor`s.
    pub fn step<P: BorrowMut<Tensor>>(&mut self, params: &mut [P], grads: &Gradients) -> Result<()> {
        if self.buffers.is_empty() {
            self.buffers = vec![None; params.len()];
        } else if self.buffers.len() != params.len() {
            return Err(Error::invalid(
                OP,
                format!(
                    "{} parameters given, but the optimiser state holds {}",
                    params.len(),
                    self.buffers.len()
                ),
            ));
        }
        // Which parameters the device updates, and whether it is their first update.
        let mut on_device = vec![None; params.len()];
        for (i, (p, buf)) in params.iter_mut().zip(&mut self.buffers).enumerate() {
            let p: &mut Tensor = p.borrow_mut();
            let Some(g) = grads.get(p) else { continue };
            if g.numel() != p.numel() || buf.as_ref().is_some_and(|b| b.numel() != p.numel()) {
                return Err(Error::shape(
                    OP,
                    format!(
                        "parameter {i} of shape {:?} has a gradient of shape {:?} and a momentum buffer of {} elements",
                        p.shape(),
                        g.shape(),
                        buf.as_ref().map_or(0, Tensor::numel)
                    ),
                ));
            }
            let device = p.device();
            if g.device() != device {
                return Err(Error::Device(format!(
                    "{OP}: parameter {i} is on {device}, its gradient on {}",
                    g.device()
                )));
            }
            let first = buf.is_none();
            if self.config.momentum > 0.0 {
                match buf {
                    Some(b) => b.move_to(&device)?,
                    None => *buf = Some(Tensor::zeros(p.shape()).to_device(&device)?),
                }
            }
            if device.is_cpu() {
                update_on_host(&self.config, p, g, buf.as_mut(), first)?;
            } else {
                on_device[i] = Some(first);
            }
        }
        device::update(&self.config, &mut self.lr_at, params, &mut self.buffers, grads, &on_device)
    }

    /// The momentum buffers by parameter position (`None` before a parameter's first update),
    /// copied to the host for checkpoints.
    pub fn export_state(&self) -> Result<Vec<Option<Vec<f32>>>> {
        self.buffers.iter().map(|b| b.as_ref().map(Tensor::to_vec).transpose()).collect()
    }

    /// Restores buffers saved by [`Sgd::export_state`]; the next step checks them against the
    /// parameters.
    pub fn import_state(&mut self, buffers: Vec<Option<Vec<f32>>>) {
        let host = |v: Vec<f32>| {
            let shape = [v.len()];
            Tensor::new_cpu(v, &shape, false)
        };
        self.buffers = buffers.into_iter().map(|b| b.map(host)).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G1: [f32; 2] = [0.5, 1.0];
    const G2: [f32; 2] = [-1.0, 0.25];

    fn grads_of(p: &Tensor, g: [f32; 2]) -> Gradients {
        let mut grads = Gradients::default();
        grads.accumulate(p, Tensor::from_vec(g.to_vec(), &[2]).unwrap()).unwrap();
        grads
    }

    /// Two steps from `p = [1, -2]` with gradients `G1` then `G2`.
    fn two_steps(nesterov: bool) -> Vec<f32> {
        let cfg = SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 0.1, nesterov };
        let mut opt = Sgd::new(cfg).unwrap();
        let mut params = vec![Tensor::from_vec(vec![1.0, -2.0], &[2]).unwrap().into_param()];
        let grads = grads_of(&params[0], G1);
        opt.step(&mut params, &grads).unwrap();
        let grads = grads_of(&params[0], G2);
        opt.step(&mut params, &grads).unwrap();
        params[0].to_vec().unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} != {want:?}");
        }
    }

    #[test]
    fn nesterov_two_steps_by_hand() {
        // Step 1: d = G1 + 0.1 * [1, -2] = [0.6, 0.8]; buf = d; d + 0.9 buf = [1.14, 1.52];
        //         p = [1 - 0.114, -2 - 0.152] = [0.886, -2.152].
        // Step 2: d = G2 + 0.1 * p = [-0.9114, 0.0348]; buf = 0.9 [0.6, 0.8] + d = [-0.3714, 0.7548];
        //         d + 0.9 buf = [-1.24566, 0.71412]; p = [0.886 + 0.124566, -2.152 - 0.071412].
        assert_close(&two_steps(true), &[1.010566, -2.223412]);
    }

    #[test]
    fn heavy_ball_two_steps_by_hand() {
        // Step 1: d = [0.6, 0.8]; buf = d; p = [1 - 0.06, -2 - 0.08] = [0.94, -2.08].
        // Step 2: d = G2 + 0.1 * p = [-0.906, 0.042]; buf = 0.9 [0.6, 0.8] + d = [-0.366, 0.762];
        //         p = [0.94 + 0.0366, -2.08 - 0.0762].
        assert_close(&two_steps(false), &[0.9766, -2.1562]);
    }

    #[test]
    fn state_round_trip_skips_and_errors() {
        let cfg = SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 0.1, nesterov: true };
        let mut opt = Sgd::new(cfg).unwrap();
        let frozen = Tensor::from_vec(vec![3.0], &[1]).unwrap().into_param();
        let mut params = vec![Tensor::from_vec(vec![1.0, -2.0], &[2]).unwrap().into_param(), frozen];
        let grads = grads_of(&params[0], G1);
        opt.step(&mut params, &grads).unwrap();
        assert_eq!(params[1].to_vec().unwrap(), vec![3.0]);
        let state = opt.export_state().unwrap();
        assert!(state[0].is_some() && state[1].is_none());

        let mut resumed = Sgd::new(cfg).unwrap();
        resumed.import_state(state);
        let grads = grads_of(&params[0], G2);
        resumed.step(&mut params, &grads).unwrap();
        assert_close(&params[0].to_vec().unwrap(), &[1.010566, -2.223412]);
        let msg = resumed.step(&mut params[..1], &Gradients::default()).unwrap_err().to_string();
        assert!(msg.contains("sgd") && msg.contains("1 parameters"), "{msg}");

        let plain = SgdConfig { momentum: 0.0, ..cfg };
        assert!(Sgd::new(plain).unwrap_err().to_string().contains("Nesterov"));
        let mut opt = Sgd::new(SgdConfig { nesterov: false, ..plain }).unwrap();
        let grads = grads_of(&params[0], G2);
        // Borrowed parameters; p -= 0.1 * (G2 + 0.1 p) = [1.010566 + 0.0898943, -2.223412 - 0.0027659].
        opt.step(&mut [&mut params[0]], &grads).unwrap();
        assert_close(&params[0].to_vec().unwrap(), &[1.10046, -2.226178]);
        assert!(opt.export_state().unwrap()[0].is_none());
        assert!(opt.set_lr(-1.0).is_err());
    }
}
