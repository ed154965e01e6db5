//! The SGD update of a model's parameters on a device: all of them in one launch (two on the step
//! where some parameters get their first update and others do not), with the learning rate read
//! from device memory so a step replayed as a graph follows the schedule.

use std::borrow::BorrowMut;
use std::sync::Arc;

use super::SgdConfig;
use super::launch::{SgdTensor, sgd_step};
use crate::cuda::gpu::Gpu;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::autograd::Gradients;
use crate::tensor::device::Device;

/// The learning rate held on a device, with the value last written there.
#[derive(Clone, Debug, Default)]
pub(super) struct LearningRate {
    at: Option<(Tensor, f32)>,
}

impl LearningRate {
    /// `lr` on `gpu`: the buffer, written first when its value differs.
    fn on(&mut self, gpu: &Arc<Gpu>, lr: f32) -> Result<&Tensor> {
        let device = Device::Cuda(Arc::clone(gpu));
        match &mut self.at {
            Some((t, held)) if t.device() == device => {
                if *held != lr {
                    gpu.write(&[lr], t.gpu_mut()?.0)?;
                    *held = lr;
                }
            }
            _ => self.at = Some((Tensor::from_vec(vec![lr], &[1])?.to_device(&device)?, lr)),
        }
        Ok(&self.at.as_ref().expect("set above").0)
    }
}

/// Updates the parameters marked `Some(first)` in `on_device` (all on one device, with their
/// gradients in `grads` and momentum buffers in `buffers` when `cfg` has momentum).
pub(super) fn update<P: BorrowMut<Tensor>>(
    cfg: &SgdConfig,
    lr: &mut LearningRate,
    params: &mut [P],
    buffers: &mut [Option<Tensor>],
    grads: &Gradients,
    on_device: &[Option<bool>],
) -> Result<()> {
    for first in [true, false] {
        let mut gpu: Option<Arc<Gpu>> = None;
        let mut tensors = Vec::new();
        for ((p, buf), _) in
            params.iter_mut().zip(buffers.iter_mut()).zip(on_device).filter(|(_, f)| **f == Some(first))
        {
            let p: &mut Tensor = p.borrow_mut();
            let grad = grads.get(p).ok_or_else(|| Error::Device("sgd: a gradient went missing".into()))?;
            let grad = grad.gpu_buf()?;
            let (param, this) = p.gpu_mut()?;
            match &gpu {
                Some(g) if !Arc::ptr_eq(g, &this) => {
                    return Err(Error::Device("sgd: the parameters are on more than one device".into()));
                }
                _ => gpu = Some(this),
            }
            let momentum = match buf {
                Some(b) => Some(b.gpu_mut()?.0),
                None => None,
            };
            tensors.push(SgdTensor { param, grad, momentum });
        }
        if let Some(gpu) = gpu {
            let lr_at = lr.on(&gpu, cfg.lr)?.gpu_buf()?;
            sgd_step(&*gpu, cfg, first, Some(lr_at), &mut tensors)?;
        }
    }
    Ok(())
}
