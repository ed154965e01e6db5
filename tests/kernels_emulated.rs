//! The CUDA kernels, compiled unchanged by g++ with the CUDA-emulation header and run on the CPU,
//! against the rayon CPU path: every kernel on seeded random inputs at edge sizes, each output
//! within its stated tolerance (`-- --nocapture` prints the table). Needs the `cuda-emulation`
//! feature.
#![cfg(feature = "cuda-emulation")]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use iekd::cuda::emu::Emulator;
use iekd::cuda::exec::{Arg, Call, Exec, Grid};
use iekd::cuda::kernels;
use iekd::cuda::params;
use iekd::cuda::params::{ChannelParams, MapParams};
use iekd::ops::activation::launch::leaky_relu_forward;
use iekd::ops::conv2d::ConvGeometry;
use iekd::ops::conv2d::launch::{ConvProduct, conv2d};
use iekd::verify::parity;

#[test]
fn every_kernel_matches_the_cpu_path() {
    let start = Instant::now();
    let report = parity::run_all(&Emulator, 0x1e_4d).expect("the parity run completes");
    println!("{}", parity::table(&report.checks));
    println!("{} checks in {:.1} s", report.checks.len(), start.elapsed().as_secs_f64());
    let problems = report.problems();
    assert!(problems.is_empty(), "parity problems:\n{}", problems.join("\n"));
}

#[test]
fn parameter_structs_match_the_header_under_gcc() {
    let kernels = concat!(env!("CARGO_MANIFEST_DIR"), "/kernels");
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let mut child = Command::new(&compiler)
        .args(["-std=c++20", "-fsyntax-only", "-x", "c++", "-I", kernels, "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    let source = format!("#include \"emu/cuda_emu.h\"\n#include \"common.cuh\"\n{}", params::layout_checks());
    child.stdin.take().expect("piped stdin").write_all(source.as_bytes()).expect("write to the compiler");
    let out = child.wait_with_output().expect("the compiler runs");
    assert!(out.status.success(), "layouts differ:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn launch_errors_name_the_kernel_and_sizes() {
    let e = Emulator;
    let g = ConvGeometry::new("test", &[1, 4, 4, 3], &[2, 3, 3, 3], 1, 1).expect("valid geometry");
    let x = e.upload(&[0.0f32; 47]).expect("upload");
    let w = e.upload(&[0.0f32; 54]).expect("upload");
    let err = conv2d(&e, &g, ConvProduct::Forward, [&x, &w], None)
        .expect_err("a short input is rejected")
        .to_string();
    assert!(err.contains("conv2d_forward") && err.contains("47") && err.contains("48"), "{err}");
    let empty = e.upload::<f32>(&[]).expect("upload");
    assert!(leaky_relu_forward(&e, 0.0, &empty).is_err());
    let grid = Grid { blocks: [1, 1, 1], threads: [32, 1, 1] };
    let mut y = e.alloc::<f32>(1).expect("alloc");
    // SAFETY: no kernel has this name, so nothing runs.
    let call = Call { kernel: "no_such_kernel", grid, shared_bytes: 0 };
    let err = unsafe { e.launch(call, &MapParams::default(), &mut [Arg::Out(&mut y)]) };
    assert!(err.is_err_and(|e| e.to_string().contains("no_such_kernel")));
}

#[test]
fn kernel_handles_enforce_each_contract() {
    let e = Emulator;
    let x = e.upload(&[1.0f32; 12]).expect("upload");
    let mut y = e.alloc::<f32>(6).expect("alloc");
    let flat = Grid { blocks: [1, 1, 1], threads: [256, 1, 1] };
    let p = ChannelParams { rows: 3, c: 4, start: 2, k: 2 };
    kernels::slice_channels(&e, flat, &p, &x, &mut y).expect("within the contract");
    let past_end = ChannelParams { start: 3, ..p };
    let err = kernels::slice_channels(&e, flat, &past_end, &x, &mut y).unwrap_err().to_string();
    assert_eq!(err, "slice_channels: the parameters break the kernel's contract: p.start + p.k <= p.c");
    let err = kernels::slice_channels(&e, flat, &ChannelParams { k: -2, ..p }, &x, &mut y).unwrap_err();
    assert_eq!(err.to_string(), "slice_channels: parameter k is negative");
    let err = kernels::slice_channels(&e, flat, &ChannelParams { rows: 4, ..p }, &x, &mut y).unwrap_err();
    assert_eq!(err.to_string(), "slice_channels: x holds 12 elements, the kernel needs 16");
    let wide = Grid { threads: [512, 1, 1], ..flat };
    let err = kernels::slice_channels(&e, wide, &p, &x, &mut y).unwrap_err().to_string();
    assert!(err.contains("blocks must be 256 x 1 threads"), "{err}");
    let index = e.upload(&[1i32, 7]).expect("upload");
    let gathered = kernels::gather_channels(&e, flat, &ChannelParams { start: 0, ..p }, &x, &index, &mut y);
    gathered.expect("an index outside the channels is guarded by the kernel");
    let y = e.download(&y).expect("download");
    assert!(y[0] == 1.0 && y[1].is_nan(), "{y:?}");
}
