//! The CPU path against the f64 reference, and the shape errors.

use super::*;
use crate::ops::depthwise::reference;

#[test]
fn cpu_path_matches_the_reference_at_mobilenet_sizes() {
    for (xs, k, s, p) in [([2, 9, 7, 6], 3, 1, 1), ([1, 8, 9, 5], 3, 2, 1), ([1, 4, 4, 3], 4, 4, 0)] {
        let g = DepthwiseGeometry::new("test", &xs, k, s, p).unwrap();
        let x: Vec<f32> =
            (0..xs.iter().product::<usize>()).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
        let w: Vec<f32> = (0..xs[3] * k * k).map(|i| ((i * 13 % 11) as f32 - 5.0) / 5.0).collect();
        let want = reference::depthwise_conv2d(
            &x.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            xs,
            &w.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            k,
            s,
            p,
        );
        let got = cpu::forward(&g, &x, &w);
        assert_eq!(got.len(), want.len());
        assert!(got.iter().zip(&want).all(|(g, w)| (*g as f64 - w).abs() < 1e-5), "{xs:?} k{k} s{s}");
    }
}

#[test]
fn rejects_bad_shapes_naming_op_and_shapes() {
    let x = Tensor::zeros(&[2, 5, 5, 3]);
    let err = depthwise_conv2d(&x, &Tensor::zeros(&[4, 1, 3, 3]), 1, 1).unwrap_err().to_string();
    assert!(
        err.starts_with("depthwise_conv2d:") && err.contains("[2, 5, 5, 3]") && err.contains("[4, 1, 3, 3]"),
        "{err}"
    );
    let err = depthwise_conv2d(&x, &Tensor::zeros(&[3, 2, 3, 3]), 1, 1).unwrap_err().to_string();
    assert!(err.starts_with("depthwise_conv2d:") && err.contains("[3, 2, 3, 3]"), "{err}");
    let err = depthwise_conv2d(&x, &Tensor::zeros(&[3, 1, 3, 3]), 0, 1).unwrap_err().to_string();
    assert!(err.starts_with("depthwise_conv2d:") && err.contains("stride"), "{err}");
    let err = avg_pool2d(&Tensor::zeros(&[1, 2, 2, 3]), 4).unwrap_err().to_string();
    assert!(err.starts_with("depthwise_conv2d:") && err.contains("[1, 2, 2, 3]"), "{err}");
}

#[test]
fn avg_pool2d_averages_each_window() {
    let x = Tensor::from_vec((0..8).map(|v| v as f32).collect(), &[1, 2, 4, 1]).unwrap();
    assert_eq!(avg_pool2d(&x, 2).unwrap().to_vec().unwrap(), vec![2.5, 4.5]);
}
