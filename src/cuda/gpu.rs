//! [`Gpu`]: the device behind [`crate::Device::Cuda`] — a real GPU through cudarc or, with the
//! `cuda-emulation` feature, the CPU emulation of the same kernels — as one [`Exec`], so tensors,
//! ops and the optimiser are written once for both. Its memory is cached ([`super::memory`]) and
//! its training steps can be recorded and replayed as graphs ([`super::graph`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;

use super::backend::CudaBackend;
use super::counters::{Counters, Counts};
#[cfg(feature = "cuda-emulation")]
use super::emu::Emulator;
use super::exec::{Arg, Call, Elem, Exec, TicketStore, check_copy};
use super::graph::{Captured, Recording, StepGraph};
pub use super::memory::GpuBuf;
#[cfg(feature = "cuda-emulation")]
use super::memory::HostMem;
use super::memory::{Block, Pool, Purpose, Raw};
use super::params::KernelParams;
use super::raw::RawOp;
use crate::error::{Error, Result};

/// What runs the kernels of a [`Gpu`].
enum Engine {
    /// A GPU through the CUDA driver.
    Cuda(Box<CudaBackend>),
    /// The unchanged kernels on the CPU (slow; for tests and for checking a build).
    #[cfg(feature = "cuda-emulation")]
    Emulated(Emulator),
}

/// A device that runs the CUDA kernels, with a name for messages, a memory cache, the steps being
/// recorded (one per thread at most) and counters of what it did.
pub struct Gpu {
    engine: Engine,
    label: String,
    counters: Counters,
    pool: Arc<Pool>,
    /// The step each thread is recording.
    recording: Mutex<HashMap<ThreadId, Recording>>,
    /// The zeroed block tickets of the kernels that count their finished blocks.
    tickets: TicketStore<GpuBuf<i32>>,
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl Gpu {
    fn with_engine(engine: Engine, label: String) -> Gpu {
        let (counters, pool, recording, tickets) = Default::default();
        Gpu { engine, label, counters, pool, recording, tickets }
    }

    /// The first GPU, or an [`crate::Error::Device`] saying why none can be used
    /// ([`CudaBackend::probe`]).
    pub fn probe() -> Result<Gpu> {
        let backend = CudaBackend::probe()?;
        let label = format!("cuda:0 ({})", backend.name()?);
        Ok(Gpu::with_engine(Engine::Cuda(Box::new(backend)), label))
    }

    /// The CPU emulation of the kernels.
    #[cfg(feature = "cuda-emulation")]
    pub fn emulated() -> Gpu {
        Gpu::with_engine(Engine::Emulated(Emulator), "cuda (CPU emulation)".into())
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
        self.run_recorded_now()?;
        self.counters.wait();
        match &self.engine {
            Engine::Cuda(b) => b.synchronize(),
            #[cfg(feature = "cuda-emulation")]
            Engine::Emulated(_) => Ok(()),
        }
    }

    /// Runs `body`, a training step's host code, with its device work recorded, then launches
    /// that work: as the graph of `graph` when the last step recorded the same work (captured
    /// the second time in a row), else eagerly (see [`super::graph`]). Steps on other threads
    /// record their own work; a step nested in this one is part of it.
    pub fn step<R>(&self, graph: &mut StepGraph, body: impl FnOnce() -> Result<R>) -> Result<R> {
        if !self.pool.begin_quarantine() {
            return body();
        }
        self.lock_recording().insert(std::thread::current().id(), Recording::new());
        let guard = RecordingGuard(self);
        let out = body();
        let recording = self.lock_recording().remove(&std::thread::current().id());
        let launched = match recording {
            Some(r) => self.launch_recorded(graph, r, out.is_ok()),
            None => Err(Error::Device("the recording of a step was lost".into())),
        };
        drop(guard);
        launched.and(out)
    }

    fn lock_recording(&self) -> MutexGuard<'_, HashMap<ThreadId, Recording>> {
        // A panic while holding the lock leaves the recording valid: recover it.
        self.recording.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn launch_recorded(&self, graph: &mut StepGraph, r: Recording, ok: bool) -> Result<()> {
        if r.eager || !ok {
            graph.forget();
            return r.ops.iter().try_for_each(|op| self.execute(op));
        }
        if graph.last != r.ops {
            r.ops.iter().try_for_each(|op| self.execute(op))?;
            graph.forget();
            graph.last = r.ops;
            return Ok(());
        }
        if graph.captured.is_none() {
            graph.captured = Some(self.capture(&graph.last)?);
            graph.captures += 1;
        }
        self.counters.graph_launch();
        graph.replays += 1;
        match (&self.engine, &graph.captured) {
            (Engine::Cuda(b), Some(Captured::Cuda(g))) => b.replay(g),
            #[cfg(feature = "cuda-emulation")]
            (Engine::Emulated(_), Some(Captured::Emulated)) => {
                graph.last.iter().try_for_each(|op| self.execute(op))
            }
            _ => Err(Error::Device("a graph captured on another device".into())),
        }
    }

    fn capture(&self, ops: &[RawOp]) -> Result<Captured> {
        match &self.engine {
            // SAFETY: the ops were recorded from checked launches over live buffers, and a replay
            // happens only when a step records exactly these ops again, over buffers live then.
            Engine::Cuda(b) => unsafe { b.capture(ops) }.map(Captured::Cuda),
            #[cfg(feature = "cuda-emulation")]
            Engine::Emulated(_) => Ok(Captured::Emulated),
        }
    }

    /// Runs `op` now.
    fn execute(&self, op: &RawOp) -> Result<()> {
        // SAFETY: every op comes from `submit`, from a checked launch (the generated handles of
        // `kernels`) or copy over buffers that are live until it has run: a recorded op runs
        // before the blocks it touches leave the recording's quarantine.
        match &self.engine {
            Engine::Cuda(b) => unsafe { b.execute(op) },
            #[cfg(feature = "cuda-emulation")]
            Engine::Emulated(e) => unsafe { e.execute(op) },
        }
    }

    /// Records `op` when this thread is recording a step, else runs it now.
    fn submit(&self, op: RawOp, blocks: impl IntoIterator<Item = u64>) -> Result<()> {
        {
            let mut guard = self.lock_recording();
            if let Some(r) = guard.get_mut(&std::thread::current().id()).filter(|r| !r.eager) {
                r.touched.extend(blocks);
                r.ops.push(op);
                return Ok(());
            }
        }
        self.execute(&op)
    }

    /// Runs what this thread's step has recorded so far (before the host reads or writes memory
    /// that recorded work uses); the rest of that step then runs eagerly.
    fn run_recorded_now(&self) -> Result<()> {
        let ops = match self.lock_recording().get_mut(&std::thread::current().id()).filter(|r| !r.eager) {
            Some(r) => {
                r.eager = true;
                std::mem::take(&mut r.ops)
            }
            None => return Ok(()),
        };
        ops.iter().try_for_each(|op| self.execute(op))
    }

    /// Whether recorded, not yet run work of this thread uses `block`.
    fn recorded_work_uses(&self, block: u64) -> bool {
        let recordings = self.lock_recording();
        recordings.get(&std::thread::current().id()).is_some_and(|r| !r.eager && r.touched.contains(&block))
    }

    fn buffer<T: Elem>(&self, len: usize, purpose: Purpose) -> Result<GpuBuf<T>> {
        let bytes = len * size_of::<T>();
        self.counters.buffer();
        let raw = match self.pool.take(bytes, purpose) {
            Some(raw) => raw,
            None => {
                self.counters.alloc();
                match &self.engine {
                    Engine::Cuda(b) => {
                        b.alloc_raw(bytes).map(|(_memory, addr)| Raw::Cuda { _memory, addr })?
                    }
                    #[cfg(feature = "cuda-emulation")]
                    Engine::Emulated(_) => Raw::Host(HostMem::new(bytes)),
                }
            }
        };
        Ok(GpuBuf::whole(Block::new(raw, bytes, &self.pool), len))
    }

    /// Copies `host` into `dst` now, ordered after all work queued before; work of this thread's
    /// step that uses `dst` and is still only recorded runs first.
    pub fn write<T: Elem>(&self, host: &[T], dst: &mut GpuBuf<T>) -> Result<()> {
        check_copy(host.len(), dst.len(), 0)?;
        if self.recorded_work_uses(dst.block_addr()) {
            self.run_recorded_now()?;
        }
        self.counters.upload();
        match &self.engine {
            // SAFETY: `dst` is a live buffer of at least `host.len()` elements (checked above).
            Engine::Cuda(b) => unsafe { b.write_raw(dst.addr(), host) },
            #[cfg(feature = "cuda-emulation")]
            Engine::Emulated(e) => {
                // SAFETY: as above; host memory of the caller cannot overlap a device block.
                unsafe { e.write_raw(dst.addr(), host) };
                Ok(())
            }
        }
    }
}

/// Ends a step's recording and quarantine however the step ends (a panic included: recorded
/// work that was never launched is dropped with it, as the step was).
struct RecordingGuard<'a>(&'a Gpu);

impl Drop for RecordingGuard<'_> {
    fn drop(&mut self) {
        self.0.lock_recording().remove(&std::thread::current().id());
        self.0.pool.end_quarantine();
    }
}

impl Exec for Gpu {
    type Buf<T: Elem> = GpuBuf<T>;

    fn len<T: Elem>(&self, buf: &GpuBuf<T>) -> usize {
        buf.len()
    }

    fn upload<T: Elem>(&self, host: &[T]) -> Result<GpuBuf<T>> {
        let mut buf = self.buffer(host.len(), Purpose::Upload)?;
        self.write(host, &mut buf)?;
        Ok(buf)
    }

    fn addr<T: Elem>(&self, buf: &GpuBuf<T>) -> u64 {
        buf.addr()
    }

    fn download<T: Elem>(&self, buf: &GpuBuf<T>) -> Result<Vec<T>> {
        self.run_recorded_now()?;
        self.counters.download();
        let mut host = vec![T::default(); buf.len()];
        match &self.engine {
            // SAFETY: `buf` is live and holds `host.len()` elements.
            Engine::Cuda(b) => unsafe { b.read_raw(buf.addr(), &mut host) }?,
            #[cfg(feature = "cuda-emulation")]
            // SAFETY: as above.
            Engine::Emulated(e) => unsafe { e.read_raw(buf.addr(), &mut host) },
        }
        Ok(host)
    }

    fn alloc<T: Elem>(&self, len: usize) -> Result<GpuBuf<T>> {
        self.buffer(len, Purpose::Kernel)
    }

    fn copy_into<T: Elem>(&self, src: &GpuBuf<T>, dst: &mut GpuBuf<T>, offset: usize) -> Result<()> {
        check_copy(src.len(), dst.len(), offset)?;
        self.counters.launch();
        let op = RawOp::Copy {
            src: src.addr(),
            dst: dst.addr() + (offset * size_of::<T>()) as u64,
            bytes: src.bytes(),
        };
        self.submit(op, [src.block_addr(), dst.block_addr()])
    }

    fn with_tickets<R>(&self, len: usize, f: impl FnOnce(&mut GpuBuf<i32>) -> Result<R>) -> Result<R> {
        self.tickets.with(self, len, f)
    }

    unsafe fn launch<P: KernelParams>(&self, call: Call, p: &P, args: &mut [Arg<'_, Self>]) -> Result<()> {
        self.counters.launch();
        let (ptrs, blocks): (Vec<u64>, Vec<u64>) = args
            .iter()
            .map(|a| match a {
                Arg::In(b) => (b.addr(), b.block_addr()),
                Arg::Index(b) => (b.addr(), b.block_addr()),
                Arg::Addresses(b) => (b.addr(), b.block_addr()),
                Arg::IndexOut(b) => (b.addr(), b.block_addr()),
                Arg::Out(b) => (b.addr(), b.block_addr()),
                Arg::Null => (0, 0),
            })
            .unzip();
        self.submit(RawOp::launch(call, p, ptrs), blocks.into_iter().filter(|&b| b != 0))
    }
}
