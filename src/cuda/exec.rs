//! What the launchers need from a place that runs the kernels: buffers, copies and a launch.
//! Implemented by the GPU ([`super::backend::CudaBackend`], through cudarc) and, with the
//! `cuda-emulation` feature, by the CPU emulation (`super::emu::Emulator`), so every launcher and
//! every parity check is written once for both.

use std::collections::BTreeSet;
use std::sync::Mutex;

use cudarc::driver::{DeviceRepr, ValidAsZeroBits};

use super::params::KernelParams;
use crate::error::{Error, Result};

/// An element type of kernel buffers.
pub trait Elem:
    Copy + Default + DeviceRepr + ValidAsZeroBits + bytemuck::Pod + Send + Sync + 'static
{
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

impl Elem for u64 {
    const POISON: Self = u64::MAX;
}

/// Checks that `src_len` elements fit in `dst_len` from `offset` on.
pub fn check_copy(src_len: usize, dst_len: usize, offset: usize) -> Result<()> {
    if offset.checked_add(src_len).is_some_and(|end| end <= dst_len) {
        return Ok(());
    }
    Err(Error::shape("copy_into", format!("{src_len} elements at {offset} overflow {dst_len}")))
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

/// One kernel launch: which kernel, its launch shape and its dynamic shared memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// The kernel's name.
    pub kernel: &'static str,
    /// Blocks and threads.
    pub grid: Grid,
    /// Bytes of dynamic shared memory per block (from the kernel's contract).
    pub shared_bytes: u32,
}

/// One buffer argument of a kernel, after its parameter struct.
pub enum Arg<'a, E: Exec + ?Sized> {
    /// An input of `f32`.
    In(&'a E::Buf<f32>),
    /// An input of `i32` (labels, channel indices).
    Index(&'a E::Buf<i32>),
    /// A table of device addresses (`addr_t` in the kernels), built by a launcher from live
    /// buffers.
    Addresses(&'a E::Buf<u64>),
    /// An output, or a buffer updated in place.
    Out(&'a mut E::Buf<f32>),
    /// An `i32` buffer updated in place (block tickets).
    IndexOut(&'a mut E::Buf<i32>),
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

    /// The device address of the first element of `buf` (for tables of buffers that one launch
    /// updates).
    fn addr<T: Elem>(&self, buf: &Self::Buf<T>) -> u64;

    /// The elements of `buf`, copied to the host (waits for the kernels writing it).
    fn download<T: Elem>(&self, buf: &Self::Buf<T>) -> Result<Vec<T>>;

    /// A buffer of `len` elements for a kernel to fill; its contents are unspecified (poisoned
    /// with [`Elem::POISON`] where the backend can).
    fn alloc<T: Elem>(&self, len: usize) -> Result<Self::Buf<T>>;

    /// Copies all of `src` into `dst` from element `offset` on, on the device, in launch order.
    fn copy_into<T: Elem>(&self, src: &Self::Buf<T>, dst: &mut Self::Buf<T>, offset: usize) -> Result<()>;

    /// Runs `call.kernel` over `call.grid` with the parameter struct `p` and then `args`. Only
    /// the generated handles of [`crate::cuda::kernels`] call it.
    ///
    /// # Safety
    /// `p` and `args` must match the kernel's signature in order and type, the grid must be
    /// valid with blocks of the kernel's shape, and every buffer must hold at least the elements
    /// that the kernel reads or writes for these parameters.
    unsafe fn launch<P: KernelParams>(
        &self,
        call: Call,
        params: &P,
        args: &mut [Arg<'_, Self>],
    ) -> Result<()>;

    /// Runs `f` with at least `len` block tickets: `i32` counters that are zero when `f` starts
    /// and that the kernels `f` launches leave zero (a kernel that counts its finished blocks on
    /// them resets each one it uses). By default a fresh upload of zeros; a device that keeps
    /// one buffer for every launch ([`TicketStore`]) needs no copy after the first.
    fn with_tickets<R>(&self, len: usize, f: impl FnOnce(&mut Self::Buf<i32>) -> Result<R>) -> Result<R>
    where
        Self: Sized,
    {
        f(&mut self.upload(&vec![0; len])?)
    }
}

/// One device's block tickets for [`Exec::with_tickets`]: a zeroed buffer uploaded once, grown
/// (to a power of two) when a launch needs more, and handed to one launch at a time. The kernels
/// leave it zero and run in launch order on the device's one stream, so every launch, and every
/// replay of a captured launch, finds it zero. The upload is a copy, not a launch: capture a
/// graph after a run of the same launches has sized the buffer.
#[derive(Debug)]
pub struct TicketStore<B> {
    buf: Mutex<Option<B>>,
}

impl<B> Default for TicketStore<B> {
    fn default() -> Self {
        TicketStore { buf: Mutex::new(None) }
    }
}

impl<B> TicketStore<B> {
    /// [`Exec::with_tickets`] on this store's buffer, a buffer of `e`.
    pub fn with<E, R>(&self, e: &E, len: usize, f: impl FnOnce(&mut B) -> Result<R>) -> Result<R>
    where
        E: Exec<Buf<i32> = B>,
    {
        let mut slot = self.buf.lock().map_err(|_| Error::Device("ticket store poisoned".into()))?;
        let buf = match slot.take() {
            Some(b) if e.len::<i32>(&b) >= len => b,
            _ => e.upload(&vec![0; len.next_power_of_two().max(64)])?,
        };
        f(slot.insert(buf))
    }
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

    fn addr<T: Elem>(&self, buf: &Self::Buf<T>) -> u64 {
        self.inner.addr(buf)
    }

    fn download<T: Elem>(&self, buf: &Self::Buf<T>) -> Result<Vec<T>> {
        self.inner.download(buf)
    }

    fn alloc<T: Elem>(&self, len: usize) -> Result<Self::Buf<T>> {
        self.inner.alloc(len)
    }

    fn copy_into<T: Elem>(&self, src: &Self::Buf<T>, dst: &mut Self::Buf<T>, offset: usize) -> Result<()> {
        self.inner.copy_into(src, dst, offset)
    }

    fn with_tickets<R>(&self, len: usize, f: impl FnOnce(&mut Self::Buf<i32>) -> Result<R>) -> Result<R> {
        self.inner.with_tickets(len, f)
    }

    unsafe fn launch<P: KernelParams>(&self, call: Call, p: &P, args: &mut [Arg<'_, Self>]) -> Result<()> {
        if let Ok(mut set) = self.launched.lock() {
            set.insert(call.kernel);
        }
        let mut inner: Vec<Arg<'_, E>> = args
            .iter_mut()
            .map(|a| match std::mem::replace(a, Arg::Null) {
                Arg::In(b) => Arg::In(b),
                Arg::Index(b) => Arg::Index(b),
                Arg::Addresses(b) => Arg::Addresses(b),
                Arg::IndexOut(b) => Arg::IndexOut(b),
                Arg::Out(b) => Arg::Out(b),
                Arg::Null => Arg::Null,
            })
            .collect();
        // SAFETY: the same kernel, grid, parameters and buffers, forwarded unchanged.
        unsafe { self.inner.launch(call, p, &mut inner) }
    }
}
