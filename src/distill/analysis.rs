//! The analyses of the paper on trained networks: linear CKA between two networks' distillation
//! features, and the share of active neurons; `iekd cka` reports both.
//!
//! Active neurons, the definition used here (the sources give none): a neuron is one element
//! `(h, w, c)` of the post-ReLU distillation feature, and it is active on an image when its value
//! is above zero. The reported figure, [`active_fraction`], is the share of active neurons over
//! all images and elements. Zero is exactly what ReLU outputs for an inactive unit, so the
//! figure needs no threshold and does not depend on the feature's scale.

use std::path::{Path, PathBuf};

use super::cli::DataArgs;
use super::split::ChannelSplit;
use super::teacher::load_network;
use crate::checkpoint::Checkpoint;
use crate::cka::linear_cka_tensors;
use crate::data::{Loader, LoaderConfig, Split};
use crate::error::{Error, Result};
use crate::nn::{Arch, Network};
use crate::tensor::Tensor;
use crate::tensor::autograd;

/// The distillation feature of `net` (evaluation mode, not recorded) on every image of `loader`,
/// in order, as one `[n, H, W, C]` tensor.
pub fn collect_features(net: &mut dyn Network, loader: &Loader) -> Result<Tensor> {
    let _guard = autograd::no_grad();
    let (mut data, mut shape) = (Vec::new(), Vec::new());
    let mut n = 0;
    let device = net.device();
    for batch in loader.epoch(0) {
        let x = Tensor::from_vec(batch.images, &[batch.n, batch.h, batch.w, batch.c])?.to_device(&device)?;
        let [_, _, feature] = net.forward(&x, false)?.groups;
        shape = feature.shape().to_vec();
        data.extend_from_slice(&feature.to_vec()?);
        n += batch.n;
    }
    if n == 0 {
        return Err(Error::invalid("collect_features", "no images"));
    }
    shape[0] = n;
    Tensor::from_vec(data, &shape)
}

/// Linear CKA between two networks' features on the same images (`[n, ...]` each, flattened to
/// `[n, rest]`), in `[0, 1]`.
pub fn feature_cka(a: &Tensor, b: &Tensor) -> Result<f64> {
    linear_cka_tensors(a, b)
}

/// The share of active neurons of a post-ReLU feature `[N, ...]`: elements above zero over all
/// elements (see the module documentation).
pub fn active_fraction(feature: &Tensor) -> Result<f64> {
    if feature.rank() < 2 || feature.numel() == 0 {
        return Err(Error::shape(
            "active_fraction",
            format!("feature {:?} is not a non-empty [N, ...]", feature.shape()),
        ));
    }
    let active = feature.host()?.iter().filter(|&&v| v > 0.0).count();
    Ok(active as f64 / feature.numel() as f64)
}

/// `iekd cka`: linear CKA between two networks' distillation features, and their active neurons.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct CkaArgs {
    /// The first model file.
    #[cfg_attr(feature = "cli", arg(long))]
    pub a: PathBuf,
    /// Its architecture.
    #[cfg_attr(feature = "cli", arg(long))]
    pub a_arch: Arch,
    /// The second model file.
    #[cfg_attr(feature = "cli", arg(long))]
    pub b: PathBuf,
    /// Its architecture.
    #[cfg_attr(feature = "cli", arg(long))]
    pub b_arch: Arch,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub data: DataArgs,
    /// Also compare the teacher (a) with each part of the student's (b) split feature: the
    /// inheritance and the exploration channels, as saved in b's model file (the natural halves
    /// when it holds no split).
    #[cfg_attr(feature = "cli", arg(long))]
    pub halves: bool,
}

/// The test images `iekd cka` uses when `--test-subset` is not given (the Gram matrices grow
/// with the square of the count).
pub const CKA_DEFAULT_IMAGES: usize = 1000;

/// What `iekd cka` measures.
#[derive(Clone, Copy, Debug)]
pub struct CkaReport {
    /// Linear CKA of the two distillation features.
    pub cka: f64,
    /// Share of active neurons of the first network.
    pub active_a: f64,
    /// Share of active neurons of the second network.
    pub active_b: f64,
    /// With `--halves`: CKA of the first network's feature with the second's inheritance and
    /// exploration channels.
    pub halves: Option<(f64, f64)>,
    /// Test images used.
    pub images: usize,
}

/// Linear CKA between two model files' features on the test set, and their active neurons.
pub fn run_cka(args: &CkaArgs) -> Result<CkaReport> {
    let mut data = args.data.clone();
    data.test_subset = Some(data.test_subset.unwrap_or(CKA_DEFAULT_IMAGES));
    // The networks first, so a wrong model file is reported before the data is read.
    let (channels, classes) = (data.dataset.channels(), data.dataset.num_classes());
    let mut a = load_network(args.a_arch, &args.a, channels, classes)?;
    let mut b = load_network(args.b_arch, &args.b, channels, classes)?;
    let loader = Loader::new(data.load(Split::Test)?, LoaderConfig::eval(data.dataset, 250))?;
    let (fa, fb) = (collect_features(a.as_mut(), &loader)?, collect_features(b.as_mut(), &loader)?);
    let halves = if args.halves {
        let (inh, exp) = saved_split(&args.b, b.feature_channels())?.halves(&fb)?;
        Some((feature_cka(&fa, &inh)?, feature_cka(&fa, &exp)?))
    } else {
        None
    };
    Ok(CkaReport {
        halves,
        cka: feature_cka(&fa, &fb)?,
        active_a: active_fraction(&fa)?,
        active_b: active_fraction(&fb)?,
        images: loader.dataset().len(),
    })
}

/// The split of a student's distillation feature of `channels` channels saved in its model file
/// (the last saved split of that width: IE-AT saves one per group), or the natural halves.
pub fn saved_split(model: &Path, channels: usize) -> Result<ChannelSplit> {
    let ckpt = Checkpoint::load(model)?;
    let Some(text) = ckpt.metadata.get(ChannelSplit::METADATA_KEY) else {
        return Ok(ChannelSplit::natural(channels));
    };
    ChannelSplit::from_json(text)?.into_iter().rev().find(|s| s.channels() == channels).ok_or_else(|| {
        Error::invalid("cka", format!("{} holds no split of its {channels}-channel feature", model.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_fraction_counts_positive_elements() {
        // Two images of 1x2 pixels, 3 channels: 5 of the 12 neurons are above zero (a ReLU output
        // is never negative; the -0.0 and the tiny negative value stand for "not active").
        let data = vec![0.0, 2.0, 1e-6, -0.0, 0.0, 0.0, 3.0, 0.0, -1e-9, 0.5, 0.1, 0.0];
        let f = Tensor::from_vec(data, &[2, 1, 2, 3]).unwrap();
        assert!((active_fraction(&f).unwrap() - 5.0 / 12.0).abs() < 1e-12);
        assert_eq!(active_fraction(&Tensor::zeros(&[2, 3])).unwrap(), 0.0);
        assert_eq!(active_fraction(&Tensor::full(&[1, 4], 0.25)).unwrap(), 1.0);
        assert!(active_fraction(&Tensor::zeros(&[4])).unwrap_err().to_string().contains("active_fraction"));
    }

    #[test]
    fn cka_of_a_feature_with_itself_is_one() {
        use rand::SeedableRng;
        let f = Tensor::randn(&[12, 2, 2, 5], 1.0, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        assert!((feature_cka(&f, &f).unwrap() - 1.0).abs() < 1e-9);
    }
}
