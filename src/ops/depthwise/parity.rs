//! Parity of the depthwise-convolution kernels with [`cpu`].

use super::launch::DepthwiseProduct::{BackwardData, BackwardWeight, Forward};
use super::launch::depthwise;
use super::{DepthwiseGeometry, cpu};
use crate::cuda::exec::Exec;
use crate::error::Result;
use crate::ops::check::parity::{Ctx, Tol};

/// `[N, H, W, C]`, kernel, stride, padding: sizes 1; MobileNetV2's 3x3 at stride 1 and 2 with odd
/// channels and H != W; a channel block + 1 (33); 2x2 average-pooling windows; many pixels per
/// weight (batch 4 of 16x16).
const CASES: [([usize; 4], usize, usize, usize); 6] = [
    ([1, 1, 1, 1], 1, 1, 0),
    ([2, 7, 5, 3], 3, 1, 1),
    ([3, 9, 6, 5], 3, 2, 1),
    ([1, 8, 8, 33], 3, 2, 1),
    ([2, 6, 4, 7], 2, 2, 0),
    ([4, 16, 16, 12], 3, 1, 1),
];

/// Forward, backward data and backward weight on every case.
pub fn run<E: Exec>(cx: &mut Ctx<'_, E>) -> Result<()> {
    for (x_shape @ [n, h, w, c], k, stride, pad) in CASES {
        let g = DepthwiseGeometry::new("parity", &x_shape, k, stride, pad)?;
        let case = format!("x[{n},{h},{w},{c}] k{k} s{stride} p{pad}");
        let (x, wt, dy) = (cx.normal(n * h * w * c), cx.normal(c * k * k), cx.normal(g.out_len()));
        let (xb, wb, dyb) = (cx.up(&x)?, cx.up(&wt)?, cx.up(&dy)?);
        let products = [
            (Forward, "depthwise_forward", [&xb, &wb], cpu::forward(&g, &x, &wt), k * k),
            (BackwardData, "depthwise_backward_data", [&dyb, &wb], cpu::backward_data(&g, &dy, &wt), k * k),
            (
                BackwardWeight,
                "depthwise_backward_weight",
                [&xb, &dyb],
                cpu::backward_weight(&g, &x, &dy),
                n * g.h_out * g.w_out,
            ),
        ];
        for (product, kernel, operands, want, terms) in products {
            let got = depthwise(cx.e, &g, product, operands)?;
            cx.compare(kernel, &case, &got, &want, Tol::dot(terms))?;
        }
    }
    Ok(())
}
