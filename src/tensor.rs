//! `Tensor`: an f32 array with a runtime shape, its storage, and its place in the autograd graph.
//!
//! Activations are channels-last: `[N, H, W, C]`. Convolution weights keep PyTorch's
//! `[C_out, C_in, kh, kw]` so checkpoints map one to one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::autograd;
use crate::device::Device;
use crate::error::{Error, Result};

/// A tensor's identity in the autograd graph; unique for the life of the process.
pub type TensorId = u64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> TensorId {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Where a tensor's elements are kept.
#[derive(Clone, Debug)]
pub(crate) enum Storage {
    /// Host memory.
    Cpu(Vec<f32>),
}

/// An f32 tensor. Cloning is cheap: clones share the same storage and identity.
#[derive(Clone, Debug)]
pub struct Tensor {
    id: TensorId,
    shape: Arc<[usize]>,
    storage: Arc<Storage>,
    requires_grad: bool,
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
        Tensor::new_cpu(vec![value; shape.iter().product()], shape, false)
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
        Tensor { id: next_id(), shape: shape.into(), storage: Arc::new(Storage::Cpu(data)), requires_grad }
    }

    /// The result of an op on the CPU: it takes part in autograd when any input does and the
    /// tape is recording.
    pub(crate) fn from_op(data: Vec<f32>, shape: &[usize], inputs: &[&Tensor]) -> Tensor {
        let requires_grad = autograd::is_recording() && inputs.iter().any(|t| t.requires_grad);
        Tensor::new_cpu(data, shape, requires_grad)
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
        Tensor { id: next_id(), shape: shape.into(), storage: self.storage.clone(), requires_grad }
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
        match *self.storage {
            Storage::Cpu(_) => Device::Cpu,
        }
    }

    /// The elements in row-major order, copied to the host.
    pub fn to_vec(&self) -> Vec<f32> {
        self.cpu().to_vec()
    }

    /// The single element of a one-element tensor (a loss, say).
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::shape("item", format!("expected one element, got shape {:?}", self.shape())));
        }
        Ok(self.cpu()[0])
    }

    /// The host elements; for use by the CPU backend.
    pub(crate) fn cpu(&self) -> &[f32] {
        match &*self.storage {
            Storage::Cpu(v) => v,
        }
    }

    /// Mutable host elements, copying first if the storage is shared (an optimiser's update).
    pub(crate) fn cpu_mut(&mut self) -> &mut [f32] {
        match Arc::make_mut(&mut self.storage) {
            Storage::Cpu(v) => v,
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
