//! Every checked configuration: each op folder's cases, then the small network's, then the cases
//! added later (appended, so that every earlier case keeps its seed).

mod network;

use super::Case;
use crate::ops;

/// Every case, in a fixed order.
pub fn all() -> Vec<Case> {
    [
        ops::conv2d::gradcheck::cases(),
        ops::batchnorm::gradcheck::cases(),
        ops::activation::gradcheck::cases(),
        ops::arith::gradcheck::cases(),
        ops::channels::gradcheck::cases(),
        ops::pool::gradcheck::cases(),
        ops::linear::gradcheck::cases(),
        ops::shape::gradcheck::cases(),
        ops::loss::gradcheck::cases(),
        network::cases(),
        ops::maxpool::gradcheck::cases(),
        ops::depthwise::gradcheck::cases(),
        ops::activation::gradcheck::relu6_cases(),
        ops::margin::gradcheck::cases(),
        ops::loss::gradcheck::partial_l2_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
