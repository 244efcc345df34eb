//! Exact `I(g; ω)` by enumerating the group (docs/mathematics.md §5, eq. 10).
//!
//! `ln q^G(ω) = ln Σ_g q(g⁻¹·ω) − ln|G|` (log-sum-exp over every element), so the
//! per-draw term `ln q(ω) − ln q^G(ω)` is exact and only the average over `ω ~ q` is
//! Monte Carlo. Each term lies in `(−∞, ln|G|]`. This is ground truth for small groups;
//! above a configurable size (default 10⁶ elements) it refuses with
//! [`Error::GroupTooLarge`](crate::Error::GroupTooLarge).

use crate::estimators::EstimatorId;
use std::time::Instant;

use crate::error::Result;
use crate::estimators::{Estimate, EstimateParts, LnSumExp, MiEstimator, per_draw_terms};
use crate::posterior::MeanFieldGaussian;
use crate::symmetry::DEFAULT_MAX_ENUMERATION;

/// Exact `ln q^G` by summing over every group element; Monte Carlo over ω only.
///
/// Defaults (set by [`ExactEnumeration::new`]): 1000 draws, seed 0, at most 10⁶
/// elements.
#[derive(Clone, Debug)]
pub struct ExactEnumeration {
    n_samples: usize,
    seed: u64,
    max_elements: u64,
}

impl Default for ExactEnumeration {
    fn default() -> Self {
        Self::new()
    }
}

impl ExactEnumeration {
    /// The estimator with its defaults.
    pub fn new() -> Self {
        ExactEnumeration {
            n_samples: 1000,
            seed: 0,
            max_elements: DEFAULT_MAX_ENUMERATION,
        }
    }

    /// Largest group to enumerate.
    pub fn max_elements(mut self, max_elements: u64) -> Self {
        self.max_elements = max_elements;
        self
    }
}

impl MiEstimator for ExactEnumeration {
    fn id(&self) -> EstimatorId {
        EstimatorId::ExactEnumeration
    }

    fn cost(&self, q: &MeanFieldGaussian) -> crate::resources::Cost {
        if let Some(r) = super::stabilized(q) {
            return self.cost(&r);
        }
        let order = q.space().group().ln_order().exp();
        crate::resources::Cost::ops(
            self.n_samples as f64 * order * q.n_params() as f64,
            crate::resources::NS_PARAM_PERM,
        )
        .then(crate::estimators::base_cost(q, self.n_samples, 0.0))
    }

    /// # Errors
    ///
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for `S = 0`;
    /// [`Error::GroupTooLarge`](crate::Error::GroupTooLarge) above the element limit.
    fn sampling(&self) -> (Option<usize>, usize, u64) {
        (None, self.n_samples, self.seed)
    }

    fn estimate_unpinned(
        &self,
        q: &MeanFieldGaussian,
        limits: &crate::resources::Limits,
    ) -> Result<Estimate> {
        let started = Instant::now();
        let space = q.space();
        let group = space.group();
        group.check_enumerable(self.max_elements)?;
        crate::resources::check(MiEstimator::name(self), self.cost(q), limits)?;
        let ln_order = group.ln_order();
        let p = q.n_params();
        let init = || (vec![0.0; p], vec![0.0; p], space.action(&group.identity()));
        let terms = per_draw_terms(self.n_samples, self.seed, init, |rng, (eps, omega, map)| {
            q.sample_in_place(rng, eps, omega);
            let ln_q0 = q.ln_q_unchecked(omega);
            let mut lse = LnSumExp::default();
            group
                .elements(self.max_elements)
                .expect("checked above")
                .for_each_ref(|g| {
                    space.assign(map, g);
                    lse.push(q.ln_q_inverse_permuted_unchecked(omega, map) - ln_q0);
                });
            ln_order - lse.value()
        });
        Ok(EstimateParts {
            estimator: self.id(),
            k: None,
            seed: self.seed,
            ln_cap: ln_order,
            ln_group_order: ln_order,
        }
        .finish(q, terms, started))
    }
}

sampling_setters!(ExactEnumeration);
