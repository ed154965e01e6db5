//! What a device did, counted: kernel launches, copies each way, host waits and allocations.
//! The launchers are the same code on a GPU and on the emulation, so the counts of a training
//! step are exact on either; `iekd bench` prints them per step.

use std::ops::Sub;
use std::sync::Mutex;

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
    counts: Mutex<Counts>,
}

impl Counters {
    /// Applies `f` to the counts.
    fn bump(&self, f: impl FnOnce(&mut Counts)) {
        // Counting never panics while holding the lock; recover the counts if something did.
        f(&mut self.counts.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// One kernel launch.
    pub fn launch(&self) {
        self.bump(|c| c.launches += 1);
    }

    /// One host-to-device copy.
    pub fn upload(&self) {
        self.bump(|c| c.uploads += 1);
    }

    /// One graph launch.
    pub fn graph_launch(&self) {
        self.bump(|c| c.graph_launches += 1);
    }

    /// One device-to-host copy, which waits for the kernels writing its buffer.
    pub fn download(&self) {
        self.bump(|c| {
            c.downloads += 1;
            c.waits += 1;
        });
    }

    /// One synchronisation.
    pub fn wait(&self) {
        self.bump(|c| c.waits += 1);
    }

    /// One buffer handed out.
    pub fn buffer(&self) {
        self.bump(|c| c.buffers += 1);
    }

    /// One allocation from the driver.
    pub fn alloc(&self) {
        self.bump(|c| c.allocs += 1);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Counts {
        let mut copy = Counts::default();
        self.bump(|c| copy = *c);
        copy
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
