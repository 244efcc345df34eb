//! The likelihood of a network's outputs: Gaussian with a fixed precision, or softmax
//! over classes. Part of a model's description (a posterior file records it); its value
//! and gradient are the ELBO's ([`crate::elbo`]).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The observation model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Likelihood {
    /// `y ~ N(f(x), 1/precision)` per output, fixed noise precision.
    Gaussian {
        /// Noise precision τ > 0.
        precision: f64,
    },
    /// `y ~ Categorical(softmax f(x))`.
    Softmax,
}

impl Likelihood {
    /// Checks the parameters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for a non-positive or non-finite precision.
    pub fn check(self) -> Result<Self> {
        if let Likelihood::Gaussian { precision } = self
            && !(precision.is_finite() && precision > 0.0)
        {
            return Err(Error::invalid(
                "precision",
                precision,
                "must be finite and > 0",
            ));
        }
        Ok(self)
    }

    /// The name used in files (`gaussian` or `softmax`).
    pub fn name(self) -> &'static str {
        match self {
            Likelihood::Gaussian { .. } => "gaussian",
            Likelihood::Softmax => "softmax",
        }
    }
}

impl fmt::Display for Likelihood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Likelihood::Gaussian { precision } => write!(f, "gaussian(precision={precision})"),
            Likelihood::Softmax => f.write_str("softmax"),
        }
    }
}

impl FromStr for Likelihood {
    type Err = Error;
    /// `softmax`, `gaussian` (precision 1) or `gaussian:<precision>`.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        if t == "softmax" {
            return Ok(Likelihood::Softmax);
        }
        if t == "gaussian" {
            return Ok(Likelihood::Gaussian { precision: 1.0 });
        }
        if let Some(p) = t.strip_prefix("gaussian:") {
            let precision: f64 = p
                .parse()
                .map_err(|_| Error::invalid("likelihood", s, "precision is not a number"))?;
            return Likelihood::Gaussian { precision }.check();
        }
        Err(Error::invalid(
            "likelihood",
            s,
            "expected `softmax`, `gaussian` or `gaussian:<precision>`",
        ))
    }
}
