//! Every op: forward on the tensors, the backward rule recorded on the tape, shape checks.

pub mod activation;
pub mod arith;
pub mod batchnorm;
pub mod channels;
pub mod conv2d;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod shape;

pub use activation::{leaky_relu, relu};
pub use arith::{add, mul, scale};
pub use batchnorm::{
    BatchStats, batch_norm_add_relu_eval, batch_norm_add_relu_train, batch_norm_eval, batch_norm_relu_eval,
    batch_norm_relu_train, batch_norm_train, update_running_stats,
};
pub use channels::{gather_channels, shortcut_a, slice_channels};
pub use conv2d::{conv_transpose2d, conv2d};
pub use linear::linear;
pub use pool::global_avg_pool;
pub use shape::{flatten, reshape};
