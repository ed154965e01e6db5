//! Gradient-check cases of `depthwise_conv2d` and `avg_pool2d`.

use super::reference;
use crate::ops;
use crate::ops::check::gradcheck::{Case, Input};

fn case(x: [usize; 4], k: usize, stride: usize, pad: usize) -> Case {
    let w = [x[3], 1, k, k];
    Case::new(
        "depthwise_conv2d",
        format!("x{x:?} w{w:?} s{stride} p{pad}"),
        vec![Input::normal("x", &x), Input::normal("weight", &w)],
        Box::new(move |t| ops::depthwise_conv2d(&t[0], &t[1], stride, pad)),
        Box::new(move |v| reference::depthwise_conv2d(&v[0], x, &v[1], k, stride, pad)),
    )
}

fn avg_pool_case(x: [usize; 4], k: usize) -> Case {
    let c = x[3];
    let filter = vec![1.0 / (k * k) as f64; c * k * k];
    Case::unary(
        "avg_pool2d",
        format!("k{k}"),
        &x,
        Box::new(move |t| ops::depthwise::avg_pool2d(&t[0], k)),
        Box::new(move |v| reference::depthwise_conv2d(&v[0], x, &filter, k, k, 0)),
    )
}

/// 3x3 with padding 1 at stride 1 and 2 (MobileNetV2's), odd channels, odd H != W, batch 1 and 3;
/// a 1x1 and a 2x2 filter; average pooling by 2 and 4.
pub fn cases() -> Vec<Case> {
    vec![
        case([3, 5, 7, 3], 3, 1, 1),
        case([1, 7, 6, 5], 3, 2, 1),
        case([2, 4, 5, 1], 3, 2, 1),
        case([1, 3, 3, 4], 1, 1, 0),
        case([2, 5, 4, 3], 2, 1, 0),
        avg_pool_case([2, 4, 6, 3], 2),
        avg_pool_case([1, 8, 8, 5], 4),
    ]
}
