//! CIFAR-10 and CIFAR-100 binary readers.
//!
//! A CIFAR-10 record is 1 label byte followed by 3072 pixel bytes: the R, G and B planes of a
//! 32x32 image, each row-major. A CIFAR-100 record has a coarse label byte (20 classes) and a
//! fine label byte (100 classes) before the pixels; the fine label is the one kept. Pixels are
//! converted to channels-last (H x W x C) on load.

use std::path::{Path, PathBuf};

use super::dataset::{Dataset, DatasetKind, Split};
use super::read_file;
use crate::{Error, Result};

/// Side of a CIFAR image in pixels.
pub const SIDE: usize = 32;
/// Pixel bytes in one CIFAR record: 3 planes of 32x32.
pub const IMAGE_BYTES: usize = 3 * SIDE * SIDE;

/// Label bytes before the pixels, and the class count of each label byte.
fn label_layout(kind: DatasetKind) -> Result<&'static [usize]> {
    match kind {
        DatasetKind::Cifar10 => Ok(&[10]),
        DatasetKind::Cifar100 => Ok(&[20, 100]),
        other => Err(Error::invalid("cifar", format!("{other} is not a CIFAR data set"))),
    }
}

/// The folder that the official archive unpacks to.
fn archive_folder(kind: DatasetKind) -> &'static str {
    if kind == DatasetKind::Cifar100 { "cifar-100-binary" } else { "cifar-10-batches-bin" }
}

/// The file names of one split.
pub fn file_names(kind: DatasetKind, split: Split) -> &'static [&'static str] {
    match (kind, split) {
        (DatasetKind::Cifar100, Split::Train) => &["train.bin"],
        (DatasetKind::Cifar100, Split::Test) => &["test.bin"],
        (_, Split::Train) => &[
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
        ],
        (_, Split::Test) => &["test_batch.bin"],
    }
}

/// The folder holding the `.bin` files: `dir/cifar-10-batches-bin` (or `dir/cifar-100-binary`)
/// when it exists, otherwise `dir` itself.
pub fn resolve_dir(kind: DatasetKind, dir: &Path) -> PathBuf {
    let below = dir.join(archive_folder(kind));
    if below.is_dir() { below } else { dir.to_path_buf() }
}

/// Parses the bytes of one CIFAR binary file (`kind` is `Cifar10` or `Cifar100`); `path`
/// only names the file in errors.
pub fn parse(kind: DatasetKind, bytes: &[u8], path: &Path) -> Result<Dataset> {
    let classes = label_layout(kind)?;
    let record = classes.len() + IMAGE_BYTES;
    if bytes.is_empty() {
        return Err(Error::format(path, None, "empty file, expected CIFAR records"));
    }
    let whole = bytes.len() / record * record;
    if whole != bytes.len() {
        return Err(Error::format(
            path,
            Some(whole as u64),
            format!(
                "file size {} is not a whole number of {record}-byte {kind} records ({} bytes left over)",
                bytes.len(),
                bytes.len() - whole
            ),
        ));
    }
    let n = bytes.len() / record;
    let plane = SIDE * SIDE;
    let mut images = vec![0u8; n * IMAGE_BYTES];
    let mut labels = Vec::with_capacity(n);
    for (i, (rec, out)) in bytes.chunks_exact(record).zip(images.chunks_exact_mut(IMAGE_BYTES)).enumerate() {
        for (j, (&label, &count)) in rec.iter().zip(classes).enumerate() {
            if usize::from(label) >= count {
                return Err(Error::format(
                    path,
                    Some((i * record + j) as u64),
                    format!("label {label} of record {i} is out of range (expected 0..{count})"),
                ));
            }
        }
        labels.push(rec[classes.len() - 1]);
        let pixels = &rec[classes.len()..];
        for (p, px) in out.chunks_exact_mut(3).enumerate() {
            px[0] = pixels[p];
            px[1] = pixels[plane + p];
            px[2] = pixels[2 * plane + p];
        }
    }
    Dataset::new(images, labels, kind.num_classes(), [SIDE, SIDE, 3])
}

/// Loads one split of CIFAR-10 or CIFAR-100 from `dir` (see [`resolve_dir`]).
pub fn load(kind: DatasetKind, dir: &Path, split: Split) -> Result<Dataset> {
    let dir = resolve_dir(kind, dir);
    let mut all: Option<Dataset> = None;
    for name in file_names(kind, split) {
        let path = dir.join(name);
        let part = parse(kind, &read_file(&path)?, &path)?;
        match all.as_mut() {
            Some(all) => all.append(part)?,
            None => all = Some(part),
        }
    }
    all.ok_or_else(|| Error::invalid("cifar", format!("no files for {kind} {split}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(labels: &[u8], seed: u8) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend((0..IMAGE_BYTES).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
        r
    }

    #[test]
    fn planar_becomes_channels_last() {
        let bytes = [record(&[3], 0), record(&[9], 5)].concat();
        let d = parse(DatasetKind::Cifar10, &bytes, Path::new("x.bin")).unwrap();
        assert_eq!((d.len(), d.height(), d.width(), d.channels()), (2, 32, 32, 3));
        assert_eq!(d.labels(), &[3, 9]);
        let img = d.image(1).unwrap();
        let src = &bytes[IMAGE_BYTES + 2..];
        // pixel (row 2, col 5): R, G, B from the three planes
        let p = 2 * 32 + 5;
        assert_eq!(&img[p * 3..p * 3 + 3], &[src[p], src[1024 + p], src[2048 + p]]);
    }

    #[test]
    fn cifar100_keeps_fine_label() {
        let bytes = [record(&[19, 99], 0), record(&[0, 42], 1)].concat();
        let d = parse(DatasetKind::Cifar100, &bytes, Path::new("train.bin")).unwrap();
        assert_eq!(d.labels(), &[99, 42]);
        assert_eq!(d.num_classes(), 100);
    }

    #[test]
    fn bad_label_names_offset() {
        let bytes = [record(&[1, 5], 0), record(&[20, 5], 0)].concat();
        let e = parse(DatasetKind::Cifar100, &bytes, Path::new("train.bin")).unwrap_err().to_string();
        assert!(e.contains("train.bin at byte 3074") && e.contains("label 20"), "{e}");
        let e = parse(DatasetKind::Cifar10, &record(&[10], 0), Path::new("a.bin")).unwrap_err().to_string();
        assert!(e.contains("a.bin at byte 0") && e.contains("label 10"), "{e}");
    }

    #[test]
    fn partial_record_and_empty_are_errors() {
        let mut bytes = record(&[1], 0);
        bytes.extend_from_slice(&[0; 10]);
        let e = parse(DatasetKind::Cifar10, &bytes, Path::new("b.bin")).unwrap_err().to_string();
        assert!(e.contains("b.bin at byte 3073") && e.contains("10 bytes left over"), "{e}");
        assert!(parse(DatasetKind::Cifar10, &[], Path::new("c.bin")).is_err());
        assert!(parse(DatasetKind::Mnist, &bytes, Path::new("c.bin")).is_err());
    }
}
