//! # mi-est
//!
//! Measures what hidden-unit permutation symmetry costs a mean-field variational
//! posterior over the weights of an MLP (or, through a permutation spec, of a CNN, a
//! residual net or an attention block: docs/specs.md), following Gelberg, van der Ouderaa,
//! van der Wilk and Gal, *Variational Inference Failures Under Model Symmetries*
//! (GRaM @ ICML 2024).
//!
//! The symmetrized posterior `q^G(ω) = (1/|G|) Σ_g q(g⁻¹·ω)` predicts like `q` but has
//! an ELBO larger by the mutual information `I(g; ω) = E_q[ln q(ω) − ln q^G(ω)]` between
//! a uniformly random permutation `g` and the weights. This crate builds the objects
//! (architectures, the group and its action, the posterior) and estimates that
//! information.
//!
//! Modules, in dependency order (a module uses only those above it):
//! [`error`], [`rng`], [`linalg`], [`weights`], [`symmetry`], [`posterior`], [`estimators`].
//!
//! **Features.** With `default-features = false` the crate is the numeric core: the
//! architecture, the group, the posterior, every estimator, posterior files (`io`) and the
//! executor, on rand, rayon, statrs and safetensors, without faer. `train` adds the
//! forward pass, data sets, the ELBO, training and the studies (faer's matrix product);
//! `reports` adds Parquet tables and SVG plots; `fetch` the MNIST download; `cli` (the
//! default) all of them and the command.

#[cfg(feature = "reports")]
pub mod app;
pub mod atomic;
#[cfg(feature = "train")]
pub mod data;
#[cfg(feature = "train")]
pub mod demo;
pub mod elbo;
pub mod error;
pub mod estimators;
pub mod execute;
#[cfg(feature = "train")]
pub mod fuzz_entry;
pub mod grid;
pub mod io;
pub mod journal;
pub mod linalg;
pub mod observe;
pub mod posterior;
#[cfg(feature = "reports")]
pub mod report;
pub mod resources;
pub mod rng;
pub mod row;
#[cfg(feature = "train")]
pub mod study;
pub mod symmetry;
#[cfg(feature = "train")]
pub mod train;
pub mod vmath;
pub mod weights;
mod ziggurat;

pub mod prec;
pub mod recycle;

pub use error::{Error, Result};
