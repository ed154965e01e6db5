//! Training steps replayed as graphs against the same steps launched kernel by kernel, on one
//! device: supervised training and the IE-FT, IE-DML and IE-OD recipes with ResNet-8 networks on
//! two 8x8 images, four steps each at a learning rate that changes every step (so a replay must
//! read it from device memory). Everything must be equal bit for bit: the losses, the loss terms,
//! and every tensor of the resume state afterwards; and the graphed trainees must have been
//! replayed (not merely run eagerly).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::recipe::{net, state, trainee};
use super::{Check, Tol, compare};
use crate::distill::{EncoderKind, Method};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::device::Device;
use crate::train::{Supervised, Trainee};

/// Bit for bit.
const EXACT: Tol = Tol { atol: 0.0, rtol: 0.0 };

/// Steps per trainee: the first two record different work (the first initialises the momentum
/// buffers), the third is captured and replayed, the fourth replayed.
const STEPS: usize = 4;

/// The trainees compared, by name.
const TRAINEES: [&str; 4] = ["supervised", "ie-ft", "ie-dml", "ie-od"];

fn build(name: &str) -> Result<Box<dyn Trainee>> {
    let config = super::recipe::SGD;
    Ok(match name {
        "supervised" => Box::new(Supervised::new(net(1)?, config)?),
        "ie-ft" => trainee(Method::IeFt, EncoderKind::Coder)?,
        "ie-dml" => trainee(Method::IeDml, EncoderKind::Coder)?,
        _ => trainee(Method::IeOd, EncoderKind::Coder)?,
    })
}

/// Every trainee's steps with and without graphs on `device` (a GPU or the emulation, used by no
/// other thread meanwhile: their buffers would move this run's from step to step); one [`Check`]
/// per step value, per tensor of the final state, and one saying how many steps of the graphed
/// trainee were replayed (passing when at least two were).
pub fn graph_replay(device: &Device, seed: u64) -> Result<Vec<Check>> {
    let Device::Cuda(gpu) = device else {
        return Err(Error::Device("graph replay needs a GPU or the emulation".into()));
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Tensor::randn(&[2, 8, 8, 3], 1.0, &mut rng);
    let labels: Vec<usize> = (0..2).map(|_| rng.random_range(0..10)).collect();
    let mut checks = Vec::new();
    for name in TRAINEES {
        let (mut eager, mut graphed) = (build(name)?, build(name)?);
        eager.use_graphs(false);
        eager.to_device(device)?;
        graphed.to_device(device)?;
        let before = gpu.counts().graph_launches;
        for s in 1..=STEPS {
            let lr = 0.1 / s as f32;
            let want = eager.train_step(&x, &labels, lr)?;
            let got = graphed.train_step(&x, &labels, lr)?;
            let case = format!("{name} step {s} loss");
            checks.push(compare("graph replay: loss", case, &[got.loss as f32], &[want.loss as f32], EXACT));
            for ((term, g), (_, w)) in got.terms.iter().zip(&want.terms) {
                let case = format!("{name} step {s} {term}");
                checks.push(compare("graph replay: term", case, &[*g as f32], &[*w as f32], EXACT));
            }
        }
        // At least two replayed steps (the case names the count).
        let replays = gpu.counts().graph_launches - before;
        let case = format!("{name}: {replays} of {STEPS} steps replayed");
        checks.push(compare("graph replay: replays", case, &[replays.min(2) as f32], &[2.0], EXACT));
        for ((tensor, g), (_, w)) in state(graphed.as_mut())?.iter().zip(&state(eager.as_mut())?) {
            let case = format!("{name} {tensor}");
            checks.push(compare("graph replay: after update", case, g, w, EXACT));
        }
    }
    Ok(checks)
}
