//! The GPU benchmarks of `iekd bench --device cuda`: copy bandwidth, each ResNet-20 convolution
//! kernel in GFLOP/s, the fused batch-norm kernels in GB/s, and the ResNet-20, ResNet-56 and IE-FT
//! training steps in images/s. Ends with one `BENCH <name> <value> <unit>` line per figure; says
//! why and exits successfully when no GPU is usable. `scripts/torch_gpu_reference.py` measures
//! PyTorch with cuDNN on the same work (`scripts/gpu-check.sh run` does both and compares).
//!
//! `cargo bench --bench gpu`

fn main() -> iekd::Result<()> {
    match iekd::Device::parse("cuda") {
        Ok(device) => iekd::bench::run_gpu_report(&device, 128).map(drop),
        Err(why) => {
            println!("gpu benchmarks skipped: {why}");
            Ok(())
        }
    }
}
