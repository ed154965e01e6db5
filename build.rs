//! Build script: embeds the CUDA kernel files, compiles them to PTX when libnvrtc can be loaded
//! (a compile error fails the build), and, with the `cuda-emulation` feature, compiles them with
//! g++ and the CUDA-emulation header for execution on the CPU, and generates the typed kernel
//! handles (`src/cuda/codegen.rs`). Never needs nvcc or a GPU.
//!
//! `IEKD_EMU_SANITIZE=thread` or `=address` builds the emulated kernels with that sanitizer
//! (scripts/sanitize-kernels.sh).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

// Shared with the crate, which also uses the parts the build does not (the sm_90 report).
#[allow(dead_code)]
#[path = "src/cuda/nvrtc.rs"]
mod nvrtc;

// The typed kernel handles' generator, also compiled into the crate's tests.
#[path = "src/cuda/codegen.rs"]
mod codegen;

/// One kernel file: its module name (the file stem), path and kernels.
struct KernelFile {
    name: String,
    path: PathBuf,
    kernels: Vec<codegen::Kernel>,
}

fn kernel_files(dir: &Path, consts: &BTreeMap<String, i64>) -> Vec<KernelFile> {
    let mut files: Vec<KernelFile> = fs::read_dir(dir)
        .expect("kernels/ is readable")
        .map(|e| e.expect("kernels/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .map(|path| {
            let source = fs::read_to_string(&path).expect("kernel file is readable UTF-8");
            let name = path.file_stem().expect("file stem").to_string_lossy().into_owned();
            let kernels = codegen::parse_file(&name, &source, consts).unwrap_or_else(|e| panic!("{e}"));
            KernelFile { name, kernels, path }
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

/// Compiles every file to PTX in `out` when libnvrtc loads; returns whether it did.
fn build_ptx(files: &[KernelFile], common: &str, out: &Path) -> bool {
    if !nvrtc::available() {
        println!(
            "cargo:warning=libnvrtc not found (add its folder to LD_LIBRARY_PATH to compile the CUDA kernels \
             at build time); they will be compiled with NVRTC at run time"
        );
        return false;
    }
    for f in files {
        let source = fs::read_to_string(&f.path).expect("kernel file is readable");
        match nvrtc::compile_ptx(&f.name, common, &source) {
            Ok(ptx) => fs::write(out.join(format!("{}.ptx", f.name)), ptx).expect("OUT_DIR is writable"),
            Err(log) => panic!("CUDA kernel compilation failed:\n{log}"),
        }
    }
    true
}

/// `kernels.rs`: the list of kernel modules that src/cuda/sources.rs includes.
fn write_module_list(files: &[KernelFile], with_ptx: bool, out: &Path) {
    let mut list = String::from("&[\n");
    for f in files {
        let ptx = if with_ptx {
            format!("Some(include_str!({:?}))", out.join(format!("{}.ptx", f.name)))
        } else {
            "None".to_string()
        };
        writeln!(
            list,
            "    Module {{ name: {:?}, source: include_str!({:?}), ptx: {ptx}, kernels: &{:?} }},",
            f.name,
            f.path,
            f.kernels.iter().map(|k| k.name.as_str()).collect::<Vec<_>>()
        )
        .expect("write to String");
    }
    list.push(']');
    fs::write(out.join("kernels.rs"), list).expect("OUT_DIR is writable");
}

/// Compiles the kernels with g++ and the emulation header into a static library.
fn build_emulation(files: &[KernelFile], kernel_dir: &Path, out: &Path) {
    let mut inc = String::new();
    for f in files {
        writeln!(inc, "#include \"{}.cu\"", f.name).expect("write to String");
    }
    let all: Vec<String> =
        files.iter().flat_map(|f| f.kernels.iter().map(|k| format!("X({})", k.name))).collect();
    writeln!(inc, "#define IEKD_KERNELS(X) {}", all.join(" ")).expect("write to String");
    fs::write(out.join("emu_kernels.inc"), inc).expect("OUT_DIR is writable");

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .file(kernel_dir.join("emu/launch.cpp"))
        .include(kernel_dir)
        .include(out)
        .flag("-pthread")
        .flag("-Wno-unknown-pragmas")
        .warnings_into_errors(true);
    match env::var("IEKD_EMU_SANITIZE").as_deref() {
        Ok(s @ ("thread" | "address")) => {
            build.flag(format!("-fsanitize={s}")).flag("-fno-omit-frame-pointer").debug(true).opt_level(1);
            println!("cargo:rustc-link-lib=dylib={}", if s == "thread" { "tsan" } else { "asan" });
        }
        Ok(other) if !other.is_empty() => panic!("IEKD_EMU_SANITIZE={other}: expected thread or address"),
        _ => {}
    }
    build.compile("iekd_cuda_emu");
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let kernel_dir = manifest.join("kernels");
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-changed=src/cuda/nvrtc.rs");
    println!("cargo:rerun-if-changed=src/cuda/codegen.rs");
    println!("cargo:rerun-if-env-changed=LD_LIBRARY_PATH");
    println!("cargo:rerun-if-env-changed=IEKD_EMU_SANITIZE");

    let common = fs::read_to_string(kernel_dir.join("common.cuh")).expect("kernels/common.cuh is readable");
    let consts = codegen::constants(&common);
    let files = kernel_files(&kernel_dir, &consts);
    let all: Vec<codegen::Kernel> = files.iter().flat_map(|f| f.kernels.iter().cloned()).collect();
    let handles = codegen::handles(&all, &consts).unwrap_or_else(|e| panic!("kernel contracts: {e}"));
    fs::write(out.join("handles.rs"), handles).expect("OUT_DIR is writable");
    let with_ptx = build_ptx(&files, &common, &out);
    write_module_list(&files, with_ptx, &out);
    if env::var_os("CARGO_FEATURE_CUDA_EMULATION").is_some() {
        build_emulation(&files, &kernel_dir, &out);
    }
}
