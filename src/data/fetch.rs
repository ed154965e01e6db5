//! Downloading the official data set files, checked against their published MD5 sums.
//!
//! Each file is written to a temporary name in the target folder, checked, and only then
//! renamed into place, so a failed or corrupt download leaves nothing behind. `.tar.gz`
//! archives are unpacked into the folder afterwards (CIFAR-10 unpacks to
//! `cifar-10-batches-bin/`, CIFAR-100 to `cifar-100-binary/`, where [`load`](super::load)
//! looks for them). A file already present with the right checksum is not downloaded again.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};

use super::dataset::DatasetKind;
use crate::{Error, Result};

/// One file to download and the MD5 sum (lower-case hex) it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// File name, appended to the base URL and used as the local name.
    pub file: String,
    /// Expected MD5 sum of the file, 32 hex digits.
    pub md5: String,
}

impl Source {
    /// A source from a file name and its MD5 sum.
    pub fn new(file: impl Into<String>, md5: impl Into<String>) -> Self {
        Source { file: file.into(), md5: md5.into() }
    }
}

/// Where the official files of `kind` are published.
pub fn default_base_url(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => "https://www.cs.toronto.edu/~kriz/",
        DatasetKind::Mnist => "https://ossci-datasets.s3.amazonaws.com/mnist/",
        DatasetKind::FashionMnist => "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    }
}

/// The official files of `kind` with their published MD5 sums.
pub fn sources(kind: DatasetKind) -> Vec<Source> {
    let table: &[(&str, &str)] = match kind {
        DatasetKind::Cifar10 => &[("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")],
        DatasetKind::Cifar100 => &[("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8")],
        DatasetKind::Mnist => &[
            ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        ],
        DatasetKind::FashionMnist => &[
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        ],
    };
    table.iter().map(|&(file, md5)| Source::new(file, md5)).collect()
}

/// Downloads the official files of `kind` into `dir` (created if needed), from `base_url` or
/// else [`default_base_url`], checks their MD5 sums and unpacks archives.
pub fn fetch(kind: DatasetKind, dir: &Path, base_url: Option<&str>) -> Result<()> {
    fetch_sources(&sources(kind), dir, base_url.unwrap_or(default_base_url(kind)))
}

/// Downloads each of `sources` from `base_url` into `dir`, as [`fetch`] does.
pub fn fetch_sources(sources: &[Source], dir: &Path, base_url: &str) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into();
    for source in sources {
        let target = dir.join(&source.file);
        let present = target.is_file() && md5_file(&target)? == source.md5.to_ascii_lowercase();
        if !present {
            let url = format!("{}/{}", base_url.trim_end_matches('/'), source.file);
            let tmp = dir.join(format!(".{}.{}.part", source.file, std::process::id()));
            let result = download(&agent, &url, &tmp, &target, source);
            let result = result.and_then(|()| fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e)));
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result?;
        }
        let is_archive = source.file.ends_with(".tar.gz") || source.file.ends_with(".tgz");
        if is_archive && !(present && unpacked(dir, &source.file)) {
            unpack(&target, dir, &source.file)?;
        }
    }
    Ok(())
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 sum of a file, lower-case hex.
fn md5_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hex(&hasher.finalize())),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
}

/// Streams `url` into `tmp` with a progress bar, failing if its MD5 sum is not `source.md5`.
fn download(agent: &ureq::Agent, url: &str, tmp: &Path, target: &Path, source: &Source) -> Result<()> {
    let net_err =
        |e: &dyn std::fmt::Display| Error::io(target, io::Error::other(format!("downloading {url}: {e}")));
    let mut response = agent.get(url).call().map_err(|e| net_err(&e))?;
    let length = response.body().content_length();
    let bar = match length {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(source.file.clone());
    let mut body = response.body_mut().as_reader();
    let mut out = BufWriter::new(File::create(tmp).map_err(|e| Error::io(tmp, e))?);
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(net_err(&e)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| Error::io(tmp, e))?;
        bar.inc(n as u64);
    }
    out.flush().map_err(|e| Error::io(tmp, e))?;
    out.into_inner()
        .map_err(|e| Error::io(tmp, e.into_error()))?
        .sync_all()
        .map_err(|e| Error::io(tmp, e))?;
    bar.finish_and_clear();
    let got = hex(&hasher.finalize());
    if got != source.md5.to_ascii_lowercase() {
        return Err(Error::format(
            target,
            None,
            format!(
                "checksum mismatch: md5 of the download from {url} is {got}, expected {}; file discarded",
                source.md5
            ),
        ));
    }
    Ok(())
}

/// Unpacks the `.tar.gz` `archive` into `dir`: first into a temporary folder, then each
/// top-level entry is moved into place, replacing an older copy.
/// The file in `dir` that lists what the archive `file` unpacked to, one name a line.
fn manifest(dir: &Path, file: &str) -> PathBuf {
    dir.join(format!(".{file}.unpacked"))
}

/// Whether the archive `file` was unpacked into `dir` and everything it gave is still there.
fn unpacked(dir: &Path, file: &str) -> bool {
    fs::read_to_string(manifest(dir, file))
        .is_ok_and(|names| names.lines().all(|name| !name.is_empty() && dir.join(name).exists()))
}

/// Unpacks `archive` (named `file`) into `dir` through a staging folder, replacing what it
/// unpacked to before, then records the names it gave.
fn unpack(archive: &Path, dir: &Path, file: &str) -> Result<()> {
    let staging = dir.join(format!(".unpack.{}", std::process::id()));
    let result = unpack_into(archive, &staging, dir);
    let _ = fs::remove_dir_all(&staging);
    let names = result?;
    let list = manifest(dir, file);
    fs::write(&list, names.join("\n")).map_err(|e| Error::io(&list, e))
}

/// The body of [`unpack`]; the caller removes `staging`. Returns the top-level names unpacked.
fn unpack_into(archive: &Path, staging: &Path, dir: &Path) -> Result<Vec<String>> {
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    tar::Archive::new(GzDecoder::new(file))
        .unpack(staging)
        .map_err(|e| Error::format(archive, None, format!("cannot unpack: {e}")))?;
    let entries = fs::read_dir(staging).map_err(|e| Error::io(staging, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(staging, e))?;
        let dest: PathBuf = dir.join(entry.file_name());
        if dest.is_dir() {
            fs::remove_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
        } else if dest.exists() {
            fs::remove_file(&dest).map_err(|e| Error::io(&dest, e))?;
        }
        fs::rename(entry.path(), &dest).map_err(|e| Error::io(&dest, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}
