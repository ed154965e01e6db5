//! Downloads from a local HTTP server: checksums, unpacking, nothing left behind on failure.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{err_of, gz, idx_images, idx_labels, md5_hex, write_cifar10};
use flate2::Compression;
use flate2::write::GzEncoder;
use iekd::data::fetch::{Source, fetch, fetch_sources};
use iekd::data::{DatasetKind, Split, load};

/// Serves `files` over HTTP on 127.0.0.1 from a background thread; returns the base URL and
/// a count of requests.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/files/", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let body = path.strip_prefix("/files/").and_then(|f| files.get(f));
            let (status, body) = match body {
                Some(b) => ("200 OK", b.as_slice()),
                None => ("404 Not Found", &b"no such file"[..]),
            };
            let head =
                format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
        }
    });
    (base, hits)
}

fn cifar10_archive() -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    write_cifar10(src.path());
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    tar.append_dir_all("cifar-10-batches-bin", src.path()).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn fetch_downloads_checks_and_unpacks_an_archive() {
    let archive = cifar10_archive();
    let md5 = md5_hex(&archive);
    let (base, hits) = serve(HashMap::from([("cifar-10-binary.tar.gz".to_string(), archive)]));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar10");
    let sources = [Source::new("cifar-10-binary.tar.gz", md5)];
    fetch_sources(&sources, &dir, &base).unwrap();
    let d = load(DatasetKind::Cifar10, &dir, Split::Train).unwrap();
    assert_eq!(d.len(), 10);
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let manifest = ".cifar-10-binary.tar.gz.unpacked";
    assert_eq!(
        names,
        [manifest, "cifar-10-batches-bin", "cifar-10-binary.tar.gz"],
        "no temporary files left"
    );
    let marker = dir.join("cifar-10-batches-bin").join("user-note");
    std::fs::write(&marker, b"kept").unwrap();
    fetch_sources(&sources, &dir, &base).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a file with the right checksum is not downloaded again");
    assert!(marker.exists(), "an archive already unpacked is not unpacked again");
    std::fs::remove_dir_all(dir.join("cifar-10-batches-bin")).unwrap();
    fetch_sources(&sources, &dir, &base).unwrap();
    assert_eq!(
        load(DatasetKind::Cifar10, &dir, Split::Train).unwrap().len(),
        10,
        "a removed folder comes back"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "from the archive already there");
}

#[test]
fn fetch_idx_files_then_load_them() {
    let files: HashMap<String, Vec<u8>> = [
        ("train-images-idx3-ubyte.gz", gz(&idx_images(3))),
        ("train-labels-idx1-ubyte.gz", gz(&idx_labels(&[1, 2, 3]))),
        ("t10k-images-idx3-ubyte.gz", gz(&idx_images(1))),
        ("t10k-labels-idx1-ubyte.gz", gz(&idx_labels(&[4]))),
    ]
    .into_iter()
    .map(|(n, b)| (n.to_string(), b))
    .collect();
    let sources: Vec<Source> = files.iter().map(|(n, b)| Source::new(n.clone(), md5_hex(b))).collect();
    let (base, _) = serve(files);
    let tmp = tempfile::tempdir().unwrap();
    fetch_sources(&sources, tmp.path(), &base).unwrap();
    let d = load(DatasetKind::FashionMnist, tmp.path(), Split::Train).unwrap();
    assert_eq!((d.len(), d.labels(), d.height()), (3, &[1u8, 2, 3][..], 32));
}

#[test]
fn fetch_checksum_mismatch_or_missing_file_leaves_nothing() {
    let files = HashMap::from([("train-images-idx3-ubyte.gz".to_string(), gz(&idx_images(2)))]);
    let (base, _) = serve(files);
    let tmp = tempfile::tempdir().unwrap();
    // the published MNIST checksums cannot match these small files
    let e = err_of(fetch(DatasetKind::Mnist, tmp.path(), Some(&base)));
    assert!(e.contains("train-images-idx3-ubyte.gz") && e.contains("checksum mismatch"), "{e}");
    assert!(e.contains("f68b3c2dcbeaaa9fbdd348bbdeb94873") && !e.contains('\n'), "{e}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "no file left behind");
    let e = err_of(fetch_sources(&[Source::new("absent.tar.gz", "0".repeat(32))], tmp.path(), &base));
    assert!(e.contains("absent.tar.gz") && e.contains("404"), "{e}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "no file left behind");
}
