//! How long work reports what it is doing. The library never prints: `run`, `merge`
//! and `reproduce` tell an [`Observer`] (the command line's shows a progress bar on a
//! terminal and periodic log lines elsewhere), in the manner of argmin's observers;
//! [`crate::execute`] tells it as jobs finish.

use std::path::Path;

/// Receives reports from long work; every method does nothing unless overridden.
pub trait Observer: Send + Sync {
    /// `done` of `total` items have finished (called from worker threads, in any order).
    fn progress(&self, done: usize, total: usize) {
        let _ = (done, total);
    }

    /// `done` finished items were taken from the journal at `journal` instead of being
    /// computed again (a killed run resuming).
    fn resuming(&self, done: usize, journal: &Path) {
        let _ = (done, journal);
    }
}

/// The observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Observer for Silent {}
