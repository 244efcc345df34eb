//! The ELBO and the predictive, for a likelihood ([`crate::weights::Likelihood`]) on a data
//! set ([`crate::data::Dataset`]) (docs/mathematics.md §8, eqs. 20–23).
//!
//! `L(θ) = E_q ln p(Y | X, ω) − KL(q ‖ p)` with the prior `p = N(0, s²I)`, and the
//! symmetrized `L^G(θ) = L(θ) + I(g; ω)`; with the paper's estimator
//! `L^K = L + Î^K ≤ L^G` in expectation. Reports normalize by the number of data points
//! (the paper's "normalized ELBO").

#[cfg(feature = "train")]
mod calibration;
#[cfg(feature = "train")]
mod data;
#[cfg(feature = "train")]
mod predictive;

#[cfg(feature = "train")]
pub use calibration::{Calibration, ECE_BINS, auroc, calibration};
#[cfg(feature = "train")]
pub use data::{ElboEstimate, elbo, elbo_cost};
#[cfg(feature = "train")]
pub use predictive::{Predictive, predictive};
