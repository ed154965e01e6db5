//! Every kernel file compiled by NVRTC for sm_90 with ptxas's verbose report: fails on any compile
//! error or any spill and prints a table of registers, shared memory and spills per kernel
//! (`-- --nocapture` to see it). Also compiles the parameter-struct layout checks against the
//! header. Without libnvrtc each test fails when `IEKD_REQUIRE_NVRTC=1` and otherwise prints
//! "skipped: libnvrtc not found".

use std::io::Write as _;

use iekd::cuda::{nvrtc, params, report, sources};

/// Whether NVRTC can be used; without it, fails when it is required, else says it skips.
fn nvrtc_present(test: &str) -> bool {
    if nvrtc::available() {
        return true;
    }
    assert!(
        std::env::var("IEKD_REQUIRE_NVRTC").as_deref() != Ok("1"),
        "{test}: libnvrtc not found and IEKD_REQUIRE_NVRTC=1 (put libnvrtc.so.12's folder on LD_LIBRARY_PATH)"
    );
    // Written past the test harness's capture, so the skip is visible.
    let _ = writeln!(std::io::stderr(), "{test}: skipped: libnvrtc not found");
    false
}

#[test]
fn every_kernel_compiles_for_sm_90_without_spills() {
    if !nvrtc_present("every_kernel_compiles_for_sm_90_without_spills") {
        return;
    }
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for m in sources::MODULES {
        let source = nvrtc::splice(sources::COMMON, m.source);
        match nvrtc::compile(m.name, &source, nvrtc::CUBIN_OPTIONS, false) {
            Ok(out) => {
                let kernels = report::parse_ptxas(&out.log);
                let mut names: Vec<&str> = kernels.iter().map(|k| k.kernel.as_str()).collect();
                let mut expected = m.kernels.to_vec();
                names.sort_unstable();
                expected.sort_unstable();
                if names != expected {
                    failures.push(format!(
                        "{}: ptxas reported {names:?}, the file declares {expected:?}",
                        m.name
                    ));
                }
                rows.extend(kernels.into_iter().map(|k| (m.name, k)));
            }
            Err(log) => failures.push(log),
        }
    }
    println!("{}", report::table(&rows));
    for (module, k) in &rows {
        if k.spill_bytes > 0 || k.stack_bytes > 0 {
            failures.push(format!(
                "{module}::{} spills {} bytes (stack {})",
                k.kernel, k.spill_bytes, k.stack_bytes
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn parameter_structs_match_the_header() {
    if !nvrtc_present("parameter_structs_match_the_header") {
        return;
    }
    let source = format!("{}\n{}", sources::COMMON, params::layout_checks());
    if let Err(log) = nvrtc::compile("layout_checks", &source, nvrtc::PTX_OPTIONS, false) {
        panic!("the parameter structs of kernels/common.cuh and src/cuda/params.rs differ:\n{log}");
    }
}

#[test]
fn ptx_targets_hopper_with_isa_at_most_9_0() {
    if !nvrtc_present("ptx_targets_hopper_with_isa_at_most_9_0") {
        return;
    }
    for m in sources::MODULES {
        let ptx = match m.ptx {
            Some(ptx) => ptx.to_string(),
            None => {
                nvrtc::compile_ptx(m.name, sources::COMMON, m.source).unwrap_or_else(|log| panic!("{log}"))
            }
        };
        assert!(ptx.contains(".target sm_90"), "{}: PTX does not target sm_90", m.name);
        let isa = nvrtc::ptx_isa(&ptx);
        assert!(isa.is_some_and(|v| v <= nvrtc::MAX_PTX_ISA), "{}: PTX ISA {isa:?}", m.name);
        for k in m.kernels {
            assert!(ptx.contains(&format!(".entry {k}(")), "{}: no entry {k}", m.name);
        }
    }
}
