//! The split of a student feature's channels into an inheritance and an exploration half.
//!
//! A split is an ordering of the `C` channels: the first `C/2` (rounded down) inherit, the other
//! `C - C/2` explore. The natural split is the identity (`[0, C/2)` and `[C/2, C)`); the random
//! one a permutation drawn once from a seed. Splits are saved with checkpoints as JSON (the
//! metadata key [`ChannelSplit::METADATA_KEY`]) so a resumed or reloaded student keeps its halves.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::ops::channels::{gather_channels, slice_channels};
use crate::tensor::Tensor;

/// How the channels are split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitKind {
    /// Channels `[0, C/2)` inherit, `[C/2, C)` explore.
    Natural,
    /// A fixed random permutation, drawn once from the run's seed.
    Random,
}

/// An ordering of a feature's channels: the first half inherits, the rest explores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSplit {
    order: Vec<usize>,
}

impl ChannelSplit {
    /// The checkpoint metadata key holding the splits of a student (a JSON array of orderings).
    pub const METADATA_KEY: &'static str = "ie_split";

    /// The identity split of `channels` channels.
    pub fn natural(channels: usize) -> Self {
        ChannelSplit { order: (0..channels).collect() }
    }

    /// A random split of `channels` channels drawn from `seed`.
    pub fn random(channels: usize, seed: u64) -> Self {
        let mut order: Vec<usize> = (0..channels).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        ChannelSplit { order }
    }

    /// The split of `kind` over `channels` channels (`seed` is used by [`SplitKind::Random`]).
    pub fn new(kind: SplitKind, channels: usize, seed: u64) -> Self {
        match kind {
            SplitKind::Natural => ChannelSplit::natural(channels),
            SplitKind::Random => ChannelSplit::random(channels, seed),
        }
    }

    /// A split from an explicit ordering, which must be a permutation of `0..len` with `len >= 2`.
    pub fn from_order(order: Vec<usize>) -> Result<Self> {
        let mut seen = vec![false; order.len()];
        for &c in &order {
            if c >= order.len() || std::mem::replace(&mut seen[c], true) {
                return Err(Error::invalid(
                    "split",
                    format!("{order:?} is not a permutation of 0..{}", order.len()),
                ));
            }
        }
        if order.len() < 2 {
            return Err(Error::invalid("split", format!("{} channels cannot be split in two", order.len())));
        }
        Ok(ChannelSplit { order })
    }

    /// The channel ordering.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Channels of the whole feature.
    pub fn channels(&self) -> usize {
        self.order.len()
    }

    /// Channels of the inheritance half and of the exploration half.
    pub fn half_sizes(&self) -> (usize, usize) {
        let c = self.order.len();
        (c / 2, c - c / 2)
    }

    /// Whether this is the identity ordering (the halves are then plain slices).
    pub fn is_natural(&self) -> bool {
        self.order.iter().enumerate().all(|(i, &c)| i == c)
    }

    /// The inheritance and exploration halves of `x: [N, ..., C]`; gradients flow back into `x`.
    pub fn halves(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let c = self.order.len();
        if x.rank() < 2 || x.shape()[x.rank() - 1] != c {
            return Err(Error::shape(
                "split",
                format!("feature {:?} does not have the split's {c} channels", x.shape()),
            ));
        }
        let half = c / 2;
        if self.is_natural() {
            return Ok((slice_channels(x, 0, half)?, slice_channels(x, half, c)?));
        }
        Ok((gather_channels(x, &self.order[..half])?, gather_channels(x, &self.order[half..])?))
    }

    /// Several splits as the JSON stored under [`ChannelSplit::METADATA_KEY`].
    pub fn to_json(splits: &[ChannelSplit]) -> String {
        let orders: Vec<&[usize]> = splits.iter().map(|s| s.order.as_slice()).collect();
        serde_json::to_string(&orders).expect("orderings serialise")
    }

    /// Splits read back from [`ChannelSplit::to_json`].
    pub fn from_json(text: &str) -> Result<Vec<ChannelSplit>> {
        let orders: Vec<Vec<usize>> = serde_json::from_str(text)
            .map_err(|e| Error::invalid("split", format!("bad split metadata {text:?}: {e}")))?;
        orders.into_iter().map(ChannelSplit::from_order).collect()
    }

    /// Stores `splits` in `ckpt`'s metadata.
    pub fn save(splits: &[ChannelSplit], ckpt: &mut Checkpoint) {
        ckpt.metadata.insert(Self::METADATA_KEY.into(), Self::to_json(splits));
    }

    /// The splits stored in `ckpt`, checked against the channel counts `expected`.
    pub fn load(ckpt: &Checkpoint, expected: &[usize]) -> Result<Vec<ChannelSplit>> {
        let text = ckpt
            .metadata
            .get(Self::METADATA_KEY)
            .ok_or_else(|| Error::invalid("split", "the checkpoint holds no channel split"))?;
        let splits = Self::from_json(text)?;
        let got: Vec<usize> = splits.iter().map(ChannelSplit::channels).collect();
        if got != expected {
            return Err(Error::invalid(
                "split",
                format!("saved splits of {got:?} channels, the student has {expected:?}"),
            ));
        }
        Ok(splits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_halves_are_slices_and_random_halves_follow_the_order() {
        let x = Tensor::from_vec((0..2 * 5).map(|v| v as f32).collect(), &[2, 5]).unwrap();
        let (a, b) = ChannelSplit::natural(5).halves(&x).unwrap();
        assert_eq!(a.to_vec().unwrap(), [0.0, 1.0, 5.0, 6.0]);
        assert_eq!(b.to_vec().unwrap(), [2.0, 3.0, 4.0, 7.0, 8.0, 9.0]);
        let split = ChannelSplit::from_order(vec![4, 1, 0, 3, 2]).unwrap();
        assert_eq!(split.half_sizes(), (2, 3));
        let (a, b) = split.halves(&x).unwrap();
        assert_eq!(a.to_vec().unwrap(), [4.0, 1.0, 9.0, 6.0]);
        assert_eq!(b.to_vec().unwrap(), [0.0, 3.0, 2.0, 5.0, 8.0, 7.0]);
    }

    #[test]
    fn random_splits_are_seeded_permutations() {
        let a = ChannelSplit::random(64, 7);
        assert_eq!(a, ChannelSplit::random(64, 7));
        assert_ne!(a, ChannelSplit::random(64, 8));
        assert!(!a.is_natural());
        let mut sorted = a.order().to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..64).collect::<Vec<_>>());
    }

    #[test]
    fn json_round_trip_and_errors() {
        let splits = vec![ChannelSplit::natural(4), ChannelSplit::random(6, 1)];
        assert_eq!(ChannelSplit::from_json(&ChannelSplit::to_json(&splits)).unwrap(), splits);
        let mut ckpt = Checkpoint::new();
        ChannelSplit::save(&splits, &mut ckpt);
        assert_eq!(ChannelSplit::load(&ckpt, &[4, 6]).unwrap(), splits);
        assert!(ChannelSplit::load(&ckpt, &[4, 8]).unwrap_err().to_string().contains("[4, 6]"));
        assert!(ChannelSplit::load(&Checkpoint::new(), &[4]).is_err());
        for bad in ["[[0, 0]]", "[[0, 2]]", "[[0]]", "nonsense"] {
            assert!(ChannelSplit::from_json(bad).unwrap_err().to_string().starts_with("split:"), "{bad}");
        }
        let err = ChannelSplit::natural(4).halves(&Tensor::zeros(&[2, 3, 3, 5])).unwrap_err();
        assert!(err.to_string().contains("[2, 3, 3, 5]"), "{err}");
    }
}
