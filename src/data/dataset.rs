//! The in-memory data set and the names of the supported data sets.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::{Error, Result};

/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// One of the supported data sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// CIFAR-10: 32x32 RGB, 10 classes.
    Cifar10,
    /// CIFAR-100: 32x32 RGB, 100 fine classes.
    Cifar100,
    /// MNIST digits: 28x28 grey, 10 classes (padded to 32x32 on load).
    Mnist,
    /// Fashion-MNIST: 28x28 grey, 10 classes (padded to 32x32 on load).
    FashionMnist,
}

impl DatasetKind {
    /// Every supported data set.
    pub const ALL: [DatasetKind; 4] =
        [DatasetKind::Cifar10, DatasetKind::Cifar100, DatasetKind::Mnist, DatasetKind::FashionMnist];

    /// The name used on the command line: `cifar10`, `cifar100`, `mnist` or `fashion-mnist`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// Number of classes (CIFAR-100 uses its 100 fine labels).
    pub fn num_classes(self) -> usize {
        match self {
            DatasetKind::Cifar100 => 100,
            _ => 10,
        }
    }

    /// Number of image channels: 3 for CIFAR, 1 for the MNIST family.
    pub fn channels(self) -> usize {
        match self {
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 3,
            DatasetKind::Mnist | DatasetKind::FashionMnist => 1,
        }
    }

    /// The default data folder: the Debian package's folder for Fashion-MNIST when it
    /// exists, otherwise `data/<name>` relative to the working directory.
    pub fn default_dir(self) -> PathBuf {
        if self == DatasetKind::FashionMnist {
            let debian = PathBuf::from(DEBIAN_FASHION_MNIST_DIR);
            if debian.is_dir() {
                return debian;
            }
        }
        PathBuf::from("data").join(self.name())
    }

    /// Per-channel mean of the pixel values scaled to [0, 1], for normalisation.
    pub fn mean(self) -> &'static [f32] {
        self.moments().0
    }

    /// Per-channel standard deviation of the pixel values scaled to [0, 1].
    pub fn std(self) -> &'static [f32] {
        self.moments().1
    }

    /// Per-channel mean and standard deviation of the pixel values scaled to [0, 1].
    fn moments(self) -> (&'static [f32], &'static [f32]) {
        match self {
            DatasetKind::Cifar10 => {
                (&[125.3 / 255.0, 123.0 / 255.0, 113.9 / 255.0], &[63.0 / 255.0, 62.1 / 255.0, 66.7 / 255.0])
            }
            DatasetKind::Cifar100 => {
                (&[129.3 / 255.0, 124.1 / 255.0, 112.4 / 255.0], &[68.2 / 255.0, 65.4 / 255.0, 70.4 / 255.0])
            }
            DatasetKind::Mnist => (&[0.1307], &[0.3081]),
            DatasetKind::FashionMnist => (&[0.2860], &[0.3530]),
        }
    }

    /// Whether training flips images horizontally by default: on for CIFAR and
    /// Fashion-MNIST (clothes are roughly mirror-symmetric), off for MNIST digits.
    pub fn default_flip(self) -> bool {
        self != DatasetKind::Mnist
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = Error;

    /// Parses a name case-insensitively, ignoring `-` and `_` (`CIFAR-10`, `fashion_mnist`).
    fn from_str(s: &str) -> Result<Self> {
        let key: String =
            s.chars().filter(|c| *c != '-' && *c != '_').map(|c| c.to_ascii_lowercase()).collect();
        DatasetKind::ALL.into_iter().find(|k| k.name().replace('-', "") == key).ok_or_else(|| {
            Error::invalid(
                "dataset",
                format!("unknown data set '{s}' (expected cifar10, cifar100, mnist or fashion-mnist)"),
            )
        })
    }
}

/// Which part of a data set to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images.
    Train,
    /// The held-out test images.
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

/// A labelled image set held in memory: u8 pixels, N x H x W x C (channels last).
///
/// The fields are private so that a `Dataset` is always consistent: the pixel count matches
/// the shape and every label is below `num_classes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    num_classes: usize,
    height: usize,
    width: usize,
    channels: usize,
}

impl Dataset {
    /// Builds a data set from N x H x W x C pixels (`image_shape` is `[H, W, C]`) and N labels,
    /// checking that they agree.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u8>,
        num_classes: usize,
        image_shape: [usize; 3],
    ) -> Result<Self> {
        let [height, width, channels] = image_shape;
        let op = "Dataset::new";
        if !(1..=256).contains(&num_classes) {
            return Err(Error::invalid(op, format!("num_classes {num_classes} is not in 1..=256")));
        }
        if height == 0 || width == 0 || channels == 0 {
            return Err(Error::invalid(op, format!("empty image shape {height}x{width}x{channels}")));
        }
        let expected = height
            .checked_mul(width)
            .and_then(|x| x.checked_mul(channels))
            .and_then(|x| x.checked_mul(labels.len()))
            .ok_or_else(|| Error::invalid(op, "image buffer size overflows"))?;
        if images.len() != expected {
            return Err(Error::invalid(
                op,
                format!(
                    "{} pixels given for {} images of {height}x{width}x{channels} ({expected} expected)",
                    images.len(),
                    labels.len()
                ),
            ));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| usize::from(**l) >= num_classes) {
            return Err(Error::invalid(op, format!("label {l} of image {i} is not below {num_classes}")));
        }
        Ok(Dataset { images, labels, num_classes, height, width, channels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Image height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Channels per pixel.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Bytes in one image: H * W * C.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// All pixels, N x H x W x C.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels, one per image.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The pixels of image `i` (H x W x C), or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let n = self.image_len();
        self.images.get(i.checked_mul(n)?..)?.get(..n)
    }

    /// Number of images of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Keeps only the first `n` images (all of them when `n >= len`), e.g. for quick runs.
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.images.truncate(n * self.image_len());
        self.labels.truncate(n);
    }

    /// Removes the last `n` images and returns them as a data set of their own (a held-out
    /// validation set); `n` must leave at least one image here.
    pub fn split_off_last(&mut self, n: usize) -> Result<Dataset> {
        if n == 0 || n >= self.len() {
            return Err(Error::invalid(
                "split_off_last",
                format!("cannot hold out {n} of {} images (at least 1, and one must stay)", self.len()),
            ));
        }
        let keep = self.len() - n;
        let images = self.images.split_off(keep * self.image_len());
        let labels = self.labels.split_off(keep);
        Ok(Dataset { images, labels, ..*self })
    }

    /// Appends the images of `other`, which must have the same shape and class count.
    pub(crate) fn append(&mut self, other: Dataset) -> Result<()> {
        if (other.height, other.width, other.channels, other.num_classes)
            != (self.height, self.width, self.channels, self.num_classes)
        {
            return Err(Error::invalid("Dataset::append", "data sets of different shapes"));
        }
        self.images.extend_from_slice(&other.images);
        self.labels.extend_from_slice(&other.labels);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_off_last_holds_out_the_tail() {
        let images: Vec<u8> = (0..5 * 2).map(|v| v as u8).collect();
        let mut set = Dataset::new(images, vec![0, 1, 2, 0, 1], 3, [1, 2, 1]).unwrap();
        let val = set.split_off_last(2).unwrap();
        assert_eq!((set.len(), val.len()), (3, 2));
        assert_eq!(set.labels(), [0, 1, 2]);
        assert_eq!(val.labels(), [0, 1]);
        assert_eq!(val.images(), [6, 7, 8, 9]);
        assert_eq!((val.height(), val.width(), val.num_classes()), (1, 2, 3));
        for n in [0, 3, 4] {
            assert!(set.split_off_last(n).unwrap_err().to_string().contains("hold out"), "{n}");
        }
    }
}
