//! `Tensor`: an f32 array with a runtime shape, its storage, and its place in the autograd graph.
//!
//! Activations are channels-last: `[N, H, W, C]`. Convolution weights keep PyTorch's
//! `[C_out, C_in, kh, kw]` so checkpoints map one to one.

pub mod autograd;
pub mod device;
pub(crate) mod dispatch;
mod readback;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::cuda::exec::Exec;
use crate::cuda::gpu::{Gpu, GpuBuf};
use crate::error::{Error, Result};
use device::Device;
pub use readback::{Scalars, pack_scalars, read_scalars};

/// A tensor's identity in the autograd graph; unique for the life of the process.
pub type TensorId = u64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> TensorId {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Where a tensor's elements are kept.
#[derive(Debug)]
pub(crate) enum Storage {
    /// Host memory.
    Cpu(Vec<f32>),
    /// Memory of a device running the CUDA kernels.
    Gpu(GpuBuf<f32>, Arc<Gpu>),
}

/// An f32 tensor. Cloning is cheap: clones share the same storage and identity.
#[derive(Clone, Debug)]
pub struct Tensor {
    id: TensorId,
    shape: Arc<[usize]>,
    storage: Arc<Storage>,
    requires_grad: bool,
    /// The value of a one-element tensor when the host knows it without a copy (a backward seed
    /// and its scalings), so that a loss's backward on a device needs no synchronisation.
    scalar: Option<f32>,
}

impl Tensor {
    /// A tensor holding `data` with `shape`; fails when the element count differs.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if data.len() != numel {
            return Err(Error::shape(
                "tensor",
                format!("{} elements do not fill shape {shape:?} ({numel} elements)", data.len()),
            ));
        }
        Ok(Tensor::new_cpu(data, shape, false))
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Tensor {
        let t = Tensor::new_cpu(vec![value; shape.iter().product()], shape, false);
        if t.numel() == 1 { t.with_scalar(Some(value)) } else { t }
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    /// A tensor of independent N(0, std^2) samples drawn from `rng`.
    pub fn randn(shape: &[usize], std: f32, rng: &mut impl Rng) -> Tensor {
        let n = shape.iter().product();
        let data = (0..n)
            .map(|_| std * <StandardNormal as Distribution<f32>>::sample(&StandardNormal, rng))
            .collect();
        Tensor::new_cpu(data, shape, false)
    }

    /// A tensor of independent U(-bound, bound) samples drawn from `rng`.
    pub fn uniform(shape: &[usize], bound: f32, rng: &mut impl Rng) -> Tensor {
        let n = shape.iter().product();
        let data = (0..n).map(|_| rng.random_range(-bound..=bound)).collect();
        Tensor::new_cpu(data, shape, false)
    }

    pub(crate) fn new_cpu(data: Vec<f32>, shape: &[usize], requires_grad: bool) -> Tensor {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        let storage = Arc::new(Storage::Cpu(data));
        Tensor { id: next_id(), shape: shape.into(), storage, requires_grad, scalar: None }
    }

    /// A tensor holding the device buffer `buf` of `gpu`.
    pub(crate) fn new_gpu(buf: GpuBuf<f32>, gpu: &Arc<Gpu>, shape: &[usize], requires_grad: bool) -> Tensor {
        debug_assert_eq!(gpu.len(&buf), shape.iter().product::<usize>());
        let storage = Arc::new(Storage::Gpu(buf, Arc::clone(gpu)));
        Tensor { id: next_id(), shape: shape.into(), storage, requires_grad, scalar: None }
    }

    /// This tensor with its host-known value set to `scalar` (see [`Tensor::known_scalar`]).
    pub(crate) fn with_scalar(self, scalar: Option<f32>) -> Tensor {
        Tensor { scalar: scalar.filter(|_| self.numel() == 1), ..self }
    }

    /// The value of this one-element tensor when the host knows it without copying it back.
    pub(crate) fn known_scalar(&self) -> Option<f32> {
        self.scalar
    }

    /// Whether the result of an op on `inputs` takes part in autograd: when any input does and
    /// the tape is recording.
    fn result_requires_grad(inputs: &[&Tensor]) -> bool {
        autograd::is_recording() && inputs.iter().any(|t| t.requires_grad)
    }

    /// The result of an op on the CPU.
    pub(crate) fn from_op(data: Vec<f32>, shape: &[usize], inputs: &[&Tensor]) -> Tensor {
        Tensor::new_cpu(data, shape, Tensor::result_requires_grad(inputs))
    }

    /// This tensor as the result of an op on `inputs` (see [`Tensor::from_op`]).
    pub(crate) fn result_of(self, inputs: &[&Tensor]) -> Tensor {
        Tensor { requires_grad: Tensor::result_requires_grad(inputs), ..self }
    }

    /// A copy on `device` (the same tensor when it is there already), cut off from the graph.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if self.device() == *device {
            return Ok(self.detach());
        }
        let host = self.to_vec()?;
        let moved = match device {
            Device::Cpu => Tensor::new_cpu(host, self.shape(), false),
            Device::Cuda(gpu) => Tensor::new_gpu(gpu.upload(&host)?, gpu, self.shape(), false),
        };
        Ok(moved.with_scalar(self.scalar))
    }

    /// Moves this tensor's data to `device` in place, keeping its identity (a module's
    /// parameters and buffers, before training).
    pub fn move_to(&mut self, device: &Device) -> Result<()> {
        if self.device() != *device {
            self.storage = self.to_device(device)?.storage;
        }
        Ok(())
    }

    /// This tensor as a trainable leaf: a new identity whose gradient `backward` keeps.
    pub fn into_param(self) -> Tensor {
        Tensor { id: next_id(), requires_grad: true, ..self }
    }

    /// The same data, cut off from the autograd graph.
    pub fn detach(&self) -> Tensor {
        Tensor { id: next_id(), requires_grad: false, ..self.clone() }
    }

    /// A view of the same data with another shape of the same element count (no copy).
    pub(crate) fn with_shape(&self, shape: &[usize], requires_grad: bool) -> Tensor {
        debug_assert_eq!(self.numel(), shape.iter().product::<usize>());
        let storage = self.storage.clone();
        Tensor { id: next_id(), shape: shape.into(), storage, requires_grad, scalar: self.scalar }
    }

    /// Overwrites the elements with `values` (same count), on whichever device the tensor is,
    /// keeping its identity (loading a checkpoint).
    pub fn set_values(&mut self, values: &[f32]) -> Result<()> {
        if values.len() != self.numel() {
            return Err(Error::shape(
                "set_values",
                format!("{} values for a tensor of shape {:?}", values.len(), self.shape()),
            ));
        }
        self.scalar = None;
        self.storage = Arc::new(match &*self.storage {
            Storage::Cpu(_) => Storage::Cpu(values.to_vec()),
            Storage::Gpu(_, gpu) => Storage::Gpu(gpu.upload(values)?, Arc::clone(gpu)),
        });
        Ok(())
    }

    /// The identity of this tensor in the autograd graph.
    pub fn id(&self) -> TensorId {
        self.id
    }

    /// The extent of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether gradients flow to or through this tensor.
    pub fn requires_grad(&self) -> bool {
        self.requires_grad
    }

    /// The device holding the data.
    pub fn device(&self) -> Device {
        match &*self.storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu(_, gpu) => Device::Cuda(Arc::clone(gpu)),
        }
    }

    /// The elements in row-major order, copied to the host (waits for the device).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        match &*self.storage {
            Storage::Cpu(v) => Ok(v.clone()),
            Storage::Gpu(buf, gpu) => gpu.download(buf),
        }
    }

    /// The single element of a one-element tensor (a loss, say).
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::shape("item", format!("expected one element, got shape {:?}", self.shape())));
        }
        Ok(self.to_vec()?[0])
    }

    /// The error for host access to a tensor on a device.
    fn not_on_host(&self) -> Error {
        Error::Device(format!(
            "a tensor of shape {:?} on {} reached an operation that runs on the CPU only",
            self.shape(),
            self.device()
        ))
    }

    /// The host elements; for the CPU backend (an error for a tensor on a device).
    pub(crate) fn host(&self) -> Result<&[f32]> {
        match &*self.storage {
            Storage::Cpu(v) => Ok(v),
            Storage::Gpu(..) => Err(self.not_on_host()),
        }
    }

    /// The device buffer and its device, when the tensor is on one.
    pub(crate) fn gpu(&self) -> Option<(&GpuBuf<f32>, &Arc<Gpu>)> {
        match &*self.storage {
            Storage::Cpu(_) => None,
            Storage::Gpu(buf, gpu) => Some((buf, gpu)),
        }
    }

    /// The device buffer (an error for a tensor on the CPU).
    pub(crate) fn gpu_buf(&self) -> Result<&GpuBuf<f32>> {
        match &*self.storage {
            Storage::Gpu(buf, _) => Ok(buf),
            Storage::Cpu(_) => Err(Error::Device(format!(
                "a tensor of shape {:?} on the CPU was mixed with tensors on a device",
                self.shape()
            ))),
        }
    }

    /// Mutable storage, copying it first when it is shared (an optimiser's update in place); a
    /// device buffer is copied on the device (a scaling by one).
    fn storage_mut(&mut self) -> Result<&mut Storage> {
        self.scalar = None;
        if Arc::get_mut(&mut self.storage).is_none() {
            let copy = match &*self.storage {
                Storage::Cpu(v) => Storage::Cpu(v.clone()),
                Storage::Gpu(buf, gpu) => {
                    Storage::Gpu(crate::cuda::launch::builtin::scale(&**gpu, 1.0, buf)?, Arc::clone(gpu))
                }
            };
            self.storage = Arc::new(copy);
        }
        Arc::get_mut(&mut self.storage).ok_or_else(|| Error::Device("tensor storage is shared".into()))
    }

    /// Mutable host elements (an error for a tensor on a device).
    pub(crate) fn host_mut(&mut self) -> Result<&mut [f32]> {
        if self.gpu().is_some() {
            return Err(self.not_on_host());
        }
        match self.storage_mut()? {
            Storage::Cpu(v) => Ok(v),
            Storage::Gpu(..) => Err(Error::Device("host storage expected, found a device buffer".into())),
        }
    }

    /// The mutable device buffer and its device (an error for a tensor on the CPU).
    pub(crate) fn gpu_mut(&mut self) -> Result<(&mut GpuBuf<f32>, Arc<Gpu>)> {
        match self.storage_mut()? {
            Storage::Gpu(buf, gpu) => Ok((buf, Arc::clone(gpu))),
            Storage::Cpu(_) => {
                Err(Error::Device("expected a tensor on a device, found one on the CPU".into()))
            }
        }
    }

    /// The device buffer and its device, to update in place, when no other tensor holds the
    /// buffer (a clone or a view would see the change); `None` on the CPU or when it is shared.
    /// The host-known scalar is forgotten.
    pub(crate) fn gpu_mut_unshared(&mut self) -> Option<(&mut GpuBuf<f32>, &Arc<Gpu>)> {
        match Arc::get_mut(&mut self.storage)? {
            Storage::Gpu(buf, gpu) => {
                self.scalar = None;
                Some((buf, gpu))
            }
            Storage::Cpu(_) => None,
        }
    }

    /// Checks that the shape is `expected`, where `None` matches any extent.
    pub(crate) fn expect_shape(
        &self,
        op: &'static str,
        what: &str,
        expected: &[Option<usize>],
    ) -> Result<()> {
        let ok = self.rank() == expected.len()
            && self.shape.iter().zip(expected).all(|(&d, e)| e.is_none_or(|e| e == d));
        if ok {
            return Ok(());
        }
        let want: Vec<String> =
            expected.iter().map(|e| e.map_or_else(|| "_".to_string(), |d| d.to_string())).collect();
        Err(Error::shape(op, format!("{what} has shape {:?}, expected [{}]", self.shape(), want.join(", "))))
    }
}
