//! The split of a student feature's channels into an inheritance and an exploration half.
//!
//! A split is an ordering of the `C` channels and a count `k`: the first `k` channels of the
//! ordering inherit, the other `C - k` explore. By default `k = C/2` (rounded down); the split
//! ablation sets another share ([`ChannelSplit::with_ratio`]). The natural split is the identity
//! ordering (`[0, k)` and `[k, C)`); the random one a permutation drawn once from a seed. Splits
//! are saved with checkpoints as JSON (the metadata key [`ChannelSplit::METADATA_KEY`]) so a
//! resumed or reloaded student keeps its halves.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::ops::channels::{gather_channels, slice_channels};
use crate::tensor::Tensor;

/// How the channels are split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum SplitKind {
    /// Channels `[0, C/2)` inherit, `[C/2, C)` explore.
    Natural,
    /// A fixed random permutation, drawn once from the run's seed.
    Random,
}

/// An ordering of a feature's channels and how many of them inherit; the rest explore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSplit {
    order: Vec<usize>,
    inherit: usize,
}

/// A split as stored in checkpoint metadata: an ordering with its inheriting count, or (older
/// files) a bare ordering whose first half inherits.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Stored {
    Counted { order: Vec<usize>, inherit: usize },
    Halves(Vec<usize>),
}

impl ChannelSplit {
    /// The checkpoint metadata key holding the splits of a student (a JSON array of orderings).
    pub const METADATA_KEY: &'static str = "ie_split";

    /// The identity split of `channels` channels.
    pub fn natural(channels: usize) -> Self {
        ChannelSplit { order: (0..channels).collect(), inherit: channels / 2 }
    }

    /// A random split of `channels` channels drawn from `seed`.
    pub fn random(channels: usize, seed: u64) -> Self {
        let mut order: Vec<usize> = (0..channels).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        ChannelSplit { inherit: channels / 2, order }
    }

    /// The same ordering with `floor(C * ratio)` inheriting channels; `ratio` must be in
    /// `(0, 1)` and leave at least one channel on each side.
    pub fn with_ratio(self, ratio: f32) -> Result<Self> {
        let c = self.order.len();
        let inherit = (c as f64 * f64::from(ratio)).floor() as usize;
        if !(ratio > 0.0 && ratio < 1.0) || inherit == 0 || inherit >= c {
            return Err(Error::invalid(
                "split",
                format!("split ratio {ratio} of {c} channels leaves a side empty (it must be in (0, 1))"),
            ));
        }
        Ok(ChannelSplit { inherit, ..self })
    }

    /// The split of `kind` over `channels` channels (`seed` is used by [`SplitKind::Random`]).
    pub fn new(kind: SplitKind, channels: usize, seed: u64) -> Self {
        match kind {
            SplitKind::Natural => ChannelSplit::natural(channels),
            SplitKind::Random => ChannelSplit::random(channels, seed),
        }
    }

    /// A split from an explicit ordering, which must be a permutation of `0..len` with `len >= 2`;
    /// its first half inherits.
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
        Ok(ChannelSplit { inherit: order.len() / 2, order })
    }

    /// The channel ordering.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Channels of the whole feature.
    pub fn channels(&self) -> usize {
        self.order.len()
    }

    /// Channels of the inheritance part and of the exploration part.
    pub fn half_sizes(&self) -> (usize, usize) {
        (self.inherit, self.order.len() - self.inherit)
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
        let half = self.inherit;
        if self.is_natural() {
            return Ok((slice_channels(x, 0, half)?, slice_channels(x, half, c)?));
        }
        Ok((gather_channels(x, &self.order[..half])?, gather_channels(x, &self.order[half..])?))
    }

    /// Several splits as the JSON stored under [`ChannelSplit::METADATA_KEY`].
    pub fn to_json(splits: &[ChannelSplit]) -> String {
        let stored: Vec<Stored> =
            splits.iter().map(|s| Stored::Counted { order: s.order.clone(), inherit: s.inherit }).collect();
        serde_json::to_string(&stored).expect("orderings serialise")
    }

    /// Splits read back from [`ChannelSplit::to_json`].
    pub fn from_json(text: &str) -> Result<Vec<ChannelSplit>> {
        let stored: Vec<Stored> = serde_json::from_str(text)
            .map_err(|e| Error::invalid("split", format!("bad split metadata {text:?}: {e}")))?;
        stored
            .into_iter()
            .map(|s| match s {
                Stored::Halves(order) => ChannelSplit::from_order(order),
                Stored::Counted { order, inherit } => {
                    let c = order.len();
                    let split = ChannelSplit::from_order(order)?;
                    if inherit == 0 || inherit >= c {
                        return Err(Error::invalid("split", format!("{inherit} of {c} channels inherit")));
                    }
                    Ok(ChannelSplit { inherit, ..split })
                }
            })
            .collect()
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
    fn ratios_set_the_inheriting_share_and_survive_the_checkpoint() {
        let x = Tensor::from_vec((0..8).map(|v| v as f32).collect(), &[1, 8]).unwrap();
        let split = ChannelSplit::natural(8).with_ratio(0.25).unwrap();
        assert_eq!(split.half_sizes(), (2, 6));
        let (a, b) = split.halves(&x).unwrap();
        assert_eq!((a.to_vec().unwrap(), b.shape().to_vec()), (vec![0.0, 1.0], vec![1, 6]));
        let random = ChannelSplit::random(8, 3).with_ratio(0.75).unwrap();
        assert_eq!(random.half_sizes(), (6, 2));
        let back = ChannelSplit::from_json(&ChannelSplit::to_json(&[split.clone(), random.clone()])).unwrap();
        assert_eq!(back, [split, random]);
        // Files written before the ratio existed hold bare orderings: their first half inherits.
        assert_eq!(ChannelSplit::from_json("[[1, 0, 2]]").unwrap()[0].half_sizes(), (1, 2));
        for bad in [0.0, 1.0, 0.1, -0.5, f32::NAN] {
            let err = ChannelSplit::natural(8).with_ratio(bad).unwrap_err().to_string();
            assert!(err.contains("split ratio"), "{bad}: {err}");
        }
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
        for bad in ["[[0, 0]]", "[[0, 2]]", "[[0]]", "nonsense", r#"[{"order": [0, 1], "inherit": 2}]"#] {
            assert!(ChannelSplit::from_json(bad).unwrap_err().to_string().starts_with("split:"), "{bad}");
        }
        let err = ChannelSplit::natural(4).halves(&Tensor::zeros(&[2, 3, 3, 5])).unwrap_err();
        assert!(err.to_string().contains("[2, 3, 3, 5]"), "{err}");
    }
}
