//! ResNet-20 on the CPU: each conv shape's forward, backward-data and backward-weight in GFLOP/s
//! (batch 128, percent of the measured FMA peak), then whole training steps in images/s.
//! Ends with one `BENCH <name> <value> <unit>` line per figure.
//!
//! `cargo bench --bench resnet20` (threads: RAYON_NUM_THREADS, default all cores).

/// mimalloc keeps freed activation buffers for reuse instead of returning them to the system, which
/// saves a page fault per touched page on every op (about a third of the step time with glibc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> iekd::Result<()> {
    iekd::bench::run_cpu_report(128).map(drop)
}
