//! Loss functions: each returns a one-element tensor and records its backward rule.

pub mod attention;
pub mod cross_entropy;
pub mod factor;
pub mod kd;
pub mod recon;
