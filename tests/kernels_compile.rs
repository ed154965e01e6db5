//! Every kernel file compiled by NVRTC for sm_90 with ptxas's verbose report: fails on any compile
//! error or any spill and prints a table of registers, shared memory and spills per kernel
//! (`-- --nocapture` to see it). Also compiles the parameter-struct layout checks against the
//! header. Without libnvrtc each test fails when `IEKD_REQUIRE_NVRTC=1` and otherwise prints
//! "skipped: libnvrtc not found". The SASS test disassembles each file's CUBIN with `cuobjdump`
//! (PyPI `nvidia-cuda-cuobjdump` and `nvidia-cuda-nvdisasm`; `IEKD_REQUIRE_SASS=1` makes its
//! absence a failure) and prints each kernel's main-loop instruction mix.

use std::io::Write as _;

use std::collections::BTreeMap;

use iekd::cuda::{nvrtc, params, report, sass, sources};

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
        match nvrtc::compile(m.name, &source, nvrtc::CUBIN_OPTIONS, nvrtc::Output::Log) {
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
    if let Err(log) = nvrtc::compile("layout_checks", &source, nvrtc::PTX_OPTIONS, nvrtc::Output::Log) {
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

/// The `cuobjdump` to use; without one, fails when `IEKD_REQUIRE_SASS=1`, else says it skips.
fn cuobjdump_present(test: &str) -> Option<std::path::PathBuf> {
    let found = sass::cuobjdump();
    if found.is_none() {
        assert!(
            std::env::var("IEKD_REQUIRE_SASS").as_deref() != Ok("1"),
            "{test}: cuobjdump not found and IEKD_REQUIRE_SASS=1 (pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm)"
        );
        let _ = writeln!(std::io::stderr(), "{test}: skipped: cuobjdump not found");
    }
    found
}

/// The static proof of what each kernel runs: every kernel file's sm_90 CUBIN disassembled, a
/// table of registers, shared memory and main-loop instruction mix printed, and every tensor-core
/// kernel (by name, [`sass::is_tensor_core`]) required to issue HMMA without spilling.
#[test]
fn every_kernel_disassembles_and_tensor_core_kernels_issue_hmma() {
    const TEST: &str = "every_kernel_disassembles_and_tensor_core_kernels_issue_hmma";
    if !nvrtc_present(TEST) {
        return;
    }
    let Some(tool) = cuobjdump_present(TEST) else { return };
    let (mut rows, mut resources, mut failures) = (Vec::new(), BTreeMap::new(), Vec::new());
    for m in sources::MODULES {
        let source = nvrtc::splice(sources::COMMON, m.source);
        let out = nvrtc::compile(m.name, &source, nvrtc::CUBIN_OPTIONS, nvrtc::Output::Cubin)
            .unwrap_or_else(|log| panic!("{log}"));
        for k in report::parse_ptxas(&out.log) {
            if sass::is_tensor_core(&k.kernel) && k.spill_bytes > 0 {
                failures.push(format!("{}: spills {} bytes", k.kernel, k.spill_bytes));
            }
            resources.insert(k.kernel.clone(), (k.registers, k.shared_bytes));
        }
        let kernels = sass::disassemble(&tool, m.name, &out.cubin.unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut names: Vec<&str> = kernels.iter().map(|k| k.kernel.as_str()).collect();
        let mut expected = m.kernels.to_vec();
        names.sort_unstable();
        expected.sort_unstable();
        assert_eq!(names, expected, "{}: the SASS holds other kernels than the file declares", m.name);
        for k in kernels {
            if sass::is_tensor_core(&k.kernel) && sass::Mix::of(&k.instructions).hmma == 0 {
                failures.push(format!("{}: no HMMA instruction", k.kernel));
            }
            rows.push((m.name, k));
        }
    }
    println!("{}", sass::table(&rows, &resources));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
