//! Learning-rate schedules over epochs.

/// How the learning rate changes over a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Multiply by `gamma` at each milestone epoch (0-based: from that epoch on).
    MultiStep {
        /// Epochs at which the rate drops.
        milestones: Vec<usize>,
        /// The factor of each drop.
        gamma: f32,
    },
    /// Cosine annealing from the base rate to 0 over the run.
    Cosine,
    /// The base rate throughout.
    Constant,
}

impl Schedule {
    /// The default multi-step schedule: x0.1 at 50% and 75% of `epochs` (80 and 120 of 160).
    pub fn default_multistep(epochs: usize) -> Schedule {
        Schedule::MultiStep { milestones: vec![epochs / 2, epochs * 3 / 4], gamma: 0.1 }
    }

    /// The learning rate of 0-based `epoch` of `epochs`, from the base rate `lr`.
    pub fn lr(&self, lr: f32, epoch: usize, epochs: usize) -> f32 {
        match self {
            Schedule::MultiStep { milestones, gamma } => {
                lr * gamma.powi(milestones.iter().filter(|&&m| epoch >= m).count() as i32)
            }
            Schedule::Cosine => {
                let t = epoch as f32 / epochs.max(1) as f32;
                0.5 * lr * (1.0 + (std::f32::consts::PI * t).cos())
            }
            Schedule::Constant => lr,
        }
    }
}

/// The schedule names the command line takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleKind {
    /// x0.1 at 50% and 75% of the epochs.
    Multistep,
    /// Cosine annealing to zero.
    Cosine,
    /// No change.
    Constant,
}

impl ScheduleKind {
    /// The schedule for a run of `epochs` epochs.
    pub fn for_epochs(self, epochs: usize) -> Schedule {
        match self {
            ScheduleKind::Multistep => Schedule::default_multistep(epochs),
            ScheduleKind::Cosine => Schedule::Cosine,
            ScheduleKind::Constant => Schedule::Constant,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistep_drops_at_half_and_three_quarters() {
        let s = Schedule::default_multistep(160);
        assert_eq!(s.lr(0.1, 79, 160), 0.1);
        assert!((s.lr(0.1, 80, 160) - 0.01).abs() < 1e-9);
        assert!((s.lr(0.1, 120, 160) - 0.001).abs() < 1e-9);
    }

    #[test]
    fn cosine_starts_at_base_and_ends_near_zero() {
        assert_eq!(Schedule::Cosine.lr(0.1, 0, 10), 0.1);
        assert!((Schedule::Cosine.lr(0.1, 5, 10) - 0.05).abs() < 1e-6);
        assert!(Schedule::Cosine.lr(0.1, 9, 10) < 0.003);
    }
}
