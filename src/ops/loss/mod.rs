//! Loss functions: each returns a one-element tensor and records its backward rule. Each loss's
//! file holds its f64 `reference`; the gradient checks and the kernel parity of all of them are
//! in [`gradcheck`] and [`parity`].

pub mod attention;
pub mod cross_entropy;
pub mod factor;
pub mod gradcheck;
pub mod kd;
pub mod launch;
pub mod parity;
pub mod partial_l2;
mod place;
pub mod recon;

pub use attention::{at_loss, attention_map};
pub use cross_entropy::{cross_entropy, cross_entropy_fused};
pub use factor::{FactorNorm, NORM_EPS, exploration_loss, factor_dot_loss, factor_loss, inheritance_loss};
pub use kd::kd_loss;
pub use partial_l2::{normalized_partial_l2_loss, partial_l2_loss};
pub use recon::{l1_loss, mse_loss};
