//! [`Gpu`]: the device behind [`crate::Device::Cuda`] — a real GPU through cudarc or, with the
//! `cuda-emulation` feature, the CPU emulation of the same kernels — as one [`Exec`], so tensors,
//! ops and the optimiser are written once for both.

use std::fmt;

use cudarc::driver::CudaSlice;

use super::backend::CudaBackend;
use super::counters::{Counters, Counts};
#[cfg(feature = "cuda-emulation")]
use super::emu::Emulator;
use super::exec::{Arg, Call, Elem, Exec, TicketStore, map_args};
use super::params::KernelParams;
use crate::error::{Error, Result};

/// What runs the kernels of a [`Gpu`].
enum Engine {
    /// A GPU through the CUDA driver.
    Cuda(CudaBackend),
    /// The unchanged kernels on the CPU (slow; for tests and for checking a build).
    #[cfg(feature = "cuda-emulation")]
    Emulated(Emulator),
}

/// A device that runs the CUDA kernels, with a name for messages and counters of what it did.
pub struct Gpu {
    engine: Engine,
    label: String,
    counters: Counters,
    tickets: TicketStore<GpuBuf<i32>>,
}

/// A buffer on a [`Gpu`].
pub enum GpuBuf<T: Elem> {
    /// GPU memory.
    Cuda(CudaSlice<T>),
    /// Host memory of the emulation.
    #[cfg(feature = "cuda-emulation")]
    Emulated(Vec<T>),
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl<T: Elem> fmt::Debug for GpuBuf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuBuf::Cuda(s) => write!(f, "GpuBuf::Cuda({} elements)", s.len()),
            #[cfg(feature = "cuda-emulation")]
            GpuBuf::Emulated(v) => write!(f, "GpuBuf::Emulated({} elements)", v.len()),
        }
    }
}

impl Gpu {
    /// The first GPU, or an [`crate::Error::Device`] saying why none can be used
    /// ([`CudaBackend::probe`]).
    pub fn probe() -> Result<Gpu> {
        let backend = CudaBackend::probe()?;
        let label = format!("cuda:0 ({})", backend.name()?);
        Ok(Gpu {
            engine: Engine::Cuda(backend),
            label,
            counters: Counters::default(),
            tickets: TicketStore::default(),
        })
    }

    /// The CPU emulation of the kernels.
    #[cfg(feature = "cuda-emulation")]
    pub fn emulated() -> Gpu {
        let label = "cuda (CPU emulation)".into();
        Gpu {
            engine: Engine::Emulated(Emulator),
            label,
            counters: Counters::default(),
            tickets: TicketStore::default(),
        }
    }

    /// Whether this is the CPU emulation (right, but far too slow to time).
    pub fn is_emulated(&self) -> bool {
        !matches!(self.engine, Engine::Cuda(_))
    }

    /// Device-to-device copy bandwidth in GB/s ([`CudaBackend::copy_gbps`]); an error on the
    /// emulation.
    pub fn copy_gbps(&self, bytes: usize, runs: usize) -> Result<f64> {
        match &self.engine {
            Engine::Cuda(b) => b.copy_gbps(bytes, runs),
            #[cfg(feature = "cuda-emulation")]
            Engine::Emulated(_) => {
                Err(Error::Device("the emulation has no memory bandwidth to measure".into()))
            }
        }
    }

    /// The device's name, as shown to users.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What this device has done so far (launches, copies, waits, allocations).
    pub fn counts(&self) -> Counts {
        self.counters.snapshot()
    }

    /// Waits until every launched kernel and copy has finished (for timing).
    pub fn synchronize(&self) -> Result<()> {
        self.counters.wait();
        match &self.engine {
            Engine::Cuda(b) => b.synchronize(),
            #[cfg(feature = "cuda-emulation")]
            Engine::Emulated(_) => Ok(()),
        }
    }
}

/// The error for a buffer of one engine handed to another (never expected: a `Gpu` only makes
/// buffers of its own engine).
fn foreign(kernel: &str) -> Error {
    Error::Device(format!("{kernel}: a buffer of another device was passed"))
}

impl Exec for Gpu {
    type Buf<T: Elem> = GpuBuf<T>;

    fn len<T: Elem>(&self, buf: &GpuBuf<T>) -> usize {
        match buf {
            GpuBuf::Cuda(s) => s.len(),
            #[cfg(feature = "cuda-emulation")]
            GpuBuf::Emulated(v) => v.len(),
        }
    }

    fn upload<T: Elem>(&self, host: &[T]) -> Result<GpuBuf<T>> {
        self.counters.upload();
        match &self.engine {
            Engine::Cuda(b) => b.upload(host).map(GpuBuf::Cuda),
            #[cfg(feature = "cuda-emulation")]
            Engine::Emulated(e) => e.upload(host).map(GpuBuf::Emulated),
        }
    }

    fn download<T: Elem>(&self, buf: &GpuBuf<T>) -> Result<Vec<T>> {
        self.counters.download();
        match (&self.engine, buf) {
            (Engine::Cuda(b), GpuBuf::Cuda(s)) => b.download(s),
            #[cfg(feature = "cuda-emulation")]
            (Engine::Emulated(_), GpuBuf::Emulated(v)) => Ok(v.clone()),
            #[cfg(feature = "cuda-emulation")]
            _ => Err(foreign("download")),
        }
    }

    fn alloc<T: Elem>(&self, len: usize) -> Result<GpuBuf<T>> {
        self.counters.alloc();
        match &self.engine {
            Engine::Cuda(b) => b.alloc(len).map(GpuBuf::Cuda),
            #[cfg(feature = "cuda-emulation")]
            Engine::Emulated(e) => e.alloc(len).map(GpuBuf::Emulated),
        }
    }

    fn copy_into<T: Elem>(&self, src: &GpuBuf<T>, dst: &mut GpuBuf<T>, offset: usize) -> Result<()> {
        self.counters.launch();
        match (&self.engine, src, dst) {
            (Engine::Cuda(b), GpuBuf::Cuda(s), GpuBuf::Cuda(d)) => b.copy_into(s, d, offset),
            #[cfg(feature = "cuda-emulation")]
            (Engine::Emulated(e), GpuBuf::Emulated(s), GpuBuf::Emulated(d)) => e.copy_into(s, d, offset),
            #[cfg(feature = "cuda-emulation")]
            _ => Err(foreign("copy_into")),
        }
    }

    fn with_tickets<R>(&self, len: usize, f: impl FnOnce(&mut GpuBuf<i32>) -> Result<R>) -> Result<R> {
        self.tickets.with(self, len, f)
    }

    unsafe fn launch<P: KernelParams>(&self, call: Call, p: &P, args: &mut [Arg<'_, Self>]) -> Result<()> {
        self.counters.launch();
        match &self.engine {
            Engine::Cuda(b) => {
                let mut inner = map_args!(args, GpuBuf::Cuda, foreign(call.kernel))?;
                // SAFETY: the caller's kernel, grid, parameters and buffers, unwrapped unchanged.
                unsafe { b.launch(call, p, &mut inner) }
            }
            #[cfg(feature = "cuda-emulation")]
            Engine::Emulated(e) => {
                let mut inner = map_args!(args, GpuBuf::Emulated, foreign(call.kernel))?;
                // SAFETY: as above.
                unsafe { e.launch(call, p, &mut inner) }
            }
        }
    }
}
