//! Seeded, reproducible batch iteration over a [`Dataset`], prepared on a background thread.
//!
//! Each epoch's randomness (the shuffle and every image's crop and flip) is drawn up front from
//! a ChaCha8 generator seeded with `(seed, epoch)`, before any batch is built, so the same seed
//! gives the same batches whatever the thread timing.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::augment::{Augment, Normalizer, Transform};
use super::dataset::{Dataset, DatasetKind};
use crate::{Error, Result};

/// Batches prepared ahead of the consumer.
const PREFETCH: usize = 2;

/// How a [`Loader`] walks its data set.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Whether to visit the images in a new random order each epoch.
    pub shuffle: bool,
    /// Training augmentation, or `None` for none.
    pub augment: Option<Augment>,
    /// Whether to drop a final batch smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of all randomness; with the epoch number it fixes every batch.
    pub seed: u64,
    /// Per-channel mean on the [0, 1] scale, subtracted after scaling.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation on the [0, 1] scale, divided by.
    pub std: Vec<f32>,
}

impl LoaderConfig {
    /// Training: shuffled each epoch, [`Augment::standard`] (pad 4, random crop, flip on for
    /// CIFAR and Fashion-MNIST, off for MNIST), the data set's normalisation, and the final
    /// partial batch kept (`drop_last = false`, as in the reference protocol).
    pub fn train(kind: DatasetKind, batch_size: usize, seed: u64) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: true,
            augment: Some(Augment::standard(kind)),
            drop_last: false,
            seed,
            mean: kind.mean().to_vec(),
            std: kind.std().to_vec(),
        }
    }

    /// Evaluation: in order, no augmentation, the data set's normalisation, every image kept.
    pub fn eval(kind: DatasetKind, batch_size: usize) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: false,
            augment: None,
            drop_last: false,
            seed: 0,
            mean: kind.mean().to_vec(),
            std: kind.std().to_vec(),
        }
    }
}

/// A batch of normalised images and their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `n * h * w * c` values, N x H x W x C (channels last).
    pub images: Vec<f32>,
    /// Class of each image.
    pub labels: Vec<usize>,
    /// Position of each image in the data set.
    pub indices: Vec<usize>,
    /// Images in the batch.
    pub n: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

/// Everything needed to build one epoch's batches, shareable with a worker thread.
struct Epoch {
    data: Arc<Dataset>,
    norm: Arc<Normalizer>,
    batch_size: usize,
    order: Vec<usize>,
    transforms: Vec<Transform>,
}

impl Epoch {
    /// Builds batch `b` of the epoch.
    fn batch(&self, b: usize) -> Batch {
        let d = &self.data;
        let start = b * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        let indices = self.order[start..end].to_vec();
        let (h, w, c, len) = (d.height(), d.width(), d.channels(), d.image_len());
        let mut images = vec![0f32; indices.len() * len];
        for ((&i, t), out) in
            indices.iter().zip(&self.transforms[start..end]).zip(images.chunks_exact_mut(len))
        {
            self.norm.apply(&d.images()[i * len..(i + 1) * len], h, w, t, out);
        }
        let labels = indices.iter().map(|&i| usize::from(d.labels()[i])).collect();
        Batch { images, labels, indices, n: end - start, h, w, c }
    }
}

/// Turns a [`Dataset`] into batches, one epoch at a time.
#[derive(Debug, Clone)]
pub struct Loader {
    data: Arc<Dataset>,
    config: LoaderConfig,
    norm: Arc<Normalizer>,
}

impl Loader {
    /// A loader over `data`; checks the batch size and that mean and std match the channels.
    pub fn new(data: impl Into<Arc<Dataset>>, config: LoaderConfig) -> Result<Self> {
        let data = data.into();
        if config.batch_size == 0 {
            return Err(Error::invalid("Loader::new", "batch size must be at least 1"));
        }
        if config.mean.len() != data.channels() {
            return Err(Error::invalid(
                "Loader::new",
                format!("{} means given for {} channels", config.mean.len(), data.channels()),
            ));
        }
        let norm = Arc::new(Normalizer::new(&config.mean, &config.std)?);
        Ok(Loader { data, config, norm })
    }

    /// The data set walked.
    pub fn dataset(&self) -> &Dataset {
        &self.data
    }

    /// The configuration in use.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.data.len(), self.config.batch_size);
        if self.config.drop_last { n / b } else { n.div_ceil(b) }
    }

    /// The batches of epoch `epoch`, built ahead on a background thread.
    pub fn epoch(&self, epoch: u64) -> Batches {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        rng.set_stream(epoch);
        let mut order: Vec<usize> = (0..self.data.len()).collect();
        if self.config.shuffle {
            order.shuffle(&mut rng);
        }
        let transforms = match &self.config.augment {
            Some(a) => order.iter().map(|_| a.sample(&mut rng)).collect(),
            None => vec![Transform::IDENTITY; order.len()],
        };
        let plan = Arc::new(Epoch {
            data: Arc::clone(&self.data),
            norm: Arc::clone(&self.norm),
            batch_size: self.config.batch_size,
            order,
            transforms,
        });
        let total = self.num_batches();
        let (tx, rx) = sync_channel(PREFETCH);
        let worker = Arc::clone(&plan);
        let spawned = std::thread::Builder::new().name("iekd-loader".into()).spawn(move || {
            for b in 0..total {
                if tx.send(worker.batch(b)).is_err() {
                    break;
                }
            }
        });
        // Without a thread (the system refused one) the batches are built on demand instead.
        let thread = spawned.ok().map(|handle| (rx, handle));
        Batches { plan, thread, next: 0, total }
    }
}

/// Iterator over one epoch's batches (see [`Loader::epoch`]).
pub struct Batches {
    plan: Arc<Epoch>,
    thread: Option<(Receiver<Batch>, JoinHandle<()>)>,
    next: usize,
    total: usize,
}

impl Iterator for Batches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.total {
            return None;
        }
        let batch = match &self.thread {
            Some((rx, _)) => match rx.recv() {
                Ok(batch) => batch,
                Err(_) => {
                    // The worker stopped early, which only a panic can cause: pass it on.
                    if let Some((_, handle)) = self.thread.take()
                        && let Err(panic) = handle.join()
                    {
                        std::panic::resume_unwind(panic);
                    }
                    self.plan.batch(self.next)
                }
            },
            None => self.plan.batch(self.next),
        };
        self.next += 1;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches {}

impl Drop for Batches {
    fn drop(&mut self) {
        if let Some((rx, handle)) = self.thread.take() {
            drop(rx);
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(n: usize) -> Dataset {
        let images = (0..n * 4 * 4 * 3).map(|i| (i % 256) as u8).collect();
        let labels = (0..n).map(|i| (i % 10) as u8).collect();
        Dataset::new(images, labels, 10, [4, 4, 3]).unwrap()
    }

    #[test]
    fn eval_is_in_order_and_keeps_the_tail() {
        let loader = Loader::new(tiny(10), LoaderConfig::eval(DatasetKind::Cifar10, 4)).unwrap();
        assert_eq!(loader.num_batches(), 3);
        let batches: Vec<Batch> = loader.epoch(0).collect();
        assert_eq!(batches.iter().map(|b| b.n).collect::<Vec<_>>(), [4, 4, 2]);
        let idx: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
        assert_eq!(idx, (0..10).collect::<Vec<_>>());
        assert_eq!(batches[2].labels, [8, 9]);
        let norm = Normalizer::new(DatasetKind::Cifar10.mean(), DatasetKind::Cifar10.std()).unwrap();
        assert_eq!(batches[0].images[5], norm.value(2, 5));
    }

    #[test]
    fn drop_last_and_early_drop() {
        let mut cfg = LoaderConfig::train(DatasetKind::Cifar10, 4, 3);
        cfg.drop_last = true;
        let loader = Loader::new(tiny(10), cfg).unwrap();
        assert_eq!(loader.epoch(0).len(), 2);
        let mut it = loader.epoch(1);
        assert_eq!(it.next().unwrap().n, 4);
        drop(it); // stops the worker without draining
    }

    #[test]
    fn bad_config_is_an_error() {
        let cfg = LoaderConfig::eval(DatasetKind::Mnist, 4);
        assert!(Loader::new(tiny(2), cfg).is_err());
        let cfg = LoaderConfig::eval(DatasetKind::Cifar10, 0);
        assert!(Loader::new(tiny(2), cfg).is_err());
    }
}
