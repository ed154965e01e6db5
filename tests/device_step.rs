//! A whole training step (ResNet-8: loss, logits, every gradient, the updated weights and
//! running statistics) on a device against the CPU: on the CPU emulation of the kernels (feature
//! `cuda-emulation`) and, where one is usable, on a GPU. `-- --nocapture` prints the table.

use std::io::Write as _;

use iekd::Device;
use iekd::cuda::parity::{recipe, step, table};

fn run_on(device: &Device) {
    let checks = step::whole_step(device, 7).expect("the steps run");
    println!("{device}\n{}", table(&checks));
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed())
        .map(|c| format!("{} [{}]: {}", c.kernel, c.case, c.worst))
        .collect();
    assert!(failed.is_empty(), "outside tolerance:\n{}", failed.join("\n"));
    assert!(checks.len() > 40, "only {} checks", checks.len());
}

#[cfg(feature = "cuda-emulation")]
#[test]
fn training_step_on_the_emulated_device_matches_the_cpu() {
    run_on(&Device::emulated().expect("the emulation is built in"));
}

#[test]
fn training_step_on_the_gpu_matches_the_cpu() {
    match Device::parse("cuda") {
        Ok(device) => run_on(&device),
        Err(why) => {
            assert!(std::env::var("IEKD_REQUIRE_GPU").as_deref() != Ok("1"), "IEKD_REQUIRE_GPU=1 but {why}");
            let _ = writeln!(std::io::stderr(), "training_step_on_the_gpu_matches_the_cpu: skipped: {why}");
        }
    }
}

fn recipes_on(device: &Device) {
    let checks = recipe::recipe_steps(device, 11).expect("the recipes run");
    println!("{device}\n{}", table(&checks));
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed())
        .map(|c| format!("{} [{}]: {}", c.kernel, c.case, c.worst))
        .collect();
    assert!(failed.is_empty(), "outside tolerance:\n{}", failed.join("\n"));
}

#[cfg(feature = "cuda-emulation")]
#[test]
fn every_recipe_on_the_emulated_device_matches_the_cpu() {
    recipes_on(&Device::emulated().expect("the emulation is built in"));
}

#[test]
fn every_recipe_on_the_gpu_matches_the_cpu() {
    match Device::parse("cuda") {
        Ok(device) => recipes_on(&device),
        Err(why) => {
            assert!(std::env::var("IEKD_REQUIRE_GPU").as_deref() != Ok("1"), "IEKD_REQUIRE_GPU=1 but {why}");
            let _ = writeln!(std::io::stderr(), "every_recipe_on_the_gpu_matches_the_cpu: skipped: {why}");
        }
    }
}
