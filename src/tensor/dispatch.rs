//! Where an op's work runs: the host elements on the CPU, or the device buffers through the
//! kernels, chosen from its inputs. The ops use these; the tape uses [`add_untracked`] to sum
//! gradients.

use std::sync::Arc;

use super::{Tensor, autograd};
use crate::cuda::gpu::{Gpu, GpuBuf};
use crate::cuda::launch::builtin::{Binary, binary};
use crate::error::{Error, Result};

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

/// [`map_on`] recorded on the tape, for an op whose backward needs only `dy`: `y = forward(x)` of
/// `shape` (`cpu` or `gpu`), then `dx = backward(dy)` of `x`'s shape (`cpu_backward` or
/// `gpu_backward`, where `dy` is).
pub(crate) fn map_on_tracked(
    x: &Tensor,
    shape: &[usize],
    cpu: impl FnOnce(&[f32]) -> Vec<f32>,
    gpu: impl FnOnce(&Gpu, &GpuBuf<f32>) -> Result<GpuBuf<f32>>,
    cpu_backward: impl FnOnce(&[f32]) -> Vec<f32> + 'static,
    gpu_backward: impl FnOnce(&Gpu, &GpuBuf<f32>) -> Result<GpuBuf<f32>> + 'static,
) -> Result<Tensor> {
    let y = map_on(x, shape, cpu, gpu)?.result_of(&[x]);
    let x = x.clone();
    autograd::record(&y, move |dy, grads| {
        let dx = map_on(dy, x.shape(), cpu_backward, gpu_backward)?;
        grads.accumulate(&x, dx)
    });
    Ok(y)
}

/// [`map_on_tracked`] for an op whose backward also reads its input: `y = forward(x)` of `shape`
/// (`cpu` or `gpu`), then `dx = backward(x, dy)` of `x`'s shape (`cpu_backward` or
/// `gpu_backward`, through [`map2_on`] under the name `op`).
pub(crate) fn map_on_tracked_x(
    x: &Tensor,
    shape: &[usize],
    cpu: impl FnOnce(&[f32]) -> Vec<f32>,
    gpu: impl FnOnce(&Gpu, &GpuBuf<f32>) -> Result<GpuBuf<f32>>,
    op: &'static str,
    cpu_backward: impl FnOnce(&[f32], &[f32]) -> Vec<f32> + 'static,
    gpu_backward: impl FnOnce(&Gpu, &GpuBuf<f32>, &GpuBuf<f32>) -> Result<GpuBuf<f32>> + 'static,
) -> Result<Tensor> {
    let y = map_on(x, shape, cpu, gpu)?.result_of(&[x]);
    let x = x.clone();
    autograd::record(&y, move |dy, grads| {
        let dx = map2_on(op, [&x, dy], x.shape(), cpu_backward, gpu_backward)?;
        grads.accumulate(&x, dx)
    });
    Ok(y)
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

/// `a + b` on their device, without gradient: the tape's sums of the gradients of one tensor.
pub(crate) fn add_untracked(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    map2_on(
        "add",
        [a, b],
        a.shape(),
        |a, b| a.iter().zip(b).map(|(a, b)| a + b).collect(),
        |g, a, b| binary(g, Binary::Add, a, b),
    )
}
