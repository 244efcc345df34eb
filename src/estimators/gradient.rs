//! The symmetrization term with its gradient, outside our trainer: what a PyTorch training
//! loop adds to its ELBO (`mi_est.torch.mi_term`), drawn as the trainer draws it.
//!
//! At step `t` with seed `s` the trainer opens the stream `stream(child_seed(s, 2), t)` and,
//! for each of its `S` weight draws, fills ε (P standard normals) and lets the estimator
//! draw its permutations from the same stream ([`crate::train`]). [`term_and_grad_at`]
//! follows that protocol, so its term and gradient are the trainer's for the same
//! posterior, seed, step and draws. Fixed tensors that pin units
//! ([`crate::symmetry::pinned`]) are handled as the estimates handle them: the term is
//! computed on the stabilizer's posterior and lifted by ln|G| − ln|S|, its gradient
//! scattered back; where no permutation is left, the term is that constant and its
//! gradient zero.

use super::{
    EstimatorKind, ExactPermanent, GradScratch, InfoNce, MiGradient, Sandwich, stabilizer_of,
};
use crate::error::{Error, Result};
use crate::posterior::MeanFieldGaussian;
use crate::rng::{child_seed, fill_standard_normal, stream};

/// The estimators with a gradient: `infonce` (the paper's Î^K, any spec), `sandwich` (its
/// lower bound, one hidden layer) and `exact-permanent` (one permutation of width ≤ 24).
pub const GRADIENT_NAMES: [&str; 3] = ["infonce", "sandwich", "exact-permanent"];

/// The term of `kind` with a gradient, with K where the estimator has one.
///
/// # Errors
///
/// [`Error::InvalidParameter`] naming an estimator without a gradient, a missing K or a
/// K its constructor refuses.
pub fn mi_gradient(kind: EstimatorKind, k: Option<usize>) -> Result<Box<dyn MiGradient>> {
    let need_k =
        || k.ok_or_else(|| Error::invalid("k", "none", format!("`{}` needs K", kind.name())));
    Ok(match kind {
        EstimatorKind::InfoNce => Box::new(InfoNce::new(need_k()?)?),
        EstimatorKind::Sandwich => Box::new(Sandwich::new(need_k()?)?.lower()),
        EstimatorKind::ExactPermanent => Box::new(ExactPermanent::new()),
        other => {
            return Err(Error::invalid(
                "estimator",
                other.name(),
                format!(
                    "has no gradient; those with one are {}",
                    GRADIENT_NAMES.join(", ")
                ),
            ));
        }
    })
}

/// A term of the symmetrized objective and its gradient, averaged over the draws.
#[derive(Clone, Debug, PartialEq)]
pub struct TermGrad {
    /// The term (nats), the mean over the draws.
    pub value: f64,
    /// ∂ term / ∂μ, flat in the posterior's order.
    pub grad_mu: Vec<f64>,
    /// ∂ term / ∂σ, flat in the posterior's order.
    pub grad_sigma: Vec<f64>,
}

/// The term of `mi` on `q` and its gradient with respect to μ and σ, from `n_samples`
/// weight draws at `step` of `seed`, drawn exactly as [`crate::train`] draws them (module
/// docs).
///
/// # Errors
///
/// [`Error::InvalidParameter`] for no draws; the estimator's errors (an architecture it
/// does not handle, named).
pub fn term_and_grad_at(
    mi: &dyn MiGradient,
    q: &MeanFieldGaussian,
    seed: u64,
    step: u64,
    n_samples: usize,
) -> Result<TermGrad> {
    if n_samples == 0 {
        return Err(Error::invalid("samples", 0, "must be >= 1"));
    }
    let p = q.n_params();
    let (target, offset, gather) = match stabilizer_of(q)? {
        None => (None, 0.0, None),
        Some((stab, None)) => {
            return Ok(TermGrad {
                value: stab.ln_offset,
                grad_mu: vec![0.0; p],
                grad_sigma: vec![0.0; p],
            });
        }
        Some((stab, Some(reduced))) => (Some(reduced), stab.ln_offset, Some(stab.gather)),
    };
    let on = target.as_ref().unwrap_or(q);
    let n = on.n_params();
    let (mut g_mu, mut g_sigma) = (vec![0.0; n], vec![0.0; n]);
    let mut eps = vec![0.0; n];
    let mut scratch = GradScratch::default();
    let mut rng = stream(child_seed(seed, 2), step);
    let mut value = 0.0;
    for _ in 0..n_samples {
        fill_standard_normal(&mut rng, &mut eps);
        value += mi.term_and_grad_in(on, &eps, &mut rng, &mut g_mu, &mut g_sigma, &mut scratch)?;
    }
    let s = n_samples as f64;
    let mean = |v: Vec<f64>| -> Vec<f64> {
        let v: Vec<f64> = v.into_iter().map(|g| g / s).collect();
        match &gather {
            None => v,
            Some(gather) => {
                let mut full = vec![0.0; p];
                for (&i, g) in gather.iter().zip(v) {
                    full[i] = g;
                }
                full
            }
        }
    };
    Ok(TermGrad {
        value: value / s + offset,
        grad_mu: mean(g_mu),
        grad_sigma: mean(g_sigma),
    })
}
