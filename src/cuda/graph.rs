//! Training steps replayed as one graph.
//!
//! [`super::gpu::Gpu::step`] runs a step's host code with the device work *recorded* instead of
//! launched: every kernel launch and device copy becomes a [`RawOp`] (kernel, launch shape,
//! parameter bytes, buffer addresses). At the end of the step the list is compared with the
//! previous step's. The first time two consecutive steps record the same list it is captured
//! (on a GPU, into a CUDA graph through stream capture; on the emulation, kept as the list), and
//! from then on every step whose list is identical launches the graph instead: one launch for the
//! whole step. A step whose list differs (another batch size, buffers moved) runs its own list
//! eagerly and becomes the new candidate, so a replay is always exactly the work the host code
//! asked for, with addresses that are valid now.
//!
//! What makes steps repeat: the memory cache hands out the same blocks in the same order each
//! step ([`super::memory`]), and values that change from step to step (the learning rate) are
//! read by the kernels from device memory rather than passed as parameters.
//!
//! Uploads and writes from the host happen at once, before the recorded work; a write into a
//! buffer that recorded work already uses, a download or a synchronisation first runs what was
//! recorded (the rest of that step then runs eagerly: correct, just not replayed).

use std::collections::HashSet;

use cudarc::driver::CudaGraph;

use super::raw::RawOp;

/// The device work of a step in progress on one thread.
pub(crate) struct Recording {
    /// The work recorded so far.
    pub(crate) ops: Vec<RawOp>,
    /// The blocks (by address) that recorded work uses.
    pub(crate) touched: HashSet<u64>,
    /// Set once the recording was run early: the rest of the step runs eagerly.
    pub(crate) eager: bool,
}

impl Recording {
    /// An empty recording.
    pub(crate) fn new() -> Recording {
        Recording { ops: Vec::new(), touched: HashSet::new(), eager: false }
    }
}

/// A captured step, ready to launch.
pub(crate) enum Captured {
    /// A CUDA graph.
    Cuda(CudaGraph),
    /// The emulation replays the list itself.
    #[cfg(feature = "cuda-emulation")]
    Emulated,
}

/// The graph of one kind of training step, kept by whoever runs the steps (a trainee): the last
/// recorded work, its capture once two steps agreed, and how often it was replayed.
#[derive(Default)]
pub struct StepGraph {
    pub(crate) last: Vec<RawOp>,
    pub(crate) captured: Option<Captured>,
    pub(crate) captures: u64,
    pub(crate) replays: u64,
}

impl StepGraph {
    /// How many times a step was captured (once in steady state).
    pub fn captures(&self) -> u64 {
        self.captures
    }

    /// How many steps were launched as one graph.
    pub fn replays(&self) -> u64 {
        self.replays
    }

    /// The number of kernel launches and copies in the last recorded step.
    pub fn ops_per_step(&self) -> usize {
        self.last.len()
    }

    /// Forgets the candidate and the capture (after a step that did not record).
    pub(crate) fn forget(&mut self) {
        self.last.clear();
        self.captured = None;
    }
}

impl std::fmt::Debug for StepGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StepGraph({} ops, {} captures, {} replays)", self.last.len(), self.captures, self.replays)
    }
}
