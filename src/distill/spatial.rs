//! Maps of different resolutions made comparable, as RepDistiller's AT and FT losses do: when two
//! networks' maps differ in height and width (a ResNet's 8x8 feature against VGG-13's 4x4 or
//! MobileNetV2's 2x2 on CIFAR), the larger is average-pooled down to the smaller
//! (`adaptive_avg_pool2d`, here for whole-number ratios only).

use crate::error::{Error, Result};
use crate::ops::avg_pool2d;
use crate::tensor::Tensor;

/// `(a, b)` at one resolution: unchanged when their `[N, H, W, C]` maps have the same `H, W`;
/// otherwise the larger average-pooled by the ratio, which must be the same whole number for `H`
/// and `W`. An error names the shapes.
pub fn match_spatial(a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() != 4 || sb.len() != 4 {
        return Err(Error::shape("match_spatial", format!("maps {sa:?} and {sb:?} must be [N, H, W, C]")));
    }
    if sa[1..3] == sb[1..3] {
        return Ok((a.clone(), b.clone()));
    }
    let ratio = |big: &[usize], small: &[usize]| {
        let k = big[1] / small[1];
        (k > 1 && big[1] == k * small[1] && big[2] == k * small[2]).then_some(k)
    };
    if let Some(k) = ratio(sa, sb) {
        Ok((avg_pool2d(a, k)?, b.clone()))
    } else if let Some(k) = ratio(sb, sa) {
        Ok((a.clone(), avg_pool2d(b, k)?))
    } else {
        Err(Error::shape(
            "match_spatial",
            format!(
                "maps {sa:?} and {sb:?}: one's height and width must be the same whole multiple of the other's"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_the_larger_map_and_rejects_odd_ratios() {
        let (a, b) = (Tensor::full(&[2, 8, 8, 3], 1.0), Tensor::zeros(&[2, 2, 2, 5]));
        let (pa, pb) = match_spatial(&a, &b).unwrap();
        assert_eq!((pa.shape(), pb.shape()), (&[2, 2, 2, 3][..], &[2, 2, 2, 5][..]));
        let (pb, pa) = match_spatial(&b, &a).unwrap();
        assert_eq!((pb.shape(), pa.shape()), (&[2, 2, 2, 5][..], &[2, 2, 2, 3][..]));
        let err = match_spatial(&Tensor::zeros(&[1, 7, 7, 2]), &Tensor::zeros(&[1, 3, 3, 2])).unwrap_err();
        assert!(
            err.to_string().contains("[1, 7, 7, 2]") && err.to_string().contains("[1, 3, 3, 2]"),
            "{err}"
        );
    }
}
