//! How long work reports what it is doing. The library never prints: `run`, `merge`
//! and `reproduce` tell an [`Observer`] (the command line's shows a progress bar on a
//! terminal and periodic log lines elsewhere), in the manner of argmin's observers.

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

/// Counts finished items (from any thread) and tells the observer, if any: what every
/// parallel loop of `run` and `reproduce` shares.
pub(crate) struct Counter<'a> {
    done: std::sync::atomic::AtomicUsize,
    total: usize,
    observer: Option<&'a dyn Observer>,
}

impl<'a> Counter<'a> {
    pub(crate) fn new(total: usize, observer: Option<&'a dyn Observer>) -> Self {
        Counter {
            done: std::sync::atomic::AtomicUsize::new(0),
            total,
            observer,
        }
    }

    pub(crate) fn tick(&self) {
        let d = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(o) = self.observer {
            o.progress(d, self.total);
        }
    }
}
