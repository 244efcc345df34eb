//! The mean-field Gaussian variational posterior (docs/mathematics.md §3, eqs. 4–7).
//!
//! `q(ω) = N(μ, diag σ²)` with `σ = softplus(ρ) = ln(1 + e^ρ)` (or `σ = e^ρ`). Closed
//! forms, all in log space and f64:
//!
//! * `ln q(v) = Σ_p [−(v_p − μ_p)²/(2σ_p²) − ln σ_p] − (P/2) ln 2π`
//! * `H(q) = Σ_p ln σ_p + (P/2)(1 + ln 2π)`
//! * `KL(q ‖ N(0, s²I)) = Σ_p [ln(s/σ_p) + (σ_p² + μ_p²)/(2s²) − 1/2]`
//! * `(g·q)(v) = q(g⁻¹·v) = N(v; g·μ, diag (g·σ)²)`.
//!
//! [`MeanFieldGaussian::ln_q_inverse_permuted`] evaluates `ln q(g⁻¹·v)` straight from
//! an [`ActionMap`], without building the permuted vector.

use crate::error::{Error, Result};
use crate::symmetry::{ActionMap, GroupElement, WeightSpace};
use crate::weights::Arch;

mod density;
mod divergence;
mod transform;

pub use transform::{SigmaTransform, logistic, softplus, softplus_inverse};

/// The largest |μ| a posterior takes, and the range of σ: [1/`LARGEST`, `LARGEST`].
/// Within them every squared standardized distance `((v − μ_i)/σ_j)²` between two units'
/// weights is below 1e182, so log densities summed over up to 1e100 weights stay finite;
/// beyond them a density (or σ² in the KL) can overflow f64 into ∞ and a difference of two
/// into NaN. No trained posterior comes near (σ = 1e-30 is ρ ≈ −69).
pub const LARGEST: f64 = 1e30;

/// `½ ln 2π`.
pub const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// A mean-field Gaussian posterior over the variational weights of a [`WeightSpace`]: an
/// MLP ([`Arch`]) or tensors under a permutation spec.
///
/// # Examples
///
/// ```
/// use mi_est::posterior::MeanFieldGaussian;
/// use mi_est::weights::Arch;
/// let arch = Arch::builder(vec![2, 3, 1]).check()?;
/// let q = MeanFieldGaussian::from_mu_sigma(arch, vec![0.0; 13], vec![1.0; 13])?;
/// // H(N(0, I_13)) = 13/2 (1 + ln 2π)
/// assert!((q.entropy() - 6.5 * (1.0 + (2.0 * std::f64::consts::PI).ln())).abs() < 1e-12);
/// # Ok::<(), mi_est::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MeanFieldGaussian {
    space: WeightSpace,
    mu: Vec<f64>,
    rho: Vec<f64>,
    transform: SigmaTransform,
    sigma: Vec<f64>,
    inv_sigma: Vec<f64>,
    ln_sigma: Vec<f64>,
    dsigma_drho: Vec<f64>,
    sum_ln_sigma: f64,
}

impl MeanFieldGaussian {
    /// `N(μ, diag softplus(ρ)²)`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if μ or ρ is not of length P;
    /// [`Error::InvalidParameter`] naming the index for a non-finite μ or ρ, or a ρ whose
    /// σ underflows (is not a normal positive f64).
    pub fn new(space: impl Into<WeightSpace>, mu: Vec<f64>, rho: Vec<f64>) -> Result<Self> {
        Self::with_transform(space, mu, rho, SigmaTransform::Softplus)
    }

    /// `N(μ, diag transform(ρ)²)`.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_transform(
        space: impl Into<WeightSpace>,
        mu: Vec<f64>,
        rho: Vec<f64>,
        transform: SigmaTransform,
    ) -> Result<Self> {
        let space = space.into();
        space.check_len("mu", &mu)?;
        space.check_len("rho", &rho)?;
        if let Some(p) = mu.iter().position(|m| !m.is_finite()) {
            return Err(Error::invalid(format!("mu[{p}]"), mu[p], "must be finite"));
        }
        if let Some(p) = mu.iter().position(|m| m.abs() > LARGEST) {
            return Err(Error::invalid(
                format!("mu[{p}]"),
                Error::num(mu[p]),
                "is beyond ±1e30, where densities overflow f64",
            ));
        }
        let n = rho.len();
        let mut q = MeanFieldGaussian {
            space,
            mu,
            rho,
            transform,
            sigma: vec![0.0; n],
            inv_sigma: vec![0.0; n],
            ln_sigma: vec![0.0; n],
            dsigma_drho: vec![0.0; n],
            sum_ln_sigma: 0.0,
        };
        q.update_in_place(|_, _, _| {})?;
        Ok(q)
    }

    /// Applies `step(start, μ[start..end], ρ[start..end])` to consecutive chunks of the
    /// parameters and refreshes σ, 1/σ, ln σ, dσ/dρ and `Σ ln σ` chunk by chunk while
    /// they are in cache: the trainer's fused optimizer step. The values are those of
    /// building the posterior anew from the updated (μ, ρ) with
    /// [`with_transform`](Self::with_transform), bit for bit.
    ///
    /// Only the exponential and `ln(1 + ·)` of σ run one at a time (the standard
    /// library's, so σ has the bits of the scalar formula); ln σ is
    /// [`crate::vmath::ln`], and the rest (and whatever `step` does on its slices) is
    /// plain IEEE arithmetic that the compiler vectorizes with the same results.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the index of the first non-finite μ or ρ, or of
    /// a ρ whose σ underflows, after the update. The posterior is then partly updated
    /// and must be discarded.
    pub fn update_in_place(
        &mut self,
        mut step: impl FnMut(usize, &mut [f64], &mut [f64]),
    ) -> Result<()> {
        const CHUNK: usize = 256;
        let n = self.mu.len();
        let mut sum = -0.0;
        let mut exps = [0.0; CHUNK];
        for start in (0..n).step_by(CHUNK) {
            let end = (start + CHUNK).min(n);
            step(start, &mut self.mu[start..end], &mut self.rho[start..end]);
            let exps = &mut exps[..end - start];
            let transform = self.transform;
            // One at a time: σ and its exponential.
            for ((e, s), &r) in exps
                .iter_mut()
                .zip(&mut self.sigma[start..end])
                .zip(&self.rho[start..end])
            {
                (*s, *e) = transform.sigma_and_exp(r);
            }
            // ln σ vectorized (within 1 ulp of `f64::ln`); Σ ln σ in order.
            let ln_sigma = &mut self.ln_sigma[start..end];
            crate::linalg::with_avx2(
                #[inline(always)]
                || {
                    for (l, &s) in ln_sigma.iter_mut().zip(&self.sigma[start..end]) {
                        *l = crate::vmath::ln(s);
                    }
                },
            );
            for &l in ln_sigma.iter() {
                sum += l;
            }
            // Vectorizable: dσ/dρ, 1/σ, and the validity checks.
            let slopes = &mut self.dsigma_drho[start..end];
            let invs = &mut self.inv_sigma[start..end];
            let (sigma, rho, mu) = (
                &self.sigma[start..end],
                &self.rho[start..end],
                &self.mu[start..end],
            );
            let valid = crate::linalg::with_avx(
                #[inline(always)]
                || {
                    let mut valid = true;
                    for ((((slope, inv), &s), &e), (&r, &m)) in slopes
                        .iter_mut()
                        .zip(invs)
                        .zip(sigma)
                        .zip(exps.iter())
                        .zip(rho.iter().zip(mu))
                    {
                        *slope = transform.slope_from(r, s, e);
                        *inv = 1.0 / s;
                        valid &= m.is_finite()
                            & r.is_finite()
                            & s.is_normal()
                            & (m.abs() <= LARGEST)
                            & (1.0 / LARGEST..=LARGEST).contains(&s);
                    }
                    valid
                },
            );
            if !valid {
                return Err(self.first_invalid(start..end));
            }
        }
        self.sum_ln_sigma = sum;
        Ok(())
    }

    /// The error for the first invalid parameter in `range` (see
    /// [`update_in_place`](Self::update_in_place)).
    fn first_invalid(&self, range: std::ops::Range<usize>) -> Error {
        for p in range {
            let (m, r, s) = (self.mu[p], self.rho[p], self.sigma[p]);
            if !m.is_finite() {
                return Error::invalid(format!("mu[{p}]"), m, "must be finite");
            }
            if !r.is_finite() {
                return Error::invalid(format!("rho[{p}]"), r, "must be finite");
            }
            if m.abs() > LARGEST {
                return Error::invalid(
                    format!("mu[{p}]"),
                    Error::num(m),
                    "is beyond ±1e30, where densities overflow f64",
                );
            }
            let what = if s.is_infinite() {
                "overflows"
            } else if !s.is_normal() {
                "underflows"
            } else if s > LARGEST {
                "is above 1e30, where densities overflow f64"
            } else if s < 1.0 / LARGEST {
                "is below 1e-30, where densities overflow f64"
            } else {
                continue;
            };
            return Error::invalid(
                format!("rho[{p}]"),
                Error::num(r),
                format!("sigma = {}(rho) = {s:e} {what}", self.transform),
            );
        }
        unreachable!("called for a range with an invalid parameter")
    }

    /// `N(μ, diag σ²)` with ρ = softplus⁻¹(σ).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the index for a NaN, infinite, zero or negative
    /// σ (or one whose ρ round trip underflows), or a non-finite μ;
    /// [`Error::LengthMismatch`] for a wrong length.
    pub fn from_mu_sigma(
        space: impl Into<WeightSpace>,
        mu: Vec<f64>,
        sigma: Vec<f64>,
    ) -> Result<Self> {
        let space = space.into();
        space.check_len("sigma", &sigma)?;
        if let Some(p) = sigma.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::invalid(
                format!("sigma[{p}]"),
                sigma[p],
                "must be finite and > 0",
            ));
        }
        if let Some(p) = sigma
            .iter()
            .position(|s| !(1.0 / LARGEST..=LARGEST).contains(s))
        {
            return Err(Error::invalid(
                format!("sigma[{p}]"),
                Error::num(sigma[p]),
                "is outside [1e-30, 1e30], where densities overflow f64",
            ));
        }
        let rho = sigma.iter().map(|&s| softplus_inverse(s)).collect();
        Self::new(space, mu, rho)
    }

    /// The MLP, if the posterior's weight space is given by widths (a space given by a
    /// permutation spec has no forward pass here).
    pub fn arch(&self) -> Option<&Arch> {
        self.space.arch()
    }

    /// The MLP for the forward pass (ELBO, predictions, training).
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedArchitecture`] for a space given by a permutation spec.
    pub fn mlp(&self) -> Result<&Arch> {
        self.space
            .arch()
            .ok_or_else(|| Error::UnsupportedArchitecture {
                estimator: "the forward pass (ELBO, predictions, training)",
                needs: "an MLP given by its widths",
                architecture: self.space.describe(),
            })
    }

    /// The weight space: the layout of ω and the group acting on it.
    pub fn space(&self) -> &WeightSpace {
        &self.space
    }

    /// Number of parameters P.
    pub fn n_params(&self) -> usize {
        self.mu.len()
    }

    /// μ.
    pub fn mu(&self) -> &[f64] {
        &self.mu
    }

    /// ρ.
    pub fn rho(&self) -> &[f64] {
        &self.rho
    }

    /// σ = transform(ρ).
    pub fn sigma(&self) -> &[f64] {
        &self.sigma
    }

    /// 1/σ.
    pub fn inv_sigma(&self) -> &[f64] {
        &self.inv_sigma
    }

    /// ln σ (kept with σ, so that its users need no logarithms of their own).
    pub fn ln_sigma(&self) -> &[f64] {
        &self.ln_sigma
    }

    /// dσ/dρ, the slope of the σ transform at each ρ.
    pub fn dsigma_drho(&self) -> &[f64] {
        &self.dsigma_drho
    }

    /// The σ transform.
    pub fn transform(&self) -> SigmaTransform {
        self.transform
    }

    /// `Σ_p ln σ_p`.
    pub fn sum_ln_sigma(&self) -> f64 {
        self.sum_ln_sigma
    }

    /// The log normalizer `−Σ ln σ_p − (P/2) ln 2π` shared by every ln q.
    #[inline]
    pub fn ln_normalizer(&self) -> f64 {
        -self.sum_ln_sigma - self.n_params() as f64 * HALF_LN_2PI
    }
}

#[cfg(test)]
mod tests;
