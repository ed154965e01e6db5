//! Presets that reproduce the authors' released configurations (the `config/` folder of the
//! IE-KD repository), so `iekd distill --preset NAME` trains what their YAML file describes.
//!
//! A preset fills every setting its file names; a flag given on the command line still wins.
//! The teacher's model file (and, for FT and IE-FT, its auto-encoder) must be given as usual.

use super::Method;
use crate::data::DatasetKind;
use crate::error::{Error, Result};

/// One released configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    /// The name `--preset` takes.
    pub name: &'static str,
    /// The configuration file it reproduces, relative to the authors' repository.
    pub source: &'static str,
    /// The recipe.
    pub method: Method,
    /// The data set.
    pub dataset: DatasetKind,
    /// The teacher's (for DML the peer's) architecture.
    pub teacher_arch: &'static str,
    /// The student's architecture.
    pub student_arch: &'static str,
    /// Epochs.
    pub epochs: usize,
    /// Epochs at which the learning rate drops x0.1 (multi-step schedule).
    pub milestones: &'static [f64],
    /// Images per batch.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f32,
    /// KD's weight and temperature, when the file sets them.
    pub kd: Option<(f32, f32)>,
    /// FT's loss weight, when the file sets it.
    pub beta: Option<f32>,
    /// IE's inheritance and exploration weights, when the file sets them.
    pub lambdas: Option<(f32, f32)>,
}

const CIFAR_MILESTONES: &[f64] = &[80.0, 120.0];

const fn base(name: &'static str, source: &'static str, method: Method, dataset: DatasetKind) -> Preset {
    Preset {
        name,
        source,
        method,
        dataset,
        teacher_arch: "resnet56b",
        student_arch: "resnet20b",
        epochs: 160,
        milestones: CIFAR_MILESTONES,
        batch_size: 128,
        lr: 0.1,
        kd: None,
        beta: None,
        lambdas: None,
    }
}

/// Every preset, by name.
pub const PRESETS: &[Preset] = &[
    Preset {
        kd: Some((0.95, 20.0)),
        ..base("kd-cifar10-r56-r20", "config/kd/cifar10/resnet56-20.yaml", Method::Kd, DatasetKind::Cifar10)
    },
    Preset {
        teacher_arch: "resnet110",
        student_arch: "resnet32b",
        kd: Some((0.9, 4.0)),
        ..base(
            "kd-cifar100-r110-r32b",
            "config/kd/cifar100/resnet110-32B.yaml",
            Method::Kd,
            DatasetKind::Cifar100,
        )
    },
    Preset {
        beta: Some(500.0),
        ..base("ft-cifar10-r56-r20", "config/ft/cifar10/resnet56-20.yaml", Method::Ft, DatasetKind::Cifar10)
    },
    Preset {
        teacher_arch: "resnet110",
        student_arch: "resnet32b",
        beta: Some(500.0),
        ..base(
            "ft-cifar100-r110-r32b",
            "config/ft/cifar100/resnet110-32.yaml",
            Method::Ft,
            DatasetKind::Cifar100,
        )
    },
    Preset {
        lambdas: Some((1.0, 1.0)),
        ..base("ie-ft-cifar10-r56-r20", "config/ie_kd.yaml", Method::IeFt, DatasetKind::Cifar10)
    },
    Preset {
        student_arch: "resnet32b",
        epochs: 200,
        milestones: &[60.0, 120.0, 180.0],
        batch_size: 64,
        ..base(
            "dml-cifar10-r56-r32",
            "config/DML/cifar10/resnet56-20.yaml",
            Method::Dml,
            DatasetKind::Cifar10,
        )
    },
];

impl Preset {
    /// The preset called `name`; an unknown name is an error listing the known ones.
    pub fn find(name: &str) -> Result<Preset> {
        PRESETS.iter().find(|p| p.name == name).copied().ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            Error::invalid("preset", format!("unknown preset '{name}'; known: {}", names.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Arch;

    #[test]
    fn presets_have_unique_names_valid_architectures_and_their_sources() {
        for (i, p) in PRESETS.iter().enumerate() {
            assert_eq!(Preset::find(p.name).unwrap(), *p);
            assert!(PRESETS[..i].iter().all(|q| q.name != p.name), "{}", p.name);
            p.teacher_arch.parse::<Arch>().unwrap();
            p.student_arch.parse::<Arch>().unwrap();
            assert!(p.source.starts_with("config/") && p.source.ends_with(".yaml"));
            assert!(p.milestones.iter().all(|&m| m > 0.0 && m < p.epochs as f64));
        }
        let kd = Preset::find("kd-cifar10-r56-r20").unwrap();
        assert_eq!((kd.kd, kd.method, kd.dataset), (Some((0.95, 20.0)), Method::Kd, DatasetKind::Cifar10));
        assert_eq!(Preset::find("kd-cifar100-r110-r32b").unwrap().kd, Some((0.9, 4.0)));
        let err = Preset::find("nope").unwrap_err().to_string();
        assert!(err.contains("kd-cifar10-r56-r20") && err.contains("nope"), "{err}");
    }
}
