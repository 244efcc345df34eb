//! The closed forms of `q` against the prior: entropy, `KL(q ‖ N(0, s²I))` and its
//! gradient, and the chain rule from σ to ρ.

use crate::error::{Error, Result};

use super::{HALF_LN_2PI, MeanFieldGaussian};

impl MeanFieldGaussian {
    /// Converts a gradient with respect to σ into one with respect to ρ, in place.
    ///
    /// # Panics
    ///
    /// If `grad` is not of length P.
    pub fn sigma_grad_to_rho_in_place(&self, grad: &mut [f64]) {
        assert_eq!(grad.len(), self.n_params());
        for (g, &slope) in grad.iter_mut().zip(&self.dsigma_drho) {
            *g *= slope;
        }
    }

    /// `weight × ∇KL(q ‖ N(0, s²I))` added into the buffers: `∂KL/∂μ = μ/s²`,
    /// `∂KL/∂σ = σ/s² − 1/σ`.
    ///
    /// # Panics
    ///
    /// If a buffer is not of length P.
    pub fn add_kl_grad(
        &self,
        prior_scale: f64,
        weight: f64,
        grad_mu: &mut [f64],
        grad_sigma: &mut [f64],
    ) {
        assert_eq!(grad_mu.len(), self.n_params());
        assert_eq!(grad_sigma.len(), self.n_params());
        let inv_s2 = 1.0 / (prior_scale * prior_scale);
        let (mu, sigma, inv_sigma) = (&self.mu, &self.sigma, &self.inv_sigma);
        // Plain IEEE arithmetic: AVX code gives the same bits (see `linalg::with_avx`).
        crate::linalg::with_avx(
            #[inline(always)]
            || {
                for (((g_mu, g_sigma), &m), (&s, &is)) in grad_mu
                    .iter_mut()
                    .zip(grad_sigma.iter_mut())
                    .zip(mu)
                    .zip(sigma.iter().zip(inv_sigma))
                {
                    *g_mu += weight * m * inv_s2;
                    *g_sigma += weight * (s * inv_s2 - is);
                }
            },
        );
    }

    /// Entropy `H(q) = Σ ln σ_p + (P/2)(1 + ln 2π)`.
    pub fn entropy(&self) -> f64 {
        self.sum_ln_sigma + self.n_params() as f64 * (0.5 + HALF_LN_2PI)
    }

    /// `KL(q ‖ N(0, s²I))` in closed form.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] unless `prior_scale` is in [1e-30, 1e30] (see
    /// [`LARGEST`](super::LARGEST)).
    pub fn kl_to_prior(&self, prior_scale: f64) -> Result<f64> {
        if !(1.0 / super::LARGEST..=super::LARGEST).contains(&prior_scale) {
            return Err(Error::invalid(
                "prior_scale",
                prior_scale,
                "must be a number in [1e-30, 1e30]",
            ));
        }
        let inv_2s2 = 0.5 / (prior_scale * prior_scale);
        let ln_s = prior_scale.ln();
        Ok(self
            .mu
            .iter()
            .zip(&self.sigma)
            .zip(&self.ln_sigma)
            .map(|((m, s), ln_sigma)| ln_s - ln_sigma + (s * s + m * m) * inv_2s2 - 0.5)
            .sum())
    }
}
