//! The training loop's progress display: a progress bar on the terminal (indicatif, with the
//! `cli` feature), or nothing but the per-epoch lines in library builds without it.

/// Progress of the batches of an epoch, and a line per finished epoch.
pub(super) struct Progress {
    #[cfg(feature = "cli")]
    bar: indicatif::ProgressBar,
}

impl Progress {
    /// A display of `len` batches per epoch, drawn only when `show`.
    #[cfg(feature = "cli")]
    pub(super) fn new(show: bool, len: usize) -> Self {
        use indicatif::{ProgressBar, ProgressStyle};
        if !show {
            return Progress { bar: ProgressBar::hidden() };
        }
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                .expect("static template")
                .progress_chars("=> "),
        );
        Progress { bar }
    }

    /// A display of the per-epoch lines only (no progress bar in this build).
    #[cfg(not(feature = "cli"))]
    pub(super) fn new(_show: bool, _len: usize) -> Self {
        Progress {}
    }

    /// Starts an epoch named `prefix`.
    pub(super) fn start(&self, prefix: String) {
        #[cfg(feature = "cli")]
        {
            self.bar.reset();
            self.bar.set_prefix(prefix);
        }
        #[cfg(not(feature = "cli"))]
        let _ = prefix;
    }

    /// One more batch done, with the running figures.
    pub(super) fn step(&self, message: impl FnOnce() -> String) {
        #[cfg(feature = "cli")]
        {
            self.bar.inc(1);
            self.bar.set_message(message());
        }
        #[cfg(not(feature = "cli"))]
        let _ = message;
    }

    /// Prints a finished epoch's line above the bar.
    pub(super) fn line(&self, line: String) {
        #[cfg(feature = "cli")]
        self.bar.println(line);
        #[cfg(not(feature = "cli"))]
        eprintln!("{line}");
    }

    /// Leaves the bar where it stopped (an interrupted run).
    pub(super) fn abandon(&self) {
        #[cfg(feature = "cli")]
        self.bar.abandon();
    }

    /// Removes the bar at the end of a run.
    pub(super) fn finish(&self) {
        #[cfg(feature = "cli")]
        self.bar.finish_and_clear();
    }
}
