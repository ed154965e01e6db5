//! What the launchers need from a place that runs the kernels: buffers, copies and a launch.
//! Implemented by the GPU ([`super::backend::CudaBackend`], through cudarc) and, with the
//! `cuda-emulation` feature, by the CPU emulation (`super::emu::Emulator`), so every launcher and
//! every parity check is written once for both.

use std::collections::BTreeSet;
use std::sync::Mutex;

use cudarc::driver::{DeviceRepr, ValidAsZeroBits};

use super::params::KernelParams;
use crate::error::Result;

/// An element type of kernel buffers.
pub trait Elem: Copy + Default + DeviceRepr + ValidAsZeroBits + Send + Sync + 'static {
    /// The value a fresh buffer holds where the backend can poison it (NaN for `f32`), so an
    /// element a kernel forgets to write shows up.
    const POISON: Self;
}

impl Elem for f32 {
    const POISON: Self = f32::NAN;
}

impl Elem for i32 {
    const POISON: Self = i32::MIN;
}

/// A launch shape: blocks per grid and threads per block, in x, y, z.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// Blocks in x, y, z.
    pub blocks: [u32; 3],
    /// Threads per block in x, y, z.
    pub threads: [u32; 3],
}

impl Grid {
    /// Whether every extent is positive and a block has at most 1024 threads.
    pub fn is_valid(&self) -> bool {
        self.blocks.iter().chain(&self.threads).all(|&d| d > 0)
            && self.threads.iter().map(|&t| t as u64).product::<u64>() <= 1024
    }
}

/// One buffer argument of a kernel, after its parameter struct.
pub enum Arg<'a, E: Exec + ?Sized> {
    /// An input of `f32`.
    In(&'a E::Buf<f32>),
    /// An input of `i32` (labels, channel indices).
    Index(&'a E::Buf<i32>),
    /// An output, or a buffer updated in place.
    Out(&'a mut E::Buf<f32>),
    /// An absent optional buffer (a null pointer).
    Null,
}

/// A place that runs the kernels.
pub trait Exec {
    /// A buffer of `T` where the kernels can read and write it.
    type Buf<T: Elem>;

    /// The number of elements of `buf`.
    fn len<T: Elem>(&self, buf: &Self::Buf<T>) -> usize;

    /// A copy of `host` for the kernels.
    fn upload<T: Elem>(&self, host: &[T]) -> Result<Self::Buf<T>>;

    /// The elements of `buf`, copied to the host (waits for the kernels writing it).
    fn download<T: Elem>(&self, buf: &Self::Buf<T>) -> Result<Vec<T>>;

    /// A buffer of `len` elements for a kernel to fill; its contents are unspecified (poisoned
    /// with [`Elem::POISON`] where the backend can).
    fn alloc<T: Elem>(&self, len: usize) -> Result<Self::Buf<T>>;

    /// Runs `kernel` over `grid` with `params` and then `args`.
    ///
    /// # Safety
    /// `params` and `args` must match the kernel's signature in order and type, and every buffer
    /// must hold at least the elements that the kernel reads or writes for these parameters.
    unsafe fn launch<P: KernelParams>(
        &self,
        kernel: &'static str,
        grid: Grid,
        params: &P,
        args: &mut [Arg<'_, Self>],
    ) -> Result<()>;
}

/// Another [`Exec`] that also records the name of every kernel it launches (which kernels a test
/// run exercised).
pub struct Recorder<'e, E> {
    inner: &'e E,
    launched: Mutex<BTreeSet<&'static str>>,
}

impl<'e, E: Exec> Recorder<'e, E> {
    /// Wraps `inner`.
    pub fn new(inner: &'e E) -> Self {
        Recorder { inner, launched: Mutex::new(BTreeSet::new()) }
    }

    /// The names launched so far, sorted.
    pub fn launched(&self) -> BTreeSet<&'static str> {
        self.launched.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl<E: Exec> Exec for Recorder<'_, E> {
    type Buf<T: Elem> = E::Buf<T>;

    fn len<T: Elem>(&self, buf: &Self::Buf<T>) -> usize {
        self.inner.len(buf)
    }

    fn upload<T: Elem>(&self, host: &[T]) -> Result<Self::Buf<T>> {
        self.inner.upload(host)
    }

    fn download<T: Elem>(&self, buf: &Self::Buf<T>) -> Result<Vec<T>> {
        self.inner.download(buf)
    }

    fn alloc<T: Elem>(&self, len: usize) -> Result<Self::Buf<T>> {
        self.inner.alloc(len)
    }

    unsafe fn launch<P: KernelParams>(
        &self,
        kernel: &'static str,
        grid: Grid,
        params: &P,
        args: &mut [Arg<'_, Self>],
    ) -> Result<()> {
        if let Ok(mut set) = self.launched.lock() {
            set.insert(kernel);
        }
        let mut inner: Vec<Arg<'_, E>> = args
            .iter_mut()
            .map(|a| match std::mem::replace(a, Arg::Null) {
                Arg::In(b) => Arg::In(b),
                Arg::Index(b) => Arg::Index(b),
                Arg::Out(b) => Arg::Out(b),
                Arg::Null => Arg::Null,
            })
            .collect();
        // SAFETY: the same kernel, grid, parameters and buffers, forwarded unchanged.
        unsafe { self.inner.launch(kernel, grid, params, &mut inner) }
    }
}
