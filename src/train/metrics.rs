//! Per-step statistics and per-epoch metrics, saved as JSON lines.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checkpoint::write_atomic;
use crate::error::{Error, Result};

/// What one training step reports.
#[derive(Clone, Debug, Default)]
pub struct StepStats {
    /// The step's loss summed over its images (mean loss times batch size).
    pub loss: f64,
    /// Correct top-1 predictions.
    pub correct: usize,
    /// Images in the step.
    pub images: usize,
    /// Named loss terms (such as `l_inh`), summed over images like `loss`.
    pub terms: BTreeMap<String, f64>,
}

impl StepStats {
    /// Adds another step's totals.
    pub fn add(&mut self, other: &StepStats) {
        self.loss += other.loss;
        self.correct += other.correct;
        self.images += other.images;
        for (k, v) in &other.terms {
            *self.terms.entry(k.clone()).or_default() += v;
        }
    }
}

/// One finished epoch, as written to `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Learning rate of the epoch's first step (the schedule moves it at every step).
    pub lr: f32,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training top-1 accuracy (augmented data, batch statistics), percent.
    pub train_acc: f64,
    /// Mean test loss.
    pub test_loss: f64,
    /// Test top-1 accuracy, percent.
    pub test_acc: f64,
    /// Mean loss on the held-out validation images (`--val-split`), when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Top-1 accuracy on the held-out validation images, percent, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_acc: Option<f64>,
    /// Wall time of the epoch including evaluation, seconds.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_sec: f64,
    /// Mean of each named loss term.
    #[serde(flatten)]
    pub terms: BTreeMap<String, f64>,
}

impl EpochMetrics {
    /// The metrics of an epoch from its step totals and evaluation.
    pub fn new(
        epoch: usize,
        lr: f32,
        totals: &StepStats,
        test_loss: f64,
        test_acc: f64,
        seconds: f64,
        train_seconds: f64,
    ) -> Self {
        let n = totals.images.max(1) as f64;
        EpochMetrics {
            epoch,
            lr,
            train_loss: totals.loss / n,
            train_acc: 100.0 * totals.correct as f64 / n,
            test_loss,
            test_acc,
            val_loss: None,
            val_acc: None,
            seconds,
            images_per_sec: totals.images as f64 / train_seconds.max(1e-9),
            terms: totals.terms.iter().map(|(k, v)| (k.clone(), v / n)).collect(),
        }
    }

    /// One human-readable line.
    pub fn summary_line(&self) -> String {
        let terms: String = self.terms.iter().map(|(k, v)| format!(" {k} {v:.4}")).collect();
        let val = match (self.val_loss, self.val_acc) {
            (Some(loss), Some(acc)) => format!("  val loss {loss:.4} acc {acc:.2}%"),
            _ => String::new(),
        };
        format!(
            "epoch {:>3}  lr {:.4}  train loss {:.4} acc {:.2}%{val}  test loss {:.4} acc {:.2}%{terms}  {:.1}s  {:.0} img/s",
            self.epoch,
            self.lr,
            self.train_loss,
            self.train_acc,
            self.test_loss,
            self.test_acc,
            self.seconds,
            self.images_per_sec
        )
    }
}

/// The metrics as a JSON array (checkpoint metadata).
pub(super) fn to_json(history: &[EpochMetrics]) -> String {
    serde_json::to_string(history).expect("metrics serialise")
}

/// Metrics read back from [`to_json`]; `path` names the source in errors.
pub(super) fn from_json(text: &str, path: &Path) -> Result<Vec<EpochMetrics>> {
    serde_json::from_str(text).map_err(|e| Error::format(path, None, format!("bad metrics history: {e}")))
}

/// Rewrites `metrics.jsonl` (one object per line) atomically.
pub(super) fn write_jsonl(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut text = String::new();
    for m in history {
        text += &serde_json::to_string(m).expect("metrics serialise");
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}
