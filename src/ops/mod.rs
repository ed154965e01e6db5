//! Every op: forward on the tensors, the backward rule recorded on the tape, shape checks.

pub mod activation;
pub mod arith;
pub mod batchnorm;
pub mod channels;
pub mod conv2d;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod shape;

pub use activation::{leaky_relu, relu};
pub use arith::{add, mul, scale};
pub use batchnorm::{
    BatchStats, batch_norm_add_relu_eval, batch_norm_add_relu_train, batch_norm_eval, batch_norm_relu_eval,
    batch_norm_relu_train, batch_norm_train, update_running_stats,
};
pub use channels::{gather_channels, shortcut_a, slice_channels};
pub use conv2d::{conv_transpose2d, conv2d};
pub use linear::linear;
pub use pool::global_avg_pool;
pub use shape::{flatten, reshape};

use std::sync::Arc;

use crate::cuda::gpu::{Gpu, GpuBuf};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Where `op` runs: `None` when every input is on the CPU, the device when every input is on
/// the same one; an error naming `op` when they are spread over several.
pub(crate) fn gpu_of(op: &'static str, inputs: &[&Tensor]) -> Result<Option<Arc<Gpu>>> {
    let Some(first) = inputs.first() else { return Ok(None) };
    let device = first.device();
    if let Some(other) = inputs.iter().find(|t| t.device() != device) {
        return Err(Error::Device(format!(
            "{op}: inputs on different devices ({device} and {})",
            other.device()
        )));
    }
    Ok(first.gpu().map(|(_, gpu)| Arc::clone(gpu)))
}

/// A new tensor of `shape` computed from `x` where `x` is: `cpu` on its host elements, or `gpu`
/// on its device buffer. The result carries no gradient (see [`Tensor::result_of`]).
pub(crate) fn map_on(
    x: &Tensor,
    shape: &[usize],
    cpu: impl FnOnce(&[f32]) -> Vec<f32>,
    gpu: impl FnOnce(&Gpu, &GpuBuf<f32>) -> Result<GpuBuf<f32>>,
) -> Result<Tensor> {
    match x.gpu() {
        Some((buf, device)) => Ok(Tensor::new_gpu(gpu(device, buf)?, device, shape, false)),
        None => Ok(Tensor::new_cpu(cpu(x.host()?), shape, false)),
    }
}

/// [`map_on`] for two operands, which must be on the same device (`op` names it in the error).
pub(crate) fn map2_on(
    op: &'static str,
    [a, b]: [&Tensor; 2],
    shape: &[usize],
    cpu: impl FnOnce(&[f32], &[f32]) -> Vec<f32>,
    gpu: impl FnOnce(&Gpu, &GpuBuf<f32>, &GpuBuf<f32>) -> Result<GpuBuf<f32>>,
) -> Result<Tensor> {
    match gpu_of(op, &[a, b])? {
        Some(device) => Ok(Tensor::new_gpu(gpu(&device, a.gpu_buf()?, b.gpu_buf()?)?, &device, shape, false)),
        None => Ok(Tensor::new_cpu(cpu(a.host()?, b.host()?), shape, false)),
    }
}
