//! The paper's experiments and two beyond it, one command each: `mi-est reproduce
//! <name>` writes each under `reports/<name>/`; `--quick` variants check the qualitative
//! claims in seconds. Each experiment is its own file under
//! [`crate::study::experiments`]; this module dispatches to them.

use std::time::Instant;

use crate::error::Result;

pub use crate::study::experiment::{
    Experiment, PlotSpec, ReproduceOptions, Reproduction, Series, Study,
};
pub use crate::study::experiments::mode_interpolation::{GaussianFit, fit_gaussian_to_mixture};
pub use crate::study::experiments::mode_proximity::min_swap_distance;
pub use crate::study::experiments::tractable_bnn::{
    TRACTABLE_NOISE_PRECISION, TRACTABLE_PRIOR_SCALE,
};

/// Runs one experiment.
///
/// # Errors
///
/// Missing data, training divergence, named.
pub fn reproduce(experiment: Experiment, options: &ReproduceOptions) -> Result<Reproduction> {
    let started = Instant::now();
    let mut r = experiment.study().run(options)?;
    r.wall_s = started.elapsed().as_secs_f64();
    Ok(r)
}
