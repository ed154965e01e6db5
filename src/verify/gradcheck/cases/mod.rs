//! The checked configurations of every op, one file per op family.

mod conv;
mod layers;
mod loss;
mod network;

use super::Case;

/// Every case, in a fixed order.
pub fn all() -> Vec<Case> {
    [conv::cases(), layers::cases(), loss::cases(), network::cases()].into_iter().flatten().collect()
}
