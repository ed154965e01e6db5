use super::*;

#[test]
fn margin_matches_the_integral_of_the_negative_tail() {
    for (gamma, beta) in [(1.0, 0.0), (0.5, 0.3), (2.0, -1.0), (-0.7, 0.2), (0.3, 0.8), (1.5, 4.0)] {
        let want = reference::negative_mean(gamma, beta, 200_000);
        let got = channel_margin(gamma, beta);
        assert!(
            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
            "gamma {gamma} beta {beta}: {got} vs {want}"
        );
    }
    // N(0, 1): E[x | x < 0] = -sqrt(2 / pi).
    assert!((channel_margin(1.0, 0.0) + (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-6);
}

#[test]
fn margin_cut_off_and_degenerate_channels() {
    // Phi(-beta / gamma) = Phi(-4) < 0.001: the original's -3 |gamma|.
    assert_eq!(channel_margin(0.5, 2.0), -1.5);
    assert_eq!(channel_margin(-0.5, 2.0), -1.5);
    assert_eq!(channel_margin(0.0, -0.25), -0.25);
    assert_eq!(channel_margin(0.0, 0.25), 0.0);
    assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
    assert!((normal_cdf(-3.0) - 0.001_349_898).abs() < 1e-8);
}

#[test]
fn margin_relu_clamps_per_channel_and_checks_shapes() {
    let x = Tensor::from_vec(vec![-2.0, 0.5, -0.1, -3.0], &[1, 1, 2, 2]).unwrap();
    let m = Tensor::from_vec(vec![-1.0, -0.5], &[2]).unwrap();
    assert_eq!(margin_relu(&x, &m).unwrap().to_vec().unwrap(), [-1.0, 0.5, -0.1, -0.5]);
    let err = margin_relu(&x, &Tensor::zeros(&[3])).unwrap_err().to_string();
    assert!(err.starts_with("margin_relu:") && err.contains("[1, 1, 2, 2]") && err.contains("[3]"), "{err}");
    let err = bn_margin(&Tensor::zeros(&[2]), &Tensor::zeros(&[3])).unwrap_err().to_string();
    assert!(err.starts_with("bn_margin:") && err.contains("[3]"), "{err}");
    let margins = bn_margin(&Tensor::full(&[2], 1.0), &Tensor::zeros(&[2])).unwrap().to_vec().unwrap();
    assert!((margins[0] + 0.797_884_6).abs() < 1e-6, "{margins:?}");
}
