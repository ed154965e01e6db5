//! Writers of the standard data formats (CIFAR binaries, IDX, gzip) and small helpers shared by
//! the integration tests; each test binary uses a part of them.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};

/// A CIFAR record: label bytes then R, G, B planes where pixel p of plane c is (p + 7c + seed).
pub fn cifar_record(labels: &[u8], seed: u8) -> Vec<u8> {
    let mut r = labels.to_vec();
    r.extend((0..3072).map(|i| ((i % 1024) as u8).wrapping_add((i / 1024) as u8 * 7).wrapping_add(seed)));
    r
}

/// Bytes of a CIFAR-10 batch with the given labels.
pub fn cifar10_file(labels: &[u8]) -> Vec<u8> {
    labels.iter().enumerate().flat_map(|(i, &l)| cifar_record(&[l], i as u8)).collect()
}

/// Writes a CIFAR-10 folder: five training batches of 2 images and a test batch of 3.
pub fn write_cifar10(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for b in 1..=5u8 {
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), cifar10_file(&[b, 9 - b])).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), cifar10_file(&[0, 1, 2])).unwrap();
}

pub fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    dims.iter().for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
    v.extend_from_slice(data);
    v
}

pub fn idx_images(n: usize) -> Vec<u8> {
    let pixels: Vec<u8> = (0..n * 784).map(|i| (i % 250) as u8 + 1).collect();
    idx(0x803, &[n as u32, 28, 28], &pixels)
}

pub fn idx_labels(labels: &[u8]) -> Vec<u8> {
    idx(0x801, &[labels.len() as u32], labels)
}

/// Bytes that do not compress.
pub fn noise(n: usize) -> Vec<u8> {
    let mut x = 12345u32;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Writes an MNIST-style folder: raw training files (5 images), gzipped test files (3).
/// Creates `dir` (and its parents) and writes each `(name, bytes)` of `files` into it.
pub fn write_files<const N: usize>(dir: &Path, files: [(&str, Vec<u8>); N]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

pub fn write_mnist(dir: &Path) {
    write_files(
        dir,
        [
            ("train-images-idx3-ubyte", idx_images(5)),
            ("train-labels-idx1-ubyte", idx_labels(&[0, 1, 2, 3, 9])),
            ("t10k-images-idx3-ubyte.gz", gz(&idx_images(3))),
            ("t10k-labels-idx1-ubyte.gz", gz(&idx_labels(&[7, 8, 9]))),
        ],
    );
}

pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn err_of<T: std::fmt::Debug>(r: iekd::Result<T>) -> String {
    r.unwrap_err().to_string()
}

/// Says that a test skipped and why, on stderr past the test harness's capture, so it shows.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Whether Debian's Fashion-MNIST is installed; when it is not, says so visibly for the running
/// test (the harness names its thread after it), and under CI (which installs it) fails.
pub fn fashion_installed() -> bool {
    let dir = Path::new(iekd::data::DEBIAN_FASHION_MNIST_DIR);
    if dir.exists() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must install dataset-fashion-mnist (scripts/test.sh does)");
    let thread = std::thread::current();
    skipped(
        thread.name().unwrap_or("test"),
        &format!("{} not installed (apt-get install dataset-fashion-mnist)", dir.display()),
    );
    false
}

/// Runs the binary `bin` with `args` and asserts that it fails; returns its standard error and the
/// lines of it that are neither empty, nor the `device:` line, nor `noise`.
pub fn failed_run_errors(bin: &str, args: &[&str], noise: impl Fn(&str) -> bool) -> (String, Vec<String>) {
    let out = std::process::Command::new(bin).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines = err
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("device:") && !noise(l))
        .map(str::to_string)
        .collect();
    (err, lines)
}
