//! Every kernel on a real GPU (through cudarc) against the rayon CPU path, with poisoned
//! allocations; `-- --nocapture` prints the table. Without a usable GPU the test says why and
//! passes, unless `IEKD_REQUIRE_GPU=1` (scripts/gpu-check.sh sets it).

use std::io::Write as _;
use std::time::Instant;

use iekd::cuda::backend::CudaBackend;
use iekd::verify::parity;

#[test]
fn every_kernel_matches_the_cpu_path_on_the_gpu() {
    let gpu = match CudaBackend::probe() {
        Ok(gpu) => gpu.poison_allocations(true),
        Err(why) => {
            assert!(std::env::var("IEKD_REQUIRE_GPU").as_deref() != Ok("1"), "IEKD_REQUIRE_GPU=1 but {why}");
            // Written past the test harness's capture, so the skip is visible.
            let _ =
                writeln!(std::io::stderr(), "every_kernel_matches_the_cpu_path_on_the_gpu: skipped: {why}");
            return;
        }
    };
    let start = Instant::now();
    let report = parity::run_all(&gpu, 0x1e_4d).expect("the parity run completes");
    gpu.synchronize().expect("the device finishes");
    println!("{}", parity::table(&report.checks));
    let name = gpu.name().unwrap_or_default();
    println!("{name}: {} checks in {:.1} s", report.checks.len(), start.elapsed().as_secs_f64());
    let problems = report.problems();
    assert!(problems.is_empty(), "parity problems:\n{}", problems.join("\n"));
}
