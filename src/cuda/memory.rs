//! The memory of a [`super::gpu::Gpu`]: blocks that go back to a cache when their last buffer is
//! dropped and are handed out again for the next request of the same size, so a training step in
//! steady state allocates nothing from the driver; and [`GpuBuf`], a typed view of a block.
//!
//! While a step is being recorded for a graph ([`super::graph`]), its kernels have not run yet, so
//! a block dropped by the recording thread may still be read by them: it waits in that thread's
//! quarantine, which only the same recording's kernels may draw from, and joins the cache once
//! the step's work is queued. Uploads never take a quarantined block: they are written at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;

use cudarc::driver::CudaSlice;

use super::exec::Elem;

/// Device memory of one engine.
pub(crate) enum Raw {
    /// GPU memory (owned here, freed when dropped), with its address.
    Cuda {
        /// The allocation.
        _memory: CudaSlice<u8>,
        /// Its address.
        addr: u64,
    },
    /// Host memory standing in for device memory on the emulation.
    #[cfg(feature = "cuda-emulation")]
    Host(HostMem),
}

impl Raw {
    fn addr(&self) -> u64 {
        match self {
            Raw::Cuda { addr, .. } => *addr,
            #[cfg(feature = "cuda-emulation")]
            Raw::Host(h) => h.addr(),
        }
    }
}

/// Host memory standing in for device memory on the emulation; fresh memory holds 0xFF bytes
/// (NaN as `f32`), so an element a kernel forgets to write shows up.
#[cfg(feature = "cuda-emulation")]
pub(crate) struct HostMem {
    words: Box<[std::cell::UnsafeCell<u64>]>,
}

// SAFETY: the memory is only read and written through its address, by the emulated kernels and
// copies that the engine runs one after another, as a GPU orders the work of its stream; no
// reference to the contents is ever handed out.
#[cfg(feature = "cuda-emulation")]
unsafe impl Sync for HostMem {}

#[cfg(feature = "cuda-emulation")]
impl HostMem {
    /// `bytes` bytes (at least one word), poisoned.
    pub(crate) fn new(bytes: usize) -> HostMem {
        let words = bytes.div_ceil(8).max(1);
        HostMem { words: (0..words).map(|_| std::cell::UnsafeCell::new(u64::MAX)).collect() }
    }

    fn addr(&self) -> u64 {
        self.words.as_ptr() as u64
    }
}

/// Why a block is wanted: uploads are written at once, so they may not reuse quarantined memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Written by kernels or device copies, in the order of the step.
    Kernel,
    /// Written from the host now.
    Upload,
}

/// Free blocks of one size, by address.
type Free = HashMap<usize, BTreeMap<u64, Raw>>;

#[derive(Default)]
struct PoolState {
    free: Free,
    /// The blocks each recording thread dropped while recording.
    quarantine: HashMap<ThreadId, Free>,
}

/// The lowest-addressed block of `bytes` bytes in `free`, taken out.
fn lowest(free: &mut Free, bytes: usize) -> Option<Raw> {
    free.get_mut(&bytes).and_then(BTreeMap::pop_first).map(|(_, raw)| raw)
}

/// The lowest address of a free block of `bytes` bytes in `free`.
fn lowest_addr(free: &Free, bytes: usize) -> Option<u64> {
    free.get(&bytes).and_then(|m| m.keys().next().copied())
}

/// The cache of free blocks of one device, by size in bytes. A request gets the free block of its
/// size with the lowest address, so a step that makes the same requests as the last one, from
/// the same free blocks, gets the same buffers (what lets a recorded step repeat exactly).
#[derive(Default)]
pub(crate) struct Pool {
    state: Mutex<PoolState>,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A panic while holding the lock leaves the lists valid: recover them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cached block of `bytes` bytes for `purpose`, if there is one.
    pub(crate) fn take(&self, bytes: usize, purpose: Purpose) -> Option<Raw> {
        let mut s = self.lock();
        let PoolState { free, quarantine } = &mut *s;
        let mine = quarantine.get_mut(&std::thread::current().id()).filter(|_| purpose == Purpose::Kernel);
        let Some(q) = mine else { return lowest(free, bytes) };
        match (lowest_addr(free, bytes), lowest_addr(q, bytes)) {
            (Some(f), Some(qa)) if f < qa => lowest(free, bytes),
            (_, Some(_)) => lowest(q, bytes),
            _ => lowest(free, bytes),
        }
    }

    fn put(&self, bytes: usize, raw: Raw) {
        let mut s = self.lock();
        let PoolState { free, quarantine } = &mut *s;
        let list = quarantine.get_mut(&std::thread::current().id()).unwrap_or(free);
        list.entry(bytes).or_default().insert(raw.addr(), raw);
    }

    /// Starts quarantining the blocks this thread drops; false when it already does (a step
    /// within a step).
    pub(crate) fn begin_quarantine(&self) -> bool {
        let mut s = self.lock();
        let me = std::thread::current().id();
        if s.quarantine.contains_key(&me) {
            return false;
        }
        s.quarantine.insert(me, HashMap::new());
        true
    }

    /// Returns this thread's quarantined blocks to the cache (once the recorded work is queued).
    pub(crate) fn end_quarantine(&self) {
        let mut s = self.lock();
        if let Some(q) = s.quarantine.remove(&std::thread::current().id()) {
            for (bytes, raws) in q {
                s.free.entry(bytes).or_default().extend(raws);
            }
        }
    }

    /// The number of cached blocks and their bytes.
    #[cfg(test)]
    pub(crate) fn cached(&self) -> (usize, usize) {
        let s = self.lock();
        s.free.iter().fold((0, 0), |(n, b), (bytes, v)| (n + v.len(), b + bytes * v.len()))
    }
}

/// One allocation; back to its pool when the last buffer over it is dropped.
pub(crate) struct Block {
    raw: Option<Raw>,
    bytes: usize,
    addr: u64,
    pool: Arc<Pool>,
}

impl Block {
    /// `raw`, of `bytes` bytes, returned to `pool` when dropped.
    pub(crate) fn new(raw: Raw, bytes: usize, pool: &Arc<Pool>) -> Block {
        Block { addr: raw.addr(), raw: Some(raw), bytes, pool: Arc::clone(pool) }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.pool.put(self.bytes, raw);
        }
    }
}

/// A buffer of `T` on a [`super::gpu::Gpu`]: `len` elements of a block, from element `offset`.
pub struct GpuBuf<T: Elem> {
    block: Arc<Block>,
    offset: usize,
    len: usize,
    elem: PhantomData<T>,
}

impl<T: Elem> GpuBuf<T> {
    /// All of `block`, as `len` elements.
    pub(crate) fn whole(block: Block, len: usize) -> GpuBuf<T> {
        GpuBuf { block: Arc::new(block), offset: 0, len, elem: PhantomData }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of the first element.
    pub(crate) fn addr(&self) -> u64 {
        self.block.addr + (self.offset * size_of::<T>()) as u64
    }

    /// The address of the whole block (what a recording tracks).
    pub(crate) fn block_addr(&self) -> u64 {
        self.block.addr
    }

    /// The size in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.len * size_of::<T>()
    }
}

impl<T: Elem> fmt::Debug for GpuBuf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GpuBuf({} elements at {:#x})", self.len, self.addr())
    }
}

#[cfg(all(test, feature = "cuda-emulation"))]
mod tests {
    use super::*;

    fn block(pool: &Arc<Pool>, bytes: usize) -> Block {
        Block::new(Raw::Host(HostMem::new(bytes)), bytes, pool)
    }

    #[test]
    fn dropped_blocks_are_reused_by_size() {
        let pool = Arc::new(Pool::default());
        let b = block(&pool, 64);
        let addr = b.addr;
        drop(b);
        assert_eq!(pool.cached(), (1, 64));
        assert!(pool.take(32, Purpose::Kernel).is_none());
        assert_eq!(pool.take(64, Purpose::Upload).map(|r| r.addr()), Some(addr));
    }

    #[test]
    fn quarantined_blocks_serve_only_the_recording_threads_kernels() {
        let pool = Arc::new(Pool::default());
        assert!(pool.begin_quarantine());
        assert!(!pool.begin_quarantine(), "one recording per thread");
        drop(block(&pool, 16));
        assert!(pool.take(16, Purpose::Upload).is_none(), "uploads are written at once");
        let other = std::thread::scope(|s| s.spawn(|| pool.take(16, Purpose::Kernel).is_some()).join());
        assert!(!other.unwrap(), "another thread's work is not ordered after the recording");
        let raw = pool.take(16, Purpose::Kernel).expect("the recording reuses its own");
        drop(Block::new(raw, 16, &pool));
        pool.end_quarantine();
        assert_eq!(pool.cached(), (1, 16));
    }
}
