//! NVRTC compilation of the kernel files, shared by `build.rs` (PTX at build time) and the crate
//! (PTX at run time when the build had no NVRTC, and the sm_90 resource report).
//!
//! NVRTC is loaded dynamically: [`available`] probes for it first, because cudarc panics when a
//! function of a missing library is called.

use std::ffi::{CString, c_char};

use cudarc::nvrtc::{result, sys};

/// The line with which each kernel file includes the shared header; [`splice`] replaces it.
pub const COMMON_INCLUDE: &str = "#include \"common.cuh\"";

/// The headers a kernel file may include after `common.cuh`, as (include line, text): [`splice`]
/// puts each text in place of its line.
pub const HEADERS: [(&str, &str); 4] = [
    ("#include \"tensor_core.cuh\"", include_str!("../../kernels/tensor_core.cuh")),
    ("#include \"conv_stats.cuh\"", include_str!("../../kernels/conv_stats.cuh")),
    ("#include \"conv_tc.cuh\"", include_str!("../../kernels/conv_tc.cuh")),
    ("#include \"conv_tc_fused.cuh\"", include_str!("../../kernels/conv_tc_fused.cuh")),
];

/// Options for PTX: the virtual architecture of Hopper (compute capability 9.0), C++17.
pub const PTX_OPTIONS: &[&str] = &["--gpu-architecture=compute_90", "--std=c++17"];

/// Options for the resource report: sm_90 machine code, with ptxas's report in the log.
pub const CUBIN_OPTIONS: &[&str] = &["--gpu-architecture=sm_90", "--std=c++17", "--ptxas-options=-v"];

/// The newest PTX ISA the target driver (CUDA 13.0) loads.
pub const MAX_PTX_ISA: (u32, u32) = (9, 0);

/// Whether libnvrtc can be loaded (from the library search path, e.g. `LD_LIBRARY_PATH`).
pub fn available() -> bool {
    // SAFETY: only tries to open the library; no function of it is called.
    unsafe { sys::is_culib_present() }
}

/// The kernel file `source` with the shared header `common` in place of its include line, and
/// each of [`HEADERS`] in place of its include line where it has one, so NVRTC needs no file
/// system.
pub fn splice(common: &str, source: &str) -> String {
    HEADERS
        .iter()
        .fold(source.replacen(COMMON_INCLUDE, common, 1), |s, (line, text)| s.replacen(line, text, 1))
}

/// What a compilation returns besides its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Only the log.
    Log,
    /// The PTX text (with a virtual architecture).
    Ptx,
    /// The machine code, a CUBIN (with a real architecture, [`CUBIN_OPTIONS`]).
    Cubin,
}

/// A successful compilation: the compiler's log and, when asked for, the PTX or the CUBIN.
pub struct Compiled {
    /// NVRTC's log (warnings, and ptxas's report with `--ptxas-options=-v`).
    pub log: String,
    /// The PTX text, when requested.
    pub ptx: Option<String>,
    /// The CUBIN, when requested.
    pub cubin: Option<Vec<u8>>,
}

fn text(bytes: &[c_char]) -> String {
    let bytes: Vec<u8> = bytes.iter().take_while(|&&b| b != 0).map(|&b| b as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The CUBIN of a compiled program.
///
/// # Safety
/// `prog` is a live program that compiled successfully for a real architecture.
unsafe fn get_cubin(prog: sys::nvrtcProgram) -> Result<Vec<u8>, sys::nvrtcResult> {
    let mut size = 0usize;
    // SAFETY: `prog` is live (the caller's contract); `size` is a valid out-pointer.
    let rc = unsafe { sys::nvrtcGetCUBINSize(prog, &mut size) };
    if rc != sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(rc);
    }
    let mut cubin = vec![0u8; size];
    // SAFETY: `cubin` holds the `size` bytes NVRTC reported for this program.
    let rc = unsafe { sys::nvrtcGetCUBIN(prog, cubin.as_mut_ptr().cast()) };
    if rc != sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(rc);
    }
    Ok(cubin)
}

/// Compiles the (spliced) source of the kernel file `name` with `options`, returning `output`;
/// the error is the log. Call only when [`available`] is true.
pub fn compile(name: &str, source: &str, options: &[&str], output: Output) -> Result<Compiled, String> {
    let src = CString::new(source).map_err(|_| format!("{name}: the source holds a NUL byte"))?;
    let cname = CString::new(name).map_err(|_| format!("{name}: the name holds a NUL byte"))?;
    let prog = result::create_program(&src, Some(&cname)).map_err(|e| format!("{name}: {e:?}"))?;
    // SAFETY: `prog` was created above and is destroyed once, at the end; `src` and `cname`
    // outlive it.
    unsafe {
        let compiled = result::compile_program(prog, options);
        let log = result::get_program_log(prog).map(|l| text(&l)).unwrap_or_default();
        let out = match (compiled, output) {
            (Err(e), _) => Err(format!("{name}: {e:?}\n{log}")),
            (Ok(()), Output::Log) => Ok(Compiled { log, ptx: None, cubin: None }),
            (Ok(()), Output::Ptx) => match result::get_ptx(prog) {
                Ok(ptx) => Ok(Compiled { log, ptx: Some(text(&ptx)), cubin: None }),
                Err(e) => Err(format!("{name}: reading the PTX failed: {e:?}")),
            },
            (Ok(()), Output::Cubin) => match get_cubin(prog) {
                Ok(cubin) => Ok(Compiled { log, ptx: None, cubin: Some(cubin) }),
                Err(e) => Err(format!("{name}: reading the CUBIN failed: {e:?}")),
            },
        };
        // A failure to free the program leaks it and changes no result.
        let _ = result::destroy_program(prog);
        out
    }
}

/// The PTX ISA version a PTX text declares (`.version 8.8`).
pub fn ptx_isa(ptx: &str) -> Option<(u32, u32)> {
    let line = ptx.lines().find_map(|l| l.trim().strip_prefix(".version"))?;
    let (major, minor) = line.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Compiles one kernel file to PTX and checks its ISA version against [`MAX_PTX_ISA`].
pub fn compile_ptx(name: &str, common: &str, source: &str) -> Result<String, String> {
    let ptx = compile(name, &splice(common, source), PTX_OPTIONS, Output::Ptx)?.ptx.unwrap_or_default();
    match ptx_isa(&ptx) {
        Some(v) if v <= MAX_PTX_ISA => Ok(ptx),
        v => Err(format!(
            "{name}: PTX ISA {v:?} is missing or newer than {MAX_PTX_ISA:?}; use an NVRTC of CUDA <= 13.0"
        )),
    }
}
