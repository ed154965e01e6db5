//! Data sets: readers, augmentation and batching.
//!
//! - [`load`] reads one split of CIFAR-10, CIFAR-100, MNIST or Fashion-MNIST into a
//!   [`Dataset`] (u8 pixels, channels last; 28x28 images are zero-padded to 32x32).
//! - [`Loader`] turns a data set into shuffled, augmented, normalised [`Batch`]es, prepared on
//!   a background thread and reproducible from a seed.
//! - [`fetch`](fetch::fetch) downloads and checks the official archives.

pub mod augment;
pub mod cifar;
mod dataset;
#[cfg(feature = "cli")]
pub mod fetch;
pub mod idx;
pub mod loader;

use std::io;
use std::path::Path;

pub use augment::Augment;
pub use dataset::{DEBIAN_FASHION_MNIST_DIR, Dataset, DatasetKind, Split};
pub use loader::{Batch, Batches, Loader, LoaderConfig};

use crate::{Error, Result};

/// Loads one split of a data set from `dir` (for example [`DatasetKind::default_dir`]).
///
/// Every image comes out as N x H x W x C u8 pixels: CIFAR's planar R, G, B records are
/// converted to channels last, and MNIST-family 28x28 images are zero-padded (centred) to
/// 32x32 so that every network sees 32x32 inputs. Nothing partly read is ever returned:
/// any missing, truncated or malformed file is an error that names it.
pub fn load(kind: DatasetKind, dir: &Path, split: Split) -> Result<Dataset> {
    match kind {
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => cifar::load(kind, dir, split),
        DatasetKind::Mnist | DatasetKind::FashionMnist => idx::load(kind, dir, split),
    }
}

/// Reads a whole file, turning "not found" into a hint to download the data first.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::io(path, io::Error::new(e.kind(), "file not found; download the data set first"))
        } else {
            Error::io(path, e)
        }
    })
}
