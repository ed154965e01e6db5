//! The CPU path gives the same bits for the same seed, whatever the number of threads.

use iekd::autograd;
use iekd::nn::{Module, Network, ResNet, Shortcut};
use iekd::ops::loss::cross_entropy;
use iekd::optim::{Sgd, SgdConfig};
use iekd::tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Three SGD steps of a ResNet-8 on a fixed random batch; returns every parameter and buffer.
fn train_three_steps() -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut net = ResNet::new(8, 3, 10, Shortcut::B, &mut rng).unwrap();
    let mut sgd = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 5e-4, nesterov: true }).unwrap();
    let x = Tensor::randn(&[6, 32, 32, 3], 1.0, &mut rng);
    let labels: Vec<usize> = (0..6).map(|_| rng.random_range(0..10)).collect();
    for _ in 0..3 {
        let out = net.forward(&x, true).unwrap();
        let grads = autograd::backward(&cross_entropy(&out.logits, &labels).unwrap()).unwrap();
        sgd.step(&mut net.params_mut(), &grads).unwrap();
    }
    let mut state = Vec::new();
    net.visit("", &mut |_, t, _| state.extend(t.to_vec().unwrap()));
    state
}

#[test]
fn training_is_bitwise_reproducible_across_thread_counts() {
    let run = |threads| {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(train_three_steps)
    };
    let one = run(1);
    let three = run(3);
    assert!(one.iter().all(|v| v.is_finite()));
    assert!(one.iter().zip(&three).all(|(a, b)| a.to_bits() == b.to_bits()), "1 vs 3 threads differ");
    assert!(one.iter().zip(&run(2)).all(|(a, b)| a.to_bits() == b.to_bits()), "1 vs 2 threads differ");
}
