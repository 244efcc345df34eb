//! Deterministic pairwise-distance bounds on `I(g; ω)` (Kolchinsky & Tracey 2017;
//! docs/mathematics.md §7, eqs. 17–19;
//! issue 7, item 4), for one hidden layer.
//!
//! `q^G` is the equal-weight mixture of the components `g·q`, and `I(g; ω)` is the
//! mutual information between the component index and a draw. For a mixture with
//! weights `w_i` and any pairwise divergence `D`,
//! `Î_D = −Σ_i w_i ln Σ_j w_j e^{−D(p_i ‖ p_j)}` is a lower bound on `I` when `D` is the
//! Bhattacharyya distance and an upper bound when `D` is the KL divergence. Every
//! component here is a relabelling of every other, so the inner sum is the same for all
//! `i`: `Î_D = ln|G| − ln Σ_h e^{−D(q ‖ h·q)}`. For one hidden layer the divergence
//! between mean-field Gaussians splits over units, `D(q ‖ h·q) = Σ_i D(q_i ‖ q_{τ(i)})`, so
//! the sum over the group is a permanent: `Σ_h e^{−D(q ‖ h·q)} = perm(exp(−D_unit))`.
//! No Monte Carlo is involved; widths above 24 use the pruned block permanent (the
//! reported value then takes the side of the bracket that keeps the bound valid).
//!
//! Per parameter, with `N(m₁, s₁²)` and `N(m₂, s₂²)`:
//! `KL = ln(s₂/s₁) + (s₁² + (m₁ − m₂)²)/(2 s₂²) − ½`,
//! `D_B = (m₁ − m₂)²/(4(s₁² + s₂²)) + ½ ln((s₁² + s₂²)/(2 s₁ s₂))`.

use crate::estimators::EstimatorId;
use std::time::Instant;

use crate::error::Result;
use crate::estimators::permanent::{MAX_PERMANENT_WIDTH, ln_permanent};
use crate::estimators::pruned::ln_permanent_pruned;
use crate::estimators::unit_cost::UnitCost;
use crate::estimators::{Estimate, MiEstimator};
use crate::posterior::MeanFieldGaussian;
use crate::symmetry::ln_factorial;

/// Which pairwise bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairwiseBound {
    /// Bhattacharyya-based lower bound.
    Bhattacharyya,
    /// KL-based upper bound.
    Kl,
}

fn kl(m1: f64, s1: f64, m2: f64, s2: f64) -> f64 {
    (s2 / s1).ln() + (s1 * s1 + (m1 - m2) * (m1 - m2)) / (2.0 * s2 * s2) - 0.5
}

fn bhattacharyya(m1: f64, s1: f64, m2: f64, s2: f64) -> f64 {
    let v = s1 * s1 + s2 * s2;
    (m1 - m2) * (m1 - m2) / (4.0 * v) + 0.5 * (v / (2.0 * s1 * s2)).ln()
}

impl MiEstimator for PairwiseBound {
    /// One divergence matrix and one (exact or pruned) permanent.
    fn cost(&self, q: &MeanFieldGaussian) -> crate::resources::Cost {
        if let Some(r) = super::stabilized(q) {
            return self.cost(&r);
        }
        let (d, _) = crate::estimators::unit_shape(q);
        if d as usize <= MAX_PERMANENT_WIDTH {
            crate::estimators::permanent::permanent_cost(q, 1)
        } else {
            crate::estimators::base_cost(q, 0, d * d)
        }
    }

    fn id(&self) -> EstimatorId {
        match self {
            PairwiseBound::Bhattacharyya => EstimatorId::PairwiseBhattacharyyaLower,
            PairwiseBound::Kl => EstimatorId::PairwiseKlUpper,
        }
    }

    /// Deterministic: `std_err` is `None`, `n_samples` 0 and `terms` empty.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedArchitecture`](crate::Error::UnsupportedArchitecture) without
    /// exactly one hidden layer; [`Error::WidthTooLarge`](crate::Error::WidthTooLarge)
    /// when a wide layer's pruned blocks are too large.
    fn sampling(&self) -> (Option<usize>, usize, u64) {
        (None, 1, 0)
    }

    fn estimate_unpinned(
        &self,
        q: &MeanFieldGaussian,
        limits: &crate::resources::Limits,
    ) -> Result<Estimate> {
        let started = Instant::now();
        let uc = UnitCost::new(q)?;
        crate::resources::check(MiEstimator::name(self), self.cost(q), limits)?;
        let d = uc.width();
        let div = match self {
            PairwiseBound::Bhattacharyya => uc.unit_divergence(bhattacharyya),
            PairwiseBound::Kl => uc.unit_divergence(kl),
        };
        let neg: Vec<f64> = div.iter().map(|x| -x).collect();
        let ln_perm = if d <= MAX_PERMANENT_WIDTH {
            ln_permanent(&neg, d)?
        } else {
            let p = ln_permanent_pruned(&neg, d, 40.0)?;
            // Lower bound on I: use the upper side of ln perm; upper bound: the lower side.
            match self {
                PairwiseBound::Bhattacharyya => p.ln_upper,
                PairwiseBound::Kl => p.ln_lower,
            }
        };
        let ln_order = ln_factorial(d);
        let value = ln_order - ln_perm;
        let entropy_q = q.entropy();
        Ok(Estimate {
            estimator: self.id(),
            value,
            std_err: None,
            n_samples: 0,
            k: None,
            seed: 0,
            wall_s: started.elapsed().as_secs_f64(),
            entropy_q,
            entropy_sym: value + entropy_q,
            ln_group_order: ln_order,
            ln_cap: ln_order,
            max_term_share: None,
            bracket: None,
            terms: Vec::new(),
            interval: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_parameter_divergences_match_numerical_integration() {
        let (m1, s1, m2, s2) = (0.3, 0.7, -0.4, 1.3);
        let pdf = |x: f64, m: f64, s: f64| {
            (-(x - m) * (x - m) / (2.0 * s * s)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
        };
        let (a, b, n) = (-15.0, 15.0, 30_000);
        let h = (b - a) / n as f64;
        let (mut kl_num, mut bc) = (0.0, 0.0);
        for i in 0..n {
            let x = a + (i as f64 + 0.5) * h;
            let (p, q) = (pdf(x, m1, s1), pdf(x, m2, s2));
            kl_num += p * (p / q).ln() * h;
            bc += (p * q).sqrt() * h;
        }
        assert!((kl(m1, s1, m2, s2) - kl_num).abs() < 1e-8);
        assert!((bhattacharyya(m1, s1, m2, s2) + bc.ln()).abs() < 1e-8);
    }
}
