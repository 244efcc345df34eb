//! Ground truth for the tractable BNN `f(x) = ReLU(w₁x) + ReLU(w₂x)` with a Gaussian
//! likelihood and prior N(0, s²I): its evidence ln p(D) by 2-D quadrature, the ELBO of a
//! mean-field Gaussian q in closed form, and I(g; ω) of q by quadrature, so that
//! `KL(q ‖ p(ω | D)) = ln p(D) − L` and `KL(q^G ‖ p(ω | D)) = ln p(D) − L − I` are known.
//!
//! Everything goes through the data's sufficient statistics: with `a = ReLU(w₁) +
//! ReLU(w₂)` and `b = ReLU(−w₁) + ReLU(−w₂)`, `f(x) = a x` for `x > 0` and `b |x|` for
//! `x < 0`, so `Σ (y − f)² = Syy − 2a S⁺ + a² X⁺ − 2b S⁻ + b² X⁻`.

use statrs::function::erf::erfc;

use crate::data::{Dataset, Targets};
use crate::error::{Error, Result};
use crate::estimators::LnSumExp;
use crate::study::experiment::gaussian_expectation_2d;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// The tractable model on one data set: its sufficient statistics, noise precision τ and
/// prior scale s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TwoUnitModel {
    n: f64,
    syy: f64,
    /// `Σ_{x>0} x y`, `Σ_{x>0} x²`.
    s_pos: f64,
    x_pos: f64,
    /// `Σ_{x<0} |x| y`, `Σ_{x<0} x²`.
    s_neg: f64,
    x_neg: f64,
    tau: f64,
    prior: f64,
}

/// The evidence, the ELBOs and the KLs of one trained q, in nats (not per point).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct GroundTruth {
    #[serde(with = "crate::journal::exact")]
    pub(crate) ln_evidence: f64,
    /// L of q, exactly.
    #[serde(with = "crate::journal::exact")]
    pub(crate) elbo: f64,
    /// I(g; ω) of q by quadrature.
    #[serde(with = "crate::journal::exact")]
    pub(crate) mi: f64,
}

impl GroundTruth {
    /// `KL(q ‖ p(ω | D)) = ln p(D) − L`.
    pub(crate) fn kl(&self) -> f64 {
        self.ln_evidence - self.elbo
    }

    /// `KL(q^G ‖ p(ω | D)) = ln p(D) − L^G`, `L^G = L + I`.
    pub(crate) fn kl_g(&self) -> f64 {
        self.ln_evidence - self.elbo - self.mi
    }
}

impl TwoUnitModel {
    /// The model on `data` (one input, one target).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for data of another shape, or a precision or prior
    /// scale that is not positive.
    pub(crate) fn new(data: &Dataset, tau: f64, prior: f64) -> Result<Self> {
        let Targets::Values(y) = data.targets() else {
            return Err(Error::invalid(
                "data",
                "classes",
                "the model needs real targets",
            ));
        };
        if data.x().ncols() != 1 || y.ncols() != 1 {
            return Err(Error::invalid(
                "data",
                data.x().ncols(),
                "one input and one target",
            ));
        }
        if !(tau > 0.0 && prior > 0.0) {
            return Err(Error::invalid("precision or prior", tau, "must be > 0"));
        }
        let mut m = TwoUnitModel {
            n: data.len() as f64,
            syy: 0.0,
            s_pos: 0.0,
            x_pos: 0.0,
            s_neg: 0.0,
            x_neg: 0.0,
            tau,
            prior,
        };
        for r in 0..data.len() {
            let (x, t) = (data.x()[(r, 0)], y[(r, 0)]);
            m.syy += t * t;
            if x > 0.0 {
                m.s_pos += x * t;
                m.x_pos += x * x;
            } else if x < 0.0 {
                m.s_neg += -x * t;
                m.x_neg += x * x;
            }
        }
        Ok(m)
    }

    /// `ln p(D | w) + ln p(w)`.
    pub(crate) fn ln_joint(&self, w: [f64; 2]) -> f64 {
        let a = w[0].max(0.0) + w[1].max(0.0);
        let b = (-w[0]).max(0.0) + (-w[1]).max(0.0);
        let sq = self.syy - 2.0 * a * self.s_pos + a * a * self.x_pos - 2.0 * b * self.s_neg
            + b * b * self.x_neg;
        self.const_ll()
            - 0.5 * self.tau * sq
            - self.ln_prior_norm()
            - 0.5 * (w[0] * w[0] + w[1] * w[1]) / (self.prior * self.prior)
    }

    fn const_ll(&self) -> f64 {
        0.5 * self.n * (self.tau.ln() - LN_2PI)
    }

    fn ln_prior_norm(&self) -> f64 {
        LN_2PI + 2.0 * self.prior.ln()
    }

    /// ln p(D) by the trapezoid rule on a square grid: centred on 0, wide enough for the
    /// modes (`|w| ≤ S⁺/X⁺` or `S⁻/X⁻`) plus 14 posterior standard deviations, with a step
    /// of a tenth of the narrowest of them (the rule's error for a Gaussian bump falls
    /// like `e^{−2π² · 100}`; the kinks on the axes lie where the posterior has no mass
    /// unless the data pin a weight at 0), summed in log space.
    pub(crate) fn ln_evidence(&self) -> f64 {
        let sd = |x: f64| 1.0 / (self.tau * x + 1.0 / (self.prior * self.prior)).sqrt();
        let (sd_pos, sd_neg) = (sd(self.x_pos), sd(self.x_neg));
        let mode = |s: f64, x: f64| (s / x.max(f64::MIN_POSITIVE)).abs();
        let reach = mode(self.s_pos, self.x_pos).max(mode(self.s_neg, self.x_neg))
            + 14.0 * sd_pos.max(sd_neg);
        let h = 0.1 * sd_pos.min(sd_neg);
        let half = (reach / h).ceil() as i64;
        let mut acc = LnSumExp::default();
        let mut row = Vec::with_capacity(2 * half as usize + 1);
        for i in -half..=half {
            let w1 = i as f64 * h;
            row.clear();
            row.extend((-half..=half).map(|j| self.ln_joint([w1, j as f64 * h])));
            acc.push_all(&mut row);
        }
        acc.value() + 2.0 * h.ln()
    }

    /// L = E_q[ln p(D | w)] − KL(q ‖ p(w)) for `q = N(μ, diag σ²)`, exactly: the ReLU of a
    /// Gaussian has the moments `E[ReLU(w)] = μΦ(μ/σ) + σφ(μ/σ)` and `E[ReLU(w)²] =
    /// (μ² + σ²)Φ(μ/σ) + μσφ(μ/σ)`, and `ReLU(w₁)`, `ReLU(w₂)` are independent.
    pub(crate) fn elbo(&self, mu: [f64; 2], sigma: [f64; 2]) -> f64 {
        let relu = |m: f64, s: f64| {
            let z = m / s;
            let cdf = 0.5 * erfc(-z / std::f64::consts::SQRT_2);
            let pdf = (-0.5 * z * z - 0.5 * LN_2PI).exp();
            (m * cdf + s * pdf, (m * m + s * s) * cdf + m * s * pdf)
        };
        // Moments of a = ReLU(w₁) + ReLU(w₂) and b = ReLU(−w₁) + ReLU(−w₂), and E[ab].
        let (p1, p2) = (relu(mu[0], sigma[0]), relu(mu[1], sigma[1]));
        let (n1, n2) = (relu(-mu[0], sigma[0]), relu(-mu[1], sigma[1]));
        let (ea, ea2) = (p1.0 + p2.0, p1.1 + p2.1 + 2.0 * p1.0 * p2.0);
        let (eb, eb2) = (n1.0 + n2.0, n1.1 + n2.1 + 2.0 * n1.0 * n2.0);
        let sq = self.syy - 2.0 * ea * self.s_pos + ea2 * self.x_pos - 2.0 * eb * self.s_neg
            + eb2 * self.x_neg;
        let s2 = self.prior * self.prior;
        let kl_prior: f64 = (0..2)
            .map(|i| {
                0.5 * ((sigma[i] * sigma[i] + mu[i] * mu[i]) / s2
                    - 1.0
                    - (sigma[i] * sigma[i] / s2).ln())
            })
            .sum();
        self.const_ll() - 0.5 * self.tau * sq - kl_prior
    }

    /// Everything of [`GroundTruth`] for `q = N(μ, diag σ²)`.
    pub(crate) fn ground_truth(&self, mu: [f64; 2], sigma: [f64; 2]) -> GroundTruth {
        GroundTruth {
            ln_evidence: self.ln_evidence(),
            elbo: self.elbo(mu, sigma),
            mi: swap_mi(mu, sigma),
        }
    }

    /// ln p(D) another way, for the tests: per quadrant of (w₁, w₂). Where the weights
    /// have opposite signs each fits one half of the data alone and the integral is a
    /// product of two one-sided Gaussian integrals (closed form); where they share a sign
    /// only their sum u = w₁ + w₂ is seen by the data, and integrating out w₁ − w₂ leaves
    /// the 1-D integral `∫₀^∞ e^{τSu − (τX/2 + 1/(4s²))u²} s√π erf(u/(2s)) du` (Simpson).
    #[cfg(test)]
    fn ln_evidence_by_quadrants(&self) -> f64 {
        let base = self.const_ll() - 0.5 * self.tau * self.syy - self.ln_prior_norm();
        let s2 = self.prior * self.prior;
        // ∫₀^∞ exp(B a − A a²/2) da.
        let one_sided = |s: f64, x: f64| {
            let (a, b) = (self.tau * x + 1.0 / s2, self.tau * s);
            0.5 * (2.0 * std::f64::consts::PI / a).ln()
                + b * b / (2.0 * a)
                + (0.5 * erfc(-(b / a.sqrt()) / std::f64::consts::SQRT_2)).ln()
        };
        let mixed = one_sided(self.s_pos, self.x_pos) + one_sided(self.s_neg, self.x_neg);
        let same = |s: f64, x: f64| {
            let c = 0.5 * self.tau * x + 0.25 / s2;
            let peak = (self.tau * s / (2.0 * c)).max(0.0);
            let end = peak + 40.0 / c.sqrt();
            let g = |u: f64| self.tau * s * u - c * u * u;
            let top = g(peak);
            let sum = simpson(
                &|u| {
                    (g(u) - top).exp()
                        * self.prior
                        * std::f64::consts::PI.sqrt()
                        * statrs::function::erf::erf(u / (2.0 * self.prior))
                },
                0.0,
                end,
                200_000,
            );
            top + sum.ln()
        };
        let parts = [
            mixed,
            mixed,
            same(self.s_pos, self.x_pos),
            same(self.s_neg, self.x_neg),
        ];
        let m = parts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        base + m + parts.iter().map(|p| (p - m).exp()).sum::<f64>().ln()
    }
}

/// I(g; ω) for q = N(μ, diag σ²) over two weights and G the swap:
/// `E_q[ln 2 − ln(1 + q(Pw)/q(w))]`, the integrand smooth, by
/// [`gaussian_expectation_2d`]'s quadrature.
pub(crate) fn swap_mi(mu: [f64; 2], sigma: [f64; 2]) -> f64 {
    let ln_q = |w: [f64; 2]| -> f64 {
        (0..2)
            .map(|i| -0.5 * ((w[i] - mu[i]) / sigma[i]).powi(2))
            .sum()
    };
    gaussian_expectation_2d(mu, [sigma[0], 0.0, sigma[1]], &|w| {
        let d = ln_q([w[1], w[0]]) - ln_q(w);
        // ln(1 + e^d) without overflow.
        let softplus = if d > 0.0 {
            d + (-d).exp().ln_1p()
        } else {
            d.exp().ln_1p()
        };
        std::f64::consts::LN_2 - softplus
    })
}

/// Simpson's rule for `∫_a^b f` with `n` (even) intervals, for the tests' independent
/// computations.
#[cfg(test)]
fn simpson(f: &dyn Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let inner: f64 = (1..n)
        .map(|k| f(a + k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 })
        .sum();
    (f(a) + f(b) + inner) * h / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::abs_regression;
    use crate::rng::{fill_standard_normal, stream};

    fn model(alpha: f64, noise: f64, tau: f64, prior: f64, seed: u64) -> TwoUnitModel {
        TwoUnitModel::new(
            &abs_regression(100, alpha, noise, seed).unwrap(),
            tau,
            prior,
        )
        .unwrap()
    }

    /// The grid's ln p(D) against the quadrant decomposition (closed forms and a 1-D
    /// Simpson rule), over the settings the studies use.
    #[test]
    fn the_evidence_on_the_grid_is_the_evidence_by_quadrants() {
        for (alpha, noise, tau, prior) in [
            (0.05, 0.0, 100.0, 1.0),
            (0.2, 0.0, 100.0, 1.0),
            (0.1, 0.3, 4.0, 0.1),
            (0.1, 0.0, 10.0, 10.0),
            (0.1, 0.3, 1.0, 1.0),
        ] {
            let m = model(alpha, noise, tau, prior, 3);
            let (grid, quadrants) = (m.ln_evidence(), m.ln_evidence_by_quadrants());
            assert!(
                (grid - quadrants).abs() < 1e-7 * quadrants.abs().max(1.0),
                "α {alpha} τ {tau} s {prior}: {grid} vs {quadrants}"
            );
        }
    }

    /// The closed-form ELBO against a plain Monte Carlo average of ln p(D, w) − ln q(w)
    /// over 400,000 draws of q (its SE is printed in the message).
    #[test]
    fn the_closed_form_elbo_is_the_monte_carlo_average() {
        let m = model(0.1, 0.3, 10.0, 1.0, 5);
        for (mu, sigma) in [
            ([0.1, -0.1], [0.01, 0.02]),
            ([0.02, 0.01], [0.05, 0.08]),
            ([-0.3, 0.05], [0.2, 0.1]),
        ] {
            let closed = m.elbo(mu, sigma);
            let n = 400_000;
            let (mut sum, mut sum2) = (0.0, 0.0);
            let mut e = [0.0; 2];
            for d in 0..n {
                fill_standard_normal(&mut stream(9, d), &mut e);
                let w = [mu[0] + sigma[0] * e[0], mu[1] + sigma[1] * e[1]];
                let ln_q: f64 = (0..2)
                    .map(|i| -0.5 * e[i] * e[i] - 0.5 * LN_2PI - sigma[i].ln())
                    .sum();
                let v = m.ln_joint(w) - ln_q;
                sum += v;
                sum2 += v * v;
            }
            let mean = sum / n as f64;
            let se = ((sum2 / n as f64 - mean * mean) / n as f64).sqrt();
            assert!(
                (mean - closed).abs() < 4.0 * se + 1e-9,
                "{mu:?} {sigma:?}: closed {closed}, Monte Carlo {mean} ± {se}"
            );
        }
    }

    /// I of the swap: 0 for a q on the diagonal (q(Pw) = q(w)), ln 2 for units far apart,
    /// and in between, for equal σ, a 1-D integral along the direction that separates q
    /// from its swap (Simpson).
    #[test]
    fn the_swap_information_at_its_limits_and_in_between() {
        assert!(swap_mi([0.3, 0.3], [0.1, 0.1]).abs() < 1e-12);
        assert!((swap_mi([1.0, -1.0], [0.05, 0.05]) - std::f64::consts::LN_2).abs() < 1e-12);
        // Equal σ: ln q(Pw) − ln q(w) = −δ t − δ²/2 with t ~ N(0, 1) along μ − Pμ and
        // δ = ‖μ − Pμ‖/σ, so I = ln 2 − E[ln(1 + e^{−δt − δ²/2})].
        let (mu, s) = ([0.12, 0.02], 0.07);
        let delta = ((mu[0] - mu[1]) * std::f64::consts::SQRT_2).abs() / s;
        let acc = simpson(
            &|t| {
                let pdf = (-0.5 * t * t - 0.5 * LN_2PI).exp();
                pdf * (-delta * t - 0.5 * delta * delta).exp().ln_1p()
            },
            -12.0,
            12.0,
            20_000,
        );
        let one_d = std::f64::consts::LN_2 - acc;
        let two_d = swap_mi(mu, [s, s]);
        assert!((one_d - two_d).abs() < 1e-10, "{one_d} vs {two_d}");
    }

    /// The library's Monte Carlo ELBO of the two-unit net (what training reports) agrees
    /// with the closed form within its standard error, on the trained-like q of the
    /// reproduction (σ ≈ 0.05: a large per-draw spread).
    #[test]
    fn the_library_elbo_agrees_with_the_closed_form() {
        let data = abs_regression(100, 0.1, 0.0, 11).unwrap();
        let m = TwoUnitModel::new(&data, 100.0, 1.0).unwrap();
        let arch = crate::study::experiments::tractable_bnn::two_unit_arch().unwrap();
        for (mu, sigma) in [([0.1, -0.1], [0.05, 0.04]), ([0.02, -0.06], [0.01, 0.03])] {
            let q = crate::posterior::MeanFieldGaussian::from_mu_sigma(
                arch.clone(),
                mu.to_vec(),
                sigma.to_vec(),
            )
            .unwrap();
            let est = crate::elbo::elbo(
                &q,
                crate::weights::Likelihood::Gaussian { precision: 100.0 },
                &data,
                1.0,
                100_000,
                3,
                &crate::resources::Limits::default(),
            )
            .unwrap();
            let closed = m.elbo(mu, sigma);
            assert!(
                (est.elbo - closed).abs() < 4.0 * est.elbo_per_point_std_err * 100.0 + 1e-9,
                "{mu:?} {sigma:?}: library {} ± {}, closed form {closed}",
                est.elbo,
                est.elbo_per_point_std_err * 100.0
            );
        }
    }

    /// Both KLs are ≥ 0 for any q, and KL(q^G ‖ p) ≤ KL(q ‖ p).
    #[test]
    fn the_kls_are_nonnegative_and_symmetrizing_lowers_them() {
        let m = model(0.05, 0.0, 100.0, 1.0, 7);
        for (mu, sigma) in [
            ([0.05, -0.05], [0.002, 0.002]),
            ([0.0, 0.0], [0.05, 0.05]),
            ([0.03, 0.01], [0.03, 0.01]),
        ] {
            let g = m.ground_truth(mu, sigma);
            assert!(g.kl() >= 0.0 && g.kl_g() >= 0.0, "{g:?}");
            assert!(g.kl_g() <= g.kl());
        }
    }
}
