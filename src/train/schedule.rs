//! Learning-rate schedules over the progress of a run.
//!
//! The rate is a function of *progress*: epochs done, counting the batches of the current epoch
//! as a fraction (`epoch + batch / batches`). It is evaluated at every step, so milestones that
//! fall inside an epoch take effect there, as PyTorch's per-iteration schedulers do, and a run
//! of one epoch starts at the base rate whatever its schedule.

/// How the learning rate changes over a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Multiply by `gamma` at each milestone (in epochs of progress, possibly fractional).
    MultiStep {
        /// Progress, in epochs, at which the rate drops.
        milestones: Vec<f64>,
        /// The factor of each drop.
        gamma: f32,
    },
    /// Cosine annealing from the base rate towards 0 over the run, step by step.
    Cosine,
    /// The base rate throughout.
    Constant,
}

impl Schedule {
    /// The default multi-step schedule: x0.1 at 50% and 75% of the run (epochs 80 and 120 of
    /// 160, as the authors' configurations).
    pub fn default_multistep(epochs: usize) -> Schedule {
        let e = epochs as f64;
        Schedule::MultiStep { milestones: vec![0.5 * e, 0.75 * e], gamma: 0.1 }
    }

    /// The learning rate at `progress` epochs (see the module documentation) of a run of
    /// `epochs`, from the base rate `lr`.
    pub fn lr(&self, lr: f32, progress: f64, epochs: usize) -> f32 {
        match self {
            Schedule::MultiStep { milestones, gamma } => {
                lr * gamma.powi(milestones.iter().filter(|&&m| progress >= m).count() as i32)
            }
            Schedule::Cosine => {
                let t = (progress / epochs.max(1) as f64).clamp(0.0, 1.0);
                (0.5 * f64::from(lr) * (1.0 + (std::f64::consts::PI * t).cos())) as f32
            }
            Schedule::Constant => lr,
        }
    }
}

/// The schedule names the command line takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ScheduleKind {
    /// x0.1 at 50% and 75% of the run (or at --milestones).
    Multistep,
    /// Cosine annealing to zero.
    Cosine,
    /// No change.
    Constant,
}

impl ScheduleKind {
    /// The schedule for a run of `epochs` epochs; `milestones` (epochs) replace the default
    /// drops of [`ScheduleKind::Multistep`] when given.
    pub fn for_epochs(self, epochs: usize, milestones: Option<&[f64]>) -> Schedule {
        match (self, milestones) {
            (ScheduleKind::Multistep, Some(m)) => Schedule::MultiStep { milestones: m.to_vec(), gamma: 0.1 },
            (ScheduleKind::Multistep, None) => Schedule::default_multistep(epochs),
            (ScheduleKind::Cosine, _) => Schedule::Cosine,
            (ScheduleKind::Constant, _) => Schedule::Constant,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistep_drops_at_half_and_three_quarters() {
        let s = Schedule::default_multistep(160);
        assert_eq!(s.lr(0.1, 79.99, 160), 0.1);
        assert!((s.lr(0.1, 80.0, 160) - 0.01).abs() < 1e-9);
        assert!((s.lr(0.1, 120.0, 160) - 0.001).abs() < 1e-9);
    }

    #[test]
    fn short_runs_start_at_the_base_rate_and_drop_inside_the_epoch() {
        let s = Schedule::default_multistep(1);
        assert_eq!(s.lr(0.1, 0.0, 1), 0.1);
        assert_eq!(s.lr(0.1, 0.49, 1), 0.1);
        assert!((s.lr(0.1, 0.5, 1) - 0.01).abs() < 1e-9);
        assert!((s.lr(0.1, 0.8, 1) - 0.001).abs() < 1e-9);
        let s = Schedule::default_multistep(2);
        assert_eq!(s.lr(0.1, 0.99, 2), 0.1);
        assert!((s.lr(0.1, 1.0, 2) - 0.01).abs() < 1e-9);
        for kind in [ScheduleKind::Multistep, ScheduleKind::Cosine, ScheduleKind::Constant] {
            for epochs in [1, 2, 3, 10] {
                assert_eq!(kind.for_epochs(epochs, None).lr(0.1, 0.0, epochs), 0.1, "{kind:?} {epochs}");
            }
        }
    }

    #[test]
    fn explicit_milestones_replace_the_default() {
        let s = ScheduleKind::Multistep.for_epochs(200, Some(&[60.0, 120.0, 180.0]));
        assert_eq!(s.lr(0.1, 59.9, 200), 0.1);
        assert!((s.lr(0.1, 60.0, 200) - 0.01).abs() < 1e-9);
        assert!((s.lr(0.1, 190.0, 200) - 1e-4).abs() < 1e-9);
        assert_eq!(ScheduleKind::Cosine.for_epochs(10, Some(&[1.0])), Schedule::Cosine);
    }

    #[test]
    fn cosine_starts_at_base_and_ends_near_zero() {
        assert_eq!(Schedule::Cosine.lr(0.1, 0.0, 10), 0.1);
        assert!((Schedule::Cosine.lr(0.1, 5.0, 10) - 0.05).abs() < 1e-6);
        assert!(Schedule::Cosine.lr(0.1, 9.99, 10) < 1e-5);
    }
}
