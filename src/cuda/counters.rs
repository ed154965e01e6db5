//! What a device did, counted: kernel launches, copies each way, host waits and allocations.
//! The launchers are the same code on a GPU and on the emulation, so the counts of a training
//! step are exact on either; `iekd bench` prints them per step.

use std::ops::Sub;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a device's counters; the difference of two is what happened between them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Kernel launches, and copies from buffer to buffer on the device (those replayed in a graph
    /// included: the work the device did).
    pub launches: u64,
    /// Graph launches: steps replayed as one launch.
    pub graph_launches: u64,
    /// Host-to-device copies.
    pub uploads: u64,
    /// Device-to-host copies.
    pub downloads: u64,
    /// Times the host waited for the device: every download, and every synchronisation.
    pub waits: u64,
    /// Buffers handed out (an upload's included), from the cache or fresh.
    pub buffers: u64,
    /// Device allocations: memory taken from the driver because the cache had no free block of
    /// the size.
    pub allocs: u64,
}

impl Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            launches: self.launches - o.launches,
            graph_launches: self.graph_launches - o.graph_launches,
            uploads: self.uploads - o.uploads,
            downloads: self.downloads - o.downloads,
            waits: self.waits - o.waits,
            buffers: self.buffers - o.buffers,
            allocs: self.allocs - o.allocs,
        }
    }
}

/// The running counters of one device, updated from any thread.
#[derive(Debug, Default)]
pub struct Counters {
    launches: AtomicU64,
    graph_launches: AtomicU64,
    uploads: AtomicU64,
    downloads: AtomicU64,
    waits: AtomicU64,
    buffers: AtomicU64,
    allocs: AtomicU64,
}

impl Counters {
    /// One kernel launch.
    pub fn launch(&self) {
        self.launches.fetch_add(1, Ordering::Relaxed);
    }

    /// One host-to-device copy.
    pub fn upload(&self) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
    }

    /// One graph launch.
    pub fn graph_launch(&self) {
        self.graph_launches.fetch_add(1, Ordering::Relaxed);
    }

    /// One device-to-host copy, which waits for the kernels writing its buffer.
    pub fn download(&self) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        self.waits.fetch_add(1, Ordering::Relaxed);
    }

    /// One synchronisation.
    pub fn wait(&self) {
        self.waits.fetch_add(1, Ordering::Relaxed);
    }

    /// One buffer handed out.
    pub fn buffer(&self) {
        self.buffers.fetch_add(1, Ordering::Relaxed);
    }

    /// One allocation from the driver.
    pub fn alloc(&self) {
        self.allocs.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            launches: get(&self.launches),
            graph_launches: get(&self.graph_launches),
            uploads: get(&self.uploads),
            downloads: get(&self.downloads),
            waits: get(&self.waits),
            buffers: get(&self.buffers),
            allocs: get(&self.allocs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_count_what_happened_between_snapshots() {
        let c = Counters::default();
        c.launch();
        let before = c.snapshot();
        c.launch();
        c.upload();
        c.download();
        c.wait();
        c.buffer();
        c.alloc();
        c.graph_launch();
        let d = c.snapshot() - before;
        let want = Counts {
            launches: 1,
            graph_launches: 1,
            uploads: 1,
            downloads: 1,
            waits: 2,
            buffers: 1,
            allocs: 1,
        };
        assert_eq!(d, want);
    }
}
