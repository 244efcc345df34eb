//! How long work reports what it is doing. The library never prints: `run`, `merge`,
//! `reproduce`, training and downloads tell one [`Observer`] (the command line's shows a
//! progress bar on a terminal and periodic log lines elsewhere), in the manner of argmin's
//! observers; [`crate::execute`] tells it as jobs finish, the trainer after every step,
//! a download as bytes arrive.

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

    /// A training step finished.
    fn step(&self, info: &StepInfo) {
        let _ = info;
    }

    /// `done` bytes of `file` have arrived, of `total` where the server says.
    fn bytes(&self, file: &str, done: u64, total: Option<u64>) {
        let _ = (file, done, total);
    }
}

/// What one step did (passed to the observer).
#[derive(Clone, Debug, PartialEq)]
pub struct StepInfo {
    /// 0-based epoch.
    pub epoch: usize,
    /// 0-based step over the whole run.
    pub step: u64,
    /// Steps per epoch.
    pub steps_per_epoch: u64,
    /// The minibatch estimate of the ELBO per data point, `L̂/N`.
    pub elbo_per_point: f64,
    /// The symmetry term `Î` of this step (SGM only).
    pub mi_term: Option<f64>,
    /// `‖∇_{μ,ρ} Î‖` (SGM only).
    pub mi_grad_norm: Option<f64>,
    /// `‖∇_{μ,ρ} L̂‖`.
    pub elbo_grad_norm: f64,
}

/// The observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Observer for Silent {}
