//! Whole training steps on a device against the CPU: a ResNet-8 step (loss, logits, every
//! gradient, the updated weights and running statistics) and two steps of every distillation
//! recipe, on the CPU emulation of the kernels (feature `cuda-emulation`) and, where one is
//! usable, on a GPU. `-- --nocapture` prints the tables.

use std::io::Write as _;

use iekd::ops::precision::Precision;
use iekd::verify::parity::{Check, graph, recipe, step, table};
use iekd::{Device, Result};

/// Runs `checks` on `device`, prints the table and fails on any check outside its tolerance.
fn assert_parity(device: &Device, checks: Result<Vec<Check>>) {
    let checks = checks.expect("the steps run");
    println!("{device}\n{}", table(&checks));
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed())
        .map(|c| format!("{} [{}]: {}", c.kernel, c.case, c.worst))
        .collect();
    assert!(failed.is_empty(), "outside tolerance:\n{}", failed.join("\n"));
    assert!(checks.len() > 40, "only {} checks", checks.len());
}

/// Runs `f` on the GPU, or says why it was skipped (a failure under `IEKD_REQUIRE_GPU=1`).
fn on_gpu(test: &str, f: impl FnOnce(&Device)) {
    match Device::parse("cuda") {
        Ok(device) => f(&device),
        Err(why) => {
            assert!(std::env::var("IEKD_REQUIRE_GPU").as_deref() != Ok("1"), "IEKD_REQUIRE_GPU=1 but {why}");
            let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
        }
    }
}

#[cfg(feature = "cuda-emulation")]
#[test]
fn training_step_on_the_emulated_device_matches_the_cpu() {
    let device = Device::emulated().expect("the emulation is built in");
    assert_parity(&device, step::whole_step(&device, 7));
}

/// At TF32 and bf16 the device's products run on the tensor-core kernels, the CPU's on rounded
/// operands.
#[cfg(feature = "cuda-emulation")]
#[test]
fn tensor_core_training_steps_on_the_emulated_device_match_the_cpu() {
    let device = Device::emulated().expect("the emulation is built in");
    for p in [Precision::Tf32, Precision::Bf16] {
        assert_parity(&device, step::whole_step_at(&device, 7, p));
    }
}

#[cfg(feature = "cuda-emulation")]
#[test]
fn every_recipe_on_the_emulated_device_matches_the_cpu() {
    let device = Device::emulated().expect("the emulation is built in");
    assert_parity(&device, recipe::recipe_steps(&device, 11));
}

#[cfg(feature = "cuda-emulation")]
#[test]
fn graph_replayed_steps_on_the_emulated_device_equal_eager_steps() {
    // A device of its own: other tests' buffers would move this one's between steps.
    let device = Device::Cuda(std::sync::Arc::new(iekd::cuda::gpu::Gpu::emulated()));
    assert_parity(&device, graph::graph_replay(&device, 17));
}

#[test]
fn graph_replayed_steps_on_the_gpu_equal_eager_steps() {
    on_gpu("graph_replayed_steps_on_the_gpu_equal_eager_steps", |d| {
        assert_parity(d, graph::graph_replay(d, 17))
    });
}

#[test]
fn training_step_on_the_gpu_matches_the_cpu() {
    on_gpu("training_step_on_the_gpu_matches_the_cpu", |d| assert_parity(d, step::whole_step(d, 7)));
}

#[test]
fn every_recipe_on_the_gpu_matches_the_cpu() {
    on_gpu("every_recipe_on_the_gpu_matches_the_cpu", |d| assert_parity(d, recipe::recipe_steps(d, 11)));
}

#[test]
fn ie_ft_resnet56_to_resnet20_step_on_the_gpu_matches_the_cpu() {
    on_gpu("ie_ft_resnet56_to_resnet20_step_on_the_gpu_matches_the_cpu", |d| {
        assert_parity(d, recipe::ie_ft_resnet56_step(d, 32, 13))
    });
}

/// A steady training step on a device allocates nothing, waits for the device once (its read
/// back) and is launched as one graph (ResNet-8, two 8x8 images, the fourth step).
#[cfg(feature = "cuda-emulation")]
#[test]
fn a_steady_step_allocates_nothing_waits_once_and_is_one_graph_launch() {
    use iekd::cuda::gpu::Gpu;
    use iekd::train::{Supervised, Trainee};
    use rand::SeedableRng;
    let gpu = std::sync::Arc::new(Gpu::emulated());
    let device = Device::Cuda(gpu.clone());
    let rng = &mut rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let net = "resnet8".parse::<iekd::nn::Arch>().unwrap().build(3, 10, rng).unwrap();
    let sgd = iekd::optim::SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 5e-4, nesterov: true };
    let mut t = Supervised::new(net, sgd).unwrap();
    t.to_device(&device).unwrap();
    let x = iekd::Tensor::randn(&[2, 8, 8, 3], 1.0, rng);
    for _ in 0..3 {
        t.train_step(&x, &[3, 7], 0.1).unwrap();
    }
    let before = gpu.counts();
    t.train_step(&x, &[3, 7], 0.05).unwrap();
    let c = gpu.counts() - before;
    println!("{c:?}");
    assert_eq!((c.allocs, c.waits, c.graph_launches, c.downloads), (0, 1, 1, 1), "{c:?}");
    assert!(c.launches > 50, "the replayed kernels are counted: {c:?}");
}
