//! Every op: forward on the tensors, the backward rule recorded on the tape, shape checks.
//!
//! An op is one folder `ops/<op>/`: its API and tape record (`mod.rs`), its CPU path (`cpu`), its
//! device launcher (`launch.rs`), its naive f64 `reference`, its `gradcheck` cases and its kernel
//! `parity` cases, the last two written with the op-testing kit [`check`]. The losses share one
//! folder, each loss's file holding its reference.

pub mod accuracy;
pub mod activation;
pub mod arith;
pub mod batchnorm;
pub mod channels;
pub mod check;
pub mod conv2d;
pub mod conv_bn;
pub mod depthwise;
pub mod linear;
pub mod loss;
pub mod margin;
pub mod maxpool;
pub mod pool;
pub mod precision;
pub mod shape;

pub use activation::{leaky_relu, relu, relu6};
pub use arith::{add, mul, scale};
pub use batchnorm::{BatchStats, RunningStats, batch_norm_eval, batch_norm_train};
pub use channels::{gather_channels, shortcut_a, slice_channels};
pub use conv_bn::{conv2d_batch_norm_eval, conv2d_batch_norm_train};
pub use conv2d::{conv_transpose2d, conv2d};
pub use depthwise::{avg_pool2d, depthwise_conv2d};
pub use linear::linear;
pub use margin::{bn_margin, margin_relu};
pub use maxpool::max_pool2d;
pub use pool::global_avg_pool;
pub use shape::{flatten, reshape};

pub(crate) use crate::tensor::dispatch::{gpu_of, map_on, map_on_tracked, map_on_tracked_x, map2_on};

#[cfg(all(test, feature = "cuda-emulation"))]
mod tests {
    use crate::tensor::Tensor;
    use crate::tensor::device::Device;

    #[test]
    fn ops_run_where_their_inputs_are_and_mixed_inputs_are_errors() {
        let gpu = Device::emulated().unwrap();
        let x = Tensor::from_vec(vec![1.0, -2.0, 3.0], &[3]).unwrap();
        let on_gpu = x.to_device(&gpu).unwrap();
        let y = super::relu(&on_gpu).unwrap();
        assert_eq!(y.device(), gpu);
        assert_eq!(y.to_device(&Device::Cpu).unwrap().to_vec().unwrap(), [1.0, 0.0, 3.0]);
        let err = super::add(&x, &on_gpu).unwrap_err().to_string();
        assert!(err.contains("add: inputs on different devices"), "{err}");
        let err = super::linear(&Tensor::zeros(&[1, 3]), &on_gpu.with_shape(&[1, 3], false), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("linear: inputs on different devices"), "{err}");
    }
}
