//! Training augmentation (reflect-pad, random crop, random horizontal flip) and per-channel
//! normalisation of u8 images stored H x W x C (channels last).

use rand::Rng;

use super::dataset::DatasetKind;
use crate::{Error, Result};

/// The standard augmentation of the CIFAR protocol: reflect-pad by `pad` pixels on every side,
/// take a random crop of the original size, and mirror it left-right with probability 1/2
/// when `flip` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Reflection padding on each side, in pixels (4 in the CIFAR protocol).
    pub pad: usize,
    /// Whether to flip horizontally at random.
    pub flip: bool,
}

impl Augment {
    /// Pad 4 with the data set's default flip: on for CIFAR and Fashion-MNIST, off for MNIST
    /// (see [`DatasetKind::default_flip`]).
    pub fn standard(kind: DatasetKind) -> Self {
        Augment { pad: 4, flip: kind.default_flip() }
    }

    /// Draws the random choices for one image.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Transform {
        let span = 2 * self.pad;
        Transform {
            pad: self.pad,
            dy: rng.random_range(0..=span),
            dx: rng.random_range(0..=span),
            flip: self.flip && rng.random_bool(0.5),
        }
    }
}

/// The choices for one image: the crop's top-left corner `(dy, dx)` in the image padded by
/// `pad` on each side (each in `0..=2 * pad`), and whether the crop is mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transform {
    /// Padding the crop offsets refer to.
    pub pad: usize,
    /// Crop row offset in the padded image.
    pub dy: usize,
    /// Crop column offset in the padded image.
    pub dx: usize,
    /// Whether the crop is mirrored left-right.
    pub flip: bool,
}

impl Transform {
    /// No change: what evaluation uses.
    pub const IDENTITY: Transform = Transform { pad: 0, dy: 0, dx: 0, flip: false };

    /// The source row that output row `y` of an image of height `h` copies; always below `h`.
    pub fn source_row(&self, y: usize, h: usize) -> usize {
        reflect(y as isize + self.dy as isize - self.pad as isize, h)
    }

    /// The source column that output column `x` of an image of width `w` copies; always below `w`.
    pub fn source_col(&self, x: usize, w: usize) -> usize {
        let x = if self.flip { w - 1 - x } else { x };
        reflect(x as isize + self.dx as isize - self.pad as isize, w)
    }

    /// The source pixel `(row, col)` that output pixel `(y, x)` of an `h` x `w` image copies.
    pub fn source(&self, y: usize, x: usize, h: usize, w: usize) -> (usize, usize) {
        (self.source_row(y, h), self.source_col(x, w))
    }
}

/// Index `i` of a line of `n` pixels extended by mirror reflection without repeating the edge
/// (`-1 -> 1`, `n -> n - 2`), like NumPy's `reflect` padding; any `i` maps into `0..n`.
pub fn reflect(i: isize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Maps u8 pixels of each channel to `(v / 255 - mean) / std` through a lookup table.
#[derive(Debug, Clone)]
pub struct Normalizer {
    table: Vec<[f32; 256]>,
}

impl Normalizer {
    /// A normaliser with one mean and one standard deviation per channel (on the [0, 1] scale).
    pub fn new(mean: &[f32], std: &[f32]) -> Result<Self> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(Error::invalid(
                "Normalizer::new",
                format!("{} means and {} standard deviations given", mean.len(), std.len()),
            ));
        }
        if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::invalid("Normalizer::new", format!("standard deviation {s} is not positive")));
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            return Err(Error::invalid("Normalizer::new", format!("mean {m} is not finite")));
        }
        let table = mean
            .iter()
            .zip(std)
            .map(|(&m, &s)| std::array::from_fn(|v| (v as f32 / 255.0 - m) / s))
            .collect();
        Ok(Normalizer { table })
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.table.len()
    }

    /// The normalised value of pixel value `v` in channel `c`.
    pub fn value(&self, c: usize, v: u8) -> f32 {
        self.table[c][usize::from(v)]
    }

    /// Writes image `src` (`h` x `w` x channels, u8) transformed by `t` and normalised into
    /// `out` (same shape, f32).
    pub fn apply(&self, src: &[u8], h: usize, w: usize, t: &Transform, out: &mut [f32]) {
        let c = self.channels();
        debug_assert_eq!(src.len(), h * w * c);
        debug_assert_eq!(out.len(), h * w * c);
        let cols: Vec<usize> = (0..w).map(|x| t.source_col(x, w) * c).collect();
        for (y, row) in out.chunks_exact_mut(w * c).enumerate() {
            let src_row = &src[t.source_row(y, h) * w * c..][..w * c];
            for (px, &sx) in row.chunks_exact_mut(c).zip(&cols) {
                for ((o, &v), table) in px.iter_mut().zip(&src_row[sx..sx + c]).zip(&self.table) {
                    *o = table[usize::from(v)];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn reflect_matches_numpy() {
        let got: Vec<usize> = (-4..9).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, [4, 3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0]);
        assert_eq!(reflect(-7, 1), 0);
        assert_eq!(reflect(100, 2), 0);
    }

    #[test]
    fn every_crop_stays_in_bounds_and_keeps_the_centre() {
        let (h, w) = (32, 32);
        for dy in 0..=8 {
            for dx in 0..=8 {
                for flip in [false, true] {
                    let t = Transform { pad: 4, dy, dx, flip };
                    for y in 0..h {
                        for x in 0..w {
                            let (sy, sx) = t.source(y, x, h, w);
                            assert!(sy < h && sx < w);
                        }
                    }
                }
            }
        }
        let centred = Transform { pad: 4, dy: 4, dx: 4, flip: false };
        assert_eq!(centred.source(7, 9, h, w), (7, 9));
        assert_eq!(Transform { flip: true, ..centred }.source(7, 9, h, w), (7, 22));
        assert_eq!(Transform { pad: 4, dy: 0, dx: 8, flip: false }.source(0, 31, h, w), (4, 27));
    }

    #[test]
    fn apply_normalises_and_mirrors() {
        let norm = Normalizer::new(&[0.5, 0.0], &[0.5, 1.0]).unwrap();
        // 1 x 2 image, 2 channels
        let src = [0u8, 255, 255, 0];
        let mut out = [0f32; 4];
        norm.apply(&src, 1, 2, &Transform::IDENTITY, &mut out);
        assert_eq!(out, [-1.0, 1.0, 1.0, 0.0]);
        norm.apply(&src, 1, 2, &Transform { flip: true, ..Transform::IDENTITY }, &mut out);
        assert_eq!(out, [1.0, 0.0, -1.0, 1.0]);
        assert!(Normalizer::new(&[0.1], &[0.0]).is_err());
        assert!(Normalizer::new(&[0.1, 0.2], &[0.3]).is_err());
    }

    #[test]
    fn sampling_respects_flags() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let a = Augment { pad: 4, flip: false };
        let ts: Vec<Transform> = (0..500).map(|_| a.sample(&mut rng)).collect();
        assert!(ts.iter().all(|t| !t.flip && t.dy <= 8 && t.dx <= 8));
        assert!(ts.iter().any(|t| t.dy == 0) && ts.iter().any(|t| t.dx == 8));
        let flips = (0..500).filter(|_| Augment { pad: 4, flip: true }.sample(&mut rng).flip).count();
        assert!((150..350).contains(&flips), "{flips}");
    }
}
