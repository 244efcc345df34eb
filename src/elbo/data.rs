//! The likelihood's value and gradient, and the ELBO (`train` feature); the data sets themselves are [`crate::data::Dataset`].

use faer::Mat;
use rayon::prelude::*;

use crate::data::{Dataset, Targets};
use crate::error::{Error, Result};
use crate::posterior::{HALF_LN_2PI, MeanFieldGaussian};
use crate::rng::stream;
use crate::weights::Arch;
use crate::weights::Likelihood;

impl Likelihood {
    /// `ln p(y_r | f_r)` summed over the rows of `out` (`n × dL`), and, if `grad` is
    /// given, `∂/∂out` written into it.
    ///
    /// # Panics
    ///
    /// If the targets do not match `out`'s shape (checked by [`Dataset::new`]).
    pub fn ln_lik(
        self,
        out: &Mat<f64>,
        targets: &Targets,
        rows: &[usize],
        grad: Option<&mut Mat<f64>>,
    ) -> f64 {
        self.ln_lik_after(0.0, out, targets, rows, grad)
    }

    /// [`ln_lik`](Self::ln_lik) added row by row onto `total`: a sum over consecutive
    /// blocks of rows has the bits of one call over all of them.
    fn ln_lik_after(
        self,
        mut total: f64,
        out: &Mat<f64>,
        targets: &Targets,
        rows: &[usize],
        mut grad: Option<&mut Mat<f64>>,
    ) -> f64 {
        for (r, &row) in rows.iter().enumerate() {
            match (self, targets) {
                (Likelihood::Gaussian { precision }, Targets::Values(y)) => {
                    for c in 0..out.ncols() {
                        let diff = y[(row, c)] - out[(r, c)];
                        total += 0.5 * precision.ln() - HALF_LN_2PI - 0.5 * precision * diff * diff;
                        if let Some(g) = grad.as_deref_mut() {
                            g[(r, c)] = precision * diff;
                        }
                    }
                }
                (Likelihood::Softmax, Targets::Classes(y)) => {
                    let max = (0..out.ncols())
                        .map(|c| out[(r, c)])
                        .fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = (0..out.ncols()).map(|c| (out[(r, c)] - max).exp()).sum();
                    let lse = max + z.ln();
                    let label = y[row] as usize;
                    total += out[(r, label)] - lse;
                    if let Some(g) = grad.as_deref_mut() {
                        for c in 0..out.ncols() {
                            g[(r, c)] = f64::from(c == label) - (out[(r, c)] - lse).exp();
                        }
                    }
                }
                _ => panic!("targets do not match the likelihood"),
            }
        }
        total
    }
}

/// A Monte Carlo estimate of the ELBO over a whole data set.
#[derive(Clone, Debug, PartialEq)]
pub struct ElboEstimate {
    /// `E_q ln p(Y | X, ω)` (total over the data).
    pub expected_ln_lik: f64,
    /// Its Monte Carlo standard error.
    pub expected_ln_lik_std_err: f64,
    /// `KL(q ‖ N(0, s²I))` in closed form.
    pub kl: f64,
    /// `L = E ln p − KL`.
    pub elbo: f64,
    /// `L / n`.
    pub elbo_per_point: f64,
    /// Standard error of `L / n`.
    pub elbo_per_point_std_err: f64,
    /// Number of data points n.
    pub n_data: usize,
    /// Weight draws used.
    pub n_samples: usize,
}

/// The model's side of a data set: whether it fits an architecture and likelihood.
impl Dataset {
    /// Checks that the data fit `arch` and `likelihood`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] for an input width other than d0, a target width other
    /// than dL (regression) or more classes than dL; [`Error::InvalidParameter`] for
    /// class labels with a Gaussian likelihood or real targets with softmax.
    pub fn check_fits(&self, arch: &Arch, likelihood: Likelihood) -> Result<()> {
        let w = arch.widths();
        if self.x().ncols() != w[0] {
            return Err(Error::length("input width", w[0], self.x().ncols()));
        }
        let d_out = *w.last().expect("at least two widths");
        match (self.targets(), likelihood) {
            (Targets::Values(y), Likelihood::Gaussian { .. }) if y.ncols() != d_out => {
                Err(Error::length("target width", d_out, y.ncols()))
            }
            (Targets::Classes(_), Likelihood::Softmax) if self.n_classes().unwrap_or(0) > d_out => {
                Err(Error::invalid(
                    "labels",
                    self.n_classes().unwrap_or(0) - 1,
                    format!("label out of range for an output width of {d_out}"),
                ))
            }
            (Targets::Values(_), Likelihood::Softmax) => Err(Error::invalid(
                "likelihood",
                "softmax",
                "needs class labels, the data have real targets",
            )),
            (Targets::Classes(_), Likelihood::Gaussian { .. }) => Err(Error::invalid(
                "likelihood",
                "gaussian",
                "needs real targets, the data have class labels",
            )),
            _ => Ok(()),
        }
    }
}

/// The ELBO of `q` on `data` with `n_samples` weight draws (draw `s` from
/// `stream(seed, s)`), in parallel over draws with a sequential reduction.
///
/// # Errors
///
/// [`Error::InvalidParameter`] for `n_samples = 0`, a bad prior scale, or an expected
/// log-likelihood that is not finite (outputs that overflow f64); the errors of
/// [`Dataset::check_fits`]; [`Error::ResourceLimit`] for work beyond `limits`.
pub fn elbo(
    q: &MeanFieldGaussian,
    likelihood: Likelihood,
    data: &Dataset,
    prior_scale: f64,
    n_samples: usize,
    seed: u64,
    limits: &crate::resources::Limits,
) -> Result<ElboEstimate> {
    crate::estimators::check_samples(n_samples)?;
    data.check_fits(q.mlp()?, likelihood)?;
    crate::resources::check(
        &format!("the ELBO of {n_samples} draws on {} rows", data.len()),
        elbo_cost(q.mlp()?, data.len(), n_samples),
        limits,
    )?;
    let kl = q.kl_to_prior(prior_scale)?;
    // Draws in groups; every draw of a group reads one block of rows at a time while it
    // is in cache (one pass over the data per group instead of one per draw). Each
    // draw's sum continues row by row across the blocks: the bits of one pass.
    struct Draw {
        w: Vec<f64>,
        layers: Vec<Mat<f64>>,
        total: f64,
    }
    let (arch, n) = (q.mlp()?, data.len());
    let mut lls = Vec::with_capacity(n_samples);
    for first in (0..n_samples).step_by(ELBO_GROUP) {
        let mut draws: Vec<Draw> = (first..(first + ELBO_GROUP).min(n_samples))
            .into_par_iter()
            .map(|s| Draw {
                w: q.sample(&mut stream(seed, s as u64)),
                layers: Vec::new(),
                total: 0.0,
            })
            .collect();
        for r0 in (0..n).step_by(ELBO_BLOCK) {
            let rows: Vec<usize> = (r0..(r0 + ELBO_BLOCK).min(n)).collect();
            let x = data.x().subrows(r0, rows.len());
            draws.par_iter_mut().for_each(|d| {
                let out = arch.forward_into(&d.w, x, 0, &mut d.layers);
                d.total = likelihood.ln_lik_after(d.total, out, data.targets(), &rows, None);
            });
        }
        lls.extend(draws.iter().map(|d| d.total));
    }
    let ns = n_samples as f64;
    let mean = lls.iter().sum::<f64>() / ns;
    if !mean.is_finite() {
        // Never written as a number: outputs or squared errors beyond f64.
        return Err(Error::invalid(
            "expected log-likelihood",
            mean,
            "is not finite: the network's outputs or errors overflow f64 on these data",
        ));
    }
    let se = if n_samples > 1 {
        (lls.iter().map(|l| (l - mean) * (l - mean)).sum::<f64>() / (ns - 1.0) / ns).sqrt()
    } else {
        f64::NAN
    };
    let n = data.len() as f64;
    Ok(ElboEstimate {
        expected_ln_lik: mean,
        expected_ln_lik_std_err: se,
        kl,
        elbo: mean - kl,
        elbo_per_point: (mean - kl) / n,
        elbo_per_point_std_err: se / n,
        n_data: data.len(),
        n_samples,
    })
}

/// The estimated cost of [`elbo`] with `n_samples` draws on `n_rows` rows of `arch`: a
/// forward pass per draw and row; in memory, a group of draws' weights and one block of
/// activations each, and one log-likelihood per draw.
pub fn elbo_cost(arch: &Arch, n_rows: usize, n_samples: usize) -> crate::resources::Cost {
    use crate::resources::{Cost, NS_MAC};
    let widths = arch.widths();
    let macs: f64 = widths.windows(2).map(|w| (w[0] * w[1]) as f64).sum();
    let units: f64 = widths.iter().map(|&w| w as f64).sum();
    let group = ELBO_GROUP.min(n_samples) as f64;
    Cost::ops(n_samples as f64 * n_rows as f64 * macs, NS_MAC).with_bytes(
        group * 8.0 * (arch.n_params() as f64 + ELBO_BLOCK as f64 * units) + 8.0 * n_samples as f64,
    )
}

/// Draws per group of [`elbo`] (sharing each pass over the data).
const ELBO_GROUP: usize = 16;
/// Rows per block of [`elbo`].
const ELBO_BLOCK: usize = 512;
