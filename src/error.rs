//! The crate's error type: every failure names the operation and the shapes or the file involved.

use std::path::PathBuf;

/// Everything that can go wrong in iekd, as one readable line each.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An op was given tensors whose shapes do not fit together.
    #[error("{op}: {msg}")]
    Shape {
        /// The op that rejected its input, e.g. `conv2d`.
        op: &'static str,
        /// What was wrong, with the shapes involved.
        msg: String,
    },
    /// An argument other than a shape was out of range (a label, a stride, a probability).
    #[error("{op}: {msg}")]
    Invalid {
        /// The op or function that rejected the argument.
        op: &'static str,
        /// What was wrong.
        msg: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
    /// A data or checkpoint file is malformed.
    #[error("{path}{}: {msg}", offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
    Format {
        /// The file involved.
        path: PathBuf,
        /// Where in the file the problem was found, when that helps.
        offset: Option<u64>,
        /// What was wrong.
        msg: String,
    },
    /// Training was stopped on request; the last finished epoch is saved.
    #[error("interrupted after {epochs_done} finished epoch(s); continue with --resume (state in {})", out.display())]
    Interrupted {
        /// Epochs finished and saved.
        epochs_done: usize,
        /// The output folder holding the saved state.
        out: PathBuf,
    },
    /// The requested device cannot be used.
    #[error("device: {0}")]
    Device(String),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A shape error for `op`.
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape { op, msg: msg.into() }
    }

    /// An invalid-argument error for `op`.
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Invalid { op, msg: msg.into() }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// A format error in `path`, optionally at byte `offset`.
    pub fn format(path: impl Into<PathBuf>, offset: Option<u64>, msg: impl Into<String>) -> Self {
        Error::Format { path: path.into(), offset, msg: msg.into() }
    }
}
