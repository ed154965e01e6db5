//! ResNet-20 on the CPU: each conv shape's forward, backward-data and backward-weight in GFLOP/s
//! (batch 128, percent of the measured FMA peak), then whole training steps (ResNet-20, KD,
//! IE-FT, ResNet-56) in images/s with their peak resident memory.
//! Ends with one `BENCH <name> <value> <unit>` line per figure.
//!
//! `cargo bench --bench resnet20` (threads: RAYON_NUM_THREADS, default all cores).

/// See [`iekd::alloc`]: reused activation buffers without page faults.
#[global_allocator]
static ALLOCATOR: iekd::alloc::MiMalloc = iekd::alloc::MiMalloc;

fn main() -> iekd::Result<()> {
    iekd::alloc::keep_freed_pages();
    iekd::bench::run_cpu_report(128).map(drop)
}
