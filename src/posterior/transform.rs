//! The map `ρ ↦ σ` of the posterior's scale parameters (softplus or exp) with its
//! inverse and slope, evaluated stably in f64.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// `softplus(x) = ln(1 + eˣ)`, stable for every finite `x`.
#[inline]
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// The inverse of [`softplus`], `ln(eʸ − 1)`, for `y > 0`.
#[inline]
pub fn softplus_inverse(y: f64) -> f64 {
    if y > 20.0 {
        y + (-(-y).exp_m1()).ln()
    } else {
        y.exp_m1().ln()
    }
}

/// The derivative of [`softplus`], the logistic function `1/(1 + e^{−x})`.
#[inline]
pub fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// How σ is computed from the unconstrained ρ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SigmaTransform {
    /// `σ = ln(1 + e^ρ)` (the default; common PyTorch BNN libraries).
    #[default]
    Softplus,
    /// `σ = e^ρ`.
    Exp,
}

impl SigmaTransform {
    /// σ from ρ.
    #[inline]
    pub fn sigma(self, rho: f64) -> f64 {
        match self {
            SigmaTransform::Softplus => softplus(rho),
            SigmaTransform::Exp => rho.exp(),
        }
    }

    /// ρ from σ > 0.
    #[inline]
    pub fn rho(self, sigma: f64) -> f64 {
        match self {
            SigmaTransform::Softplus => softplus_inverse(sigma),
            SigmaTransform::Exp => sigma.ln(),
        }
    }

    /// dσ/dρ.
    #[inline]
    pub fn dsigma_drho(self, rho: f64) -> f64 {
        match self {
            SigmaTransform::Softplus => logistic(rho),
            SigmaTransform::Exp => rho.exp(),
        }
    }

    /// `(σ, dσ/dρ)` from one exponential: the same bits as [`sigma`](Self::sigma) and
    /// [`dsigma_drho`](Self::dsigma_drho), which for softplus both evaluate `e^{−|ρ|}`
    /// (`σ = ln(1 + e^ρ)`, `dσ/dρ = e^ρ/(1 + e^ρ)` for ρ ≤ 0; `σ = ρ + ln(1 + e^{−ρ})`,
    /// `dσ/dρ = 1/(1 + e^{−ρ})` for ρ > 0).
    #[inline]
    pub fn sigma_and_slope(self, rho: f64) -> (f64, f64) {
        let (sigma, e) = self.sigma_and_exp(rho);
        (sigma, self.slope_from(rho, sigma, e))
    }

    /// The transcendental half of [`sigma_and_slope`](Self::sigma_and_slope): σ and the
    /// exponential it came from (`e^{−|ρ|}` for softplus, `e^ρ` for exp).
    #[inline]
    pub(super) fn sigma_and_exp(self, rho: f64) -> (f64, f64) {
        match self {
            SigmaTransform::Softplus if rho > 0.0 => {
                let e = (-rho).exp();
                (rho + e.ln_1p(), e)
            }
            SigmaTransform::Softplus => {
                let e = rho.exp();
                (e.ln_1p(), e)
            }
            SigmaTransform::Exp => {
                let e = rho.exp();
                (e, e)
            }
        }
    }

    /// The arithmetic half of [`sigma_and_slope`](Self::sigma_and_slope): dσ/dρ from ρ,
    /// σ and the exponential of [`sigma_and_exp`](Self::sigma_and_exp) (vectorizable).
    #[inline]
    pub(super) fn slope_from(self, rho: f64, sigma: f64, e: f64) -> f64 {
        match self {
            SigmaTransform::Softplus if rho > 0.0 => 1.0 / (1.0 + e),
            // At ρ = 0, e/(1 + e) = 1/(1 + e) = ½ exactly, as `logistic` gives.
            SigmaTransform::Softplus => e / (1.0 + e),
            SigmaTransform::Exp => sigma,
        }
    }

    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SigmaTransform::Softplus => "softplus",
            SigmaTransform::Exp => "exp",
        }
    }
}

impl fmt::Display for SigmaTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SigmaTransform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "softplus" => Ok(SigmaTransform::Softplus),
            "exp" => Ok(SigmaTransform::Exp),
            _ => Err(Error::UnknownSigmaTransform(s.to_string())),
        }
    }
}
