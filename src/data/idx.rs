//! MNIST and Fashion-MNIST readers for IDX files, raw or gzip-compressed.
//!
//! An IDX file starts with a big-endian magic number (`0x00000803` for u8 images N x H x W,
//! `0x00000801` for u8 labels N) followed by one big-endian u32 per dimension, then the data.
//! Declared sizes are always checked against the real amount of data before anything of that
//! size is allocated, so a lying header cannot cause a huge allocation. Images smaller than
//! 32x32 (the 28x28 of MNIST) are zero-padded, centred, to 32x32 on load so that every network
//! sees 32x32 inputs.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::dataset::{Dataset, DatasetKind, Split};
use super::read_file;
use crate::{Error, Result};

/// Magic number of an IDX file of u8 images (N x H x W).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 labels (N).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Side that smaller images are padded to on load.
pub const PADDED_SIDE: usize = 32;
/// Classes of MNIST and Fashion-MNIST.
const NUM_CLASSES: usize = 10;
/// Deflate never expands data by more than this factor (the format's limit is about 1032).
const MAX_DEFLATE_RATIO: u64 = 1100;

/// A parsed IDX image file: `count` images of `rows` x `cols` u8 pixels, row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxImages<'a> {
    /// Number of images.
    pub count: usize,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// `count * rows * cols` pixels.
    pub pixels: &'a [u8],
}

/// A checked IDX header: its length in bytes, the dimensions and the data size they declare.
struct Header {
    len: usize,
    dims: Vec<usize>,
    data_len: u64,
}

/// Reads and checks the header of `bytes` against `magic`; does not look at the data.
fn parse_header(bytes: &[u8], path: &Path, magic: u32) -> Result<Header> {
    let what = if magic == IMAGES_MAGIC { "u8 images" } else { "u8 labels" };
    let Some(head) = bytes.first_chunk::<4>() else {
        return Err(Error::format(
            path,
            Some(0),
            format!("{} bytes is too short for an IDX header", bytes.len()),
        ));
    };
    let found = u32::from_be_bytes(*head);
    if found != magic {
        let hint = if head[..2] == [0x1f, 0x8b] { " (the file is gzip-compressed: name it .gz)" } else { "" };
        return Err(Error::format(
            path,
            Some(0),
            format!("wrong magic number 0x{found:08x}, expected 0x{magic:08x} (IDX {what}){hint}"),
        ));
    }
    let ndims = (magic & 0xff) as usize;
    let len = 4 + 4 * ndims;
    if bytes.len() < len {
        return Err(Error::format(path, Some(bytes.len() as u64), "file ends inside the IDX header"));
    }
    let dims: Vec<usize> = bytes[4..len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let data_len = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| Error::format(path, Some(4), format!("header dimensions {dims:?} overflow")))?;
    Ok(Header { len, dims, data_len })
}

/// Checks that the data after the header is exactly as long as the header declares.
fn check_data_len(bytes: &[u8], path: &Path, header: &Header) -> Result<()> {
    let actual = (bytes.len() - header.len) as u64;
    if actual != header.data_len {
        let found = if actual > header.data_len {
            "more follows".to_string()
        } else {
            format!("the file only holds {actual}")
        };
        return Err(Error::format(
            path,
            Some(header.len as u64),
            format!(
                "header declares dimensions {:?} ({} bytes of data) but {found}",
                header.dims, header.data_len
            ),
        ));
    }
    Ok(())
}

/// Parses the (decompressed) bytes of an IDX image file; `path` only names it in errors.
pub fn parse_images<'a>(bytes: &'a [u8], path: &Path) -> Result<IdxImages<'a>> {
    let header = parse_header(bytes, path, IMAGES_MAGIC)?;
    let (count, rows, cols) = (header.dims[0], header.dims[1], header.dims[2]);
    if rows == 0 || cols == 0 {
        return Err(Error::format(path, Some(8), format!("empty image size {rows}x{cols}")));
    }
    check_data_len(bytes, path, &header)?;
    Ok(IdxImages { count, rows, cols, pixels: &bytes[header.len..] })
}

/// Parses the (decompressed) bytes of an IDX label file, checking every label is below
/// `num_classes`; `path` only names it in errors.
pub fn parse_labels<'a>(bytes: &'a [u8], path: &Path, num_classes: usize) -> Result<&'a [u8]> {
    let header = parse_header(bytes, path, LABELS_MAGIC)?;
    check_data_len(bytes, path, &header)?;
    let labels = &bytes[header.len..];
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| usize::from(**l) >= num_classes) {
        return Err(Error::format(
            path,
            Some((header.len + i) as u64),
            format!("label {l} of item {i} is out of range (expected 0..{num_classes})"),
        ));
    }
    Ok(labels)
}

/// Reads an IDX file whole, decompressing it when its name ends in `.gz`. A gzip file is read
/// with a limit: at most the size its header declares plus one byte.
fn read_idx(path: &Path, magic: u32) -> Result<Vec<u8>> {
    if path.extension().is_none_or(|e| e != "gz") {
        return read_file(path);
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let compressed = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let gz_err = |e: io::Error| Error::format(path, None, format!("bad gzip data: {e}"));
    let mut decoder = GzDecoder::new(file);
    let header_len = 4 + 4 * u64::from(magic & 0xff);
    let mut bytes = Vec::new();
    (&mut decoder).take(header_len).read_to_end(&mut bytes).map_err(gz_err)?;
    let header = parse_header(&bytes, path, magic)?;
    let bound = compressed.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1024);
    if header.data_len > bound {
        return Err(Error::format(
            path,
            Some(4),
            format!(
                "header declares {} bytes of data, more than a {compressed}-byte gzip file can hold",
                header.data_len
            ),
        ));
    }
    bytes.reserve(usize::try_from(header.data_len.min(compressed.saturating_mul(8))).unwrap_or(0));
    decoder.take(header.data_len + 1).read_to_end(&mut bytes).map_err(gz_err)?;
    Ok(bytes)
}

/// The standard file stem of one split's images or labels.
fn stem(split: Split, images: bool) -> &'static str {
    match (split, images) {
        (Split::Train, true) => "train-images-idx3-ubyte",
        (Split::Train, false) => "train-labels-idx1-ubyte",
        (Split::Test, true) => "t10k-images-idx3-ubyte",
        (Split::Test, false) => "t10k-labels-idx1-ubyte",
    }
}

/// Finds a file `stem` in `dir`, `dir/raw` or torchvision's `dir/<Name>/raw`, raw or `.gz`,
/// also accepting the `train-images.idx3-ubyte` spelling.
pub fn find_file(kind: DatasetKind, dir: &Path, stem: &str) -> Result<PathBuf> {
    let torch = if kind == DatasetKind::Mnist { "MNIST/raw" } else { "FashionMNIST/raw" };
    let dotted = stem.replacen("-idx", ".idx", 1);
    for sub in ["", "raw", torch] {
        for name in [stem, dotted.as_str()] {
            for ext in ["", ".gz"] {
                let path = dir.join(sub).join(format!("{name}{ext}"));
                if path.is_file() {
                    return Ok(path);
                }
            }
        }
    }
    Err(Error::io(
        dir.join(format!("{stem}.gz")),
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("not found (nor {stem} raw, nor under raw/ or {torch}/); download the {kind} data first"),
        ),
    ))
}

/// Zero-pads `count` images of `rows` x `cols` to at least 32x32, centred.
fn pad(images: &IdxImages<'_>, path: &Path) -> Result<(Vec<u8>, usize, usize)> {
    let (h, w) = (images.rows.max(PADDED_SIDE), images.cols.max(PADDED_SIDE));
    if (h, w) == (images.rows, images.cols) {
        return Ok((images.pixels.to_vec(), h, w));
    }
    let size = h
        .checked_mul(w)
        .and_then(|x| x.checked_mul(images.count))
        .ok_or_else(|| Error::format(path, Some(4), "padded image size overflows"))?;
    let (top, left) = ((h - images.rows) / 2, (w - images.cols) / 2);
    let mut out = vec![0u8; size];
    let src_len = images.rows * images.cols;
    for (src, dst) in images.pixels.chunks_exact(src_len).zip(out.chunks_exact_mut(h * w)) {
        for (r, row) in src.chunks_exact(images.cols).enumerate() {
            let start = (top + r) * w + left;
            dst[start..start + images.cols].copy_from_slice(row);
        }
    }
    Ok((out, h, w))
}

/// Loads one split of MNIST or Fashion-MNIST from `dir` (see [`find_file`]), padding the
/// 28x28 images to 32x32 with zeros.
pub fn load(kind: DatasetKind, dir: &Path, split: Split) -> Result<Dataset> {
    let images_path = find_file(kind, dir, stem(split, true))?;
    let labels_path = find_file(kind, dir, stem(split, false))?;
    let image_bytes = read_idx(&images_path, IMAGES_MAGIC)?;
    let images = parse_images(&image_bytes, &images_path)?;
    let label_bytes = read_idx(&labels_path, LABELS_MAGIC)?;
    let labels = parse_labels(&label_bytes, &labels_path, NUM_CLASSES)?;
    if labels.len() != images.count {
        return Err(Error::format(
            &labels_path,
            None,
            format!(
                "holds {} labels but {} holds {} images",
                labels.len(),
                images_path.display(),
                images.count
            ),
        ));
    }
    let (pixels, h, w) = pad(&images, &images_path)?;
    Dataset::new(pixels, labels.to_vec(), NUM_CLASSES, [h, w, 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_images_and_labels() {
        let bytes = idx(IMAGES_MAGIC, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let im = parse_images(&bytes, Path::new("i")).unwrap();
        assert_eq!((im.count, im.rows, im.cols, im.pixels.len()), (2, 2, 3, 12));
        let bytes = idx(LABELS_MAGIC, &[3], &[0, 9, 4]);
        assert_eq!(parse_labels(&bytes, Path::new("l"), 10).unwrap(), &[0, 9, 4]);
    }

    #[test]
    fn header_errors() {
        let p = Path::new("f");
        let e = parse_images(&idx(LABELS_MAGIC, &[1], &[0]), p).unwrap_err().to_string();
        assert!(e.contains("wrong magic number 0x00000801"), "{e}");
        let e = parse_images(&[0, 0, 8], p).unwrap_err().to_string();
        assert!(e.contains("too short"), "{e}");
        let e = parse_images(&idx(IMAGES_MAGIC, &[1, 2], &[]), p).unwrap_err().to_string();
        assert!(e.contains("ends inside the IDX header"), "{e}");
        let e = parse_images(&idx(IMAGES_MAGIC, &[u32::MAX, 1000, 1000], &[1]), p).unwrap_err().to_string();
        assert!(e.contains("f at byte 16") && e.contains("only holds 1"), "{e}");
        let e = parse_labels(&idx(LABELS_MAGIC, &[2], &[1, 10]), p, 10).unwrap_err().to_string();
        assert!(e.contains("f at byte 9") && e.contains("label 10"), "{e}");
        let e = parse_images(&[0x1f, 0x8b, 8, 0], p).unwrap_err().to_string();
        assert!(e.contains("gzip"), "{e}");
    }

    #[test]
    fn pads_centred() {
        let pixels: Vec<u8> = (1..=28 * 28).map(|i| (i % 251) as u8 + 1).collect();
        let im = IdxImages { count: 1, rows: 28, cols: 28, pixels: &pixels };
        let (out, h, w) = pad(&im, Path::new("p")).unwrap();
        assert_eq!((h, w, out.len()), (32, 32, 1024));
        assert_eq!(out[2 * 32 + 2], pixels[0]);
        assert_eq!(out[29 * 32 + 29], pixels[28 * 28 - 1]);
        assert_eq!(out.iter().filter(|&&v| v == 0).count(), 1024 - 784);
    }
}
