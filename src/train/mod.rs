//! Bayes-by-backprop training of mean-field variational MLPs (docs/mathematics.md §9).
//!
//! Each step draws a minibatch of M of the N data points and `S_train` reparameterized
//! weight draws `ω = μ + σ ⊙ ε`, and ascends
//!
//! * MFVI: `L̂ = (N/M) Σ_batch ln p(y | x, ω) − KL(q ‖ N(0, s²I))`, or
//! * the symmetrized objective ("SGM" in the paper): `L̂ + Î`, with `Î` a one-draw
//!   lower bound on `I(g; ω)` whose gradient comes from a [`MiGradient`] (the paper's
//!   `Î^K`: [`InfoNce`](crate::estimators::InfoNce)),
//!
//! with Adam on `(μ, ρ)`. Gradients are exact for the drawn ε: the data term by
//! hand-written backpropagation ([`backprop`]), the KL in closed form, `Î` through
//! [`MiGradient::term_and_grad`]; σ-gradients become ρ-gradients by `dσ/dρ`.
//!
//! The loop owns iteration, stopping and the per-step record; the optimizer ([`Adam`])
//! only computes a step; the [`Observer`](crate::observe::Observer) it is given does any I/O (progress bars, logs).

pub mod adam;
pub mod backprop;

pub use adam::Adam;

pub use crate::observe::StepInfo;
use rand::RngExt;
use rand_distr::StandardNormal;
use std::time::Instant;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::estimators::{GradScratch, MiGradient};
use crate::posterior::{MeanFieldGaussian, SigmaTransform};
use crate::rng::{child_seed, shuffle, stream};
use crate::weights::Arch;
use crate::weights::Likelihood;

/// Unchecked training settings; [`TrainConfig::check`] validates them.
///
/// Defaults (set by [`TrainConfig::new`]): 10 epochs, batch 100, learning rate 10⁻³,
/// seed 0, prior N(0, 1), one weight draw per step, μ ~ N(0, 0.1²) and ρ = −3
/// (σ ≈ 0.049) at initialization (the defaults of common PyTorch BNN libraries).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Minibatch size M.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Seed of initialization, shuffling and every draw.
    pub seed: u64,
    /// Prior scale s of N(0, s²I).
    pub prior_scale: f64,
    /// Weight draws per step, S_train.
    pub n_train_samples: usize,
    /// Standard deviation of the initial μ (biases start at 0).
    pub init_mu_std: f64,
    /// Initial ρ of every parameter.
    pub init_rho: f64,
    /// The likelihood.
    pub likelihood: Likelihood,
    /// The weight w of the symmetrization term in the objective `L + w·Î` (1: the
    /// symmetrized ELBO). A minibatch objective that is not rescaled to the data set (the
    /// batch's log-likelihood and `(M/N)·KL`, plus Î) is, up to the factor M/N that Adam
    /// ignores, the objective with `w = N/M`.
    pub mi_weight: f64,
}

impl TrainConfig {
    /// The defaults above with the given likelihood.
    pub fn new(likelihood: Likelihood) -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 100,
            lr: 1e-3,
            seed: 0,
            prior_scale: 1.0,
            n_train_samples: 1,
            init_mu_std: 0.1,
            init_rho: -3.0,
            likelihood,
            mi_weight: 1.0,
        }
    }

    /// Validates the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the first bad field.
    pub fn check(self) -> Result<Self> {
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", 0, "must be >= 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be >= 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid("lr", self.lr, "must be finite and > 0"));
        }
        if !(self.prior_scale.is_finite() && self.prior_scale > 0.0) {
            return Err(Error::invalid(
                "prior_scale",
                self.prior_scale,
                "must be finite and > 0",
            ));
        }
        if self.n_train_samples == 0 {
            return Err(Error::invalid("n_train_samples", 0, "must be >= 1"));
        }
        if !(self.init_mu_std.is_finite() && self.init_mu_std >= 0.0) {
            return Err(Error::invalid(
                "init_mu_std",
                self.init_mu_std,
                "must be finite and >= 0",
            ));
        }
        if !self.init_rho.is_finite() || !SigmaTransform::Softplus.sigma(self.init_rho).is_normal()
        {
            return Err(Error::invalid(
                "init_rho",
                self.init_rho,
                "sigma = softplus(rho) must be a positive normal number",
            ));
        }
        if !(self.mi_weight.is_finite() && self.mi_weight >= 0.0) {
            return Err(Error::invalid(
                "mi_weight",
                self.mi_weight,
                "must be finite and >= 0",
            ));
        }
        self.likelihood.check()?;
        Ok(self)
    }
}

/// The initial posterior: μ ~ N(0, init_mu_std²) for weights, 0 for biases, ρ = init_rho.
///
/// # Errors
///
/// As [`MeanFieldGaussian::new`].
pub fn initial_posterior(arch: &Arch, config: &TrainConfig) -> Result<MeanFieldGaussian> {
    let mut rng = stream(child_seed(config.seed, 0), 0);
    let mut mu = vec![0.0; arch.n_params()];
    for i in 0..arch.n_layers() {
        let Some(o) = arch.offsets(i) else { continue };
        let n = arch.widths()[i] * arch.widths()[i + 1];
        for m in &mut mu[o.weight..o.weight + n] {
            *m = config.init_mu_std * rng.sample::<f64, _>(StandardNormal);
        }
    }
    MeanFieldGaussian::new(arch.clone(), mu, vec![config.init_rho; arch.n_params()])
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The trained posterior.
    pub posterior: MeanFieldGaussian,
    /// Optimizer steps taken.
    pub n_steps: u64,
    /// Mean of `L̂/N` over the last epoch's steps.
    pub last_epoch_elbo_per_point: f64,
    /// Mean of `Î` over all steps (SGM only).
    pub mean_mi_term: Option<f64>,
    /// Share of steps whose `Î` was within 10⁻³ of its cap (SGM only).
    pub saturated_fraction: Option<f64>,
    /// Mean over steps of `‖∇Î‖ / ‖∇L̂‖` (SGM only).
    pub mean_grad_ratio: Option<f64>,
    /// The cap of `Î` (`ln K`), SGM only.
    pub mi_cap: Option<f64>,
    /// Wall time, seconds.
    pub wall_s: f64,
}

/// The per-step objective for a fixed minibatch and fixed draw: the value of
/// `L̂ = (N/M) Σ_batch ln p(y | x, μ + σ ⊙ ε) − KL(q ‖ N(0, s²I))` and its gradients with
/// respect to μ and σ, *added* into the buffers (the trainer turns σ into ρ).
///
/// # Errors
///
/// [`Error::LengthMismatch`] for buffers of the wrong length; the errors of
/// [`Dataset::check_fits`].
#[allow(clippy::too_many_arguments)]
pub fn elbo_step_grad(
    q: &MeanFieldGaussian,
    likelihood: Likelihood,
    data: &Dataset,
    rows: &[usize],
    eps: &[f64],
    prior_scale: f64,
    grad_mu: &mut [f64],
    grad_sigma: &mut [f64],
) -> Result<f64> {
    data.check_fits(q.mlp()?, likelihood)?;
    let mut ws = StepWorkspace::default();
    elbo_step_grad_in_place(
        q,
        likelihood,
        data,
        rows,
        eps,
        prior_scale,
        grad_mu,
        grad_sigma,
        &mut ws,
    )
}

/// Reusable buffers of [`elbo_step_grad_in_place`].
#[derive(Clone, Debug, Default)]
pub struct StepWorkspace {
    omega: Vec<f64>,
    grad_w: Vec<f64>,
    /// The minibatch's inputs, row-major (`M × d0`).
    x: Vec<f64>,
    backprop: backprop::BackpropWorkspace,
}

/// [`elbo_step_grad`] with caller-owned buffers; the data are assumed to have been
/// checked against the architecture ([`Dataset::check_fits`]).
///
/// # Errors
///
/// [`Error::LengthMismatch`] for buffers of the wrong length.
#[allow(clippy::too_many_arguments)]
pub fn elbo_step_grad_in_place(
    q: &MeanFieldGaussian,
    likelihood: Likelihood,
    data: &Dataset,
    rows: &[usize],
    eps: &[f64],
    prior_scale: f64,
    grad_mu: &mut [f64],
    grad_sigma: &mut [f64],
    ws: &mut StepWorkspace,
) -> Result<f64> {
    let arch = q.mlp()?;
    arch.check_len("grad_mu", grad_mu)?;
    arch.check_len("grad_sigma", grad_sigma)?;
    let p = q.n_params();
    q.reparameterize_into(eps, &mut ws.omega)?;
    let d0 = data.x().ncols();
    let by_rows = data.x_by_rows();
    ws.x.clear();
    for &row in rows {
        ws.x.extend_from_slice(&by_rows[row * d0..(row + 1) * d0]);
    }
    let scale = data.len() as f64 / rows.len() as f64;
    ws.grad_w.clear();
    ws.grad_w.resize(p, 0.0);
    let ln_lik = backprop::data_term_grad_in_place(
        arch,
        &ws.omega,
        faer::MatRef::from_row_major_slice(&ws.x, rows.len(), d0),
        data.targets(),
        rows,
        likelihood,
        scale,
        &mut ws.grad_w,
        &mut ws.backprop,
    );
    // The data term's gradient (∂/∂σ through ω = μ + σ ⊙ ε), then d(−KL).
    crate::linalg::with_avx(
        #[inline(always)]
        || {
            for (((g_mu, g_sigma), &gw), &e) in grad_mu
                .iter_mut()
                .zip(grad_sigma.iter_mut())
                .zip(&ws.grad_w)
                .zip(eps)
            {
                *g_mu += gw;
                *g_sigma += gw * e;
            }
        },
    );
    q.add_kl_grad(prior_scale, -1.0, grad_mu, grad_sigma);
    Ok(scale * ln_lik - q.kl_to_prior(prior_scale)?)
}

fn norm(a: &[f64], b: &[f64]) -> f64 {
    a.iter().chain(b).map(|x| x * x).sum::<f64>().sqrt()
}

/// Trains a mean-field posterior over `arch`'s weights on `data`: MFVI when `symmetry`
/// is `None`, the symmetrized objective `L + Î` otherwise. `observer` sees every step.
///
/// # Errors
///
/// The errors of [`TrainConfig::check`] and [`Dataset::check_fits`]; [`Error::Diverged`]
/// naming the step at the first non-finite loss, gradient or scale (nothing is
/// returned for a diverged run).
pub fn train(
    arch: &Arch,
    data: &Dataset,
    config: &TrainConfig,
    symmetry: Option<&dyn MiGradient>,
    observer: &dyn crate::observe::Observer,
) -> Result<TrainOutcome> {
    let started = Instant::now();
    let config = config.clone().check()?;
    data.check_fits(arch, config.likelihood)?;
    let mut q = initial_posterior(arch, &config)?;
    let p = arch.n_params();
    let n = data.len();
    let m = config.batch_size.min(n);
    let steps_per_epoch = n.div_ceil(m) as u64;
    let mut adam = Adam::new(2 * p, config.lr);
    let mut order: Vec<usize> = (0..n).collect();
    let (mut g_mu, mut g_sigma) = (vec![0.0; p], vec![0.0; p]);
    let (mut mi_mu, mut mi_sigma) = (vec![0.0; p], vec![0.0; p]);
    let mut grad = vec![0.0; 2 * p];
    let mut eps = vec![0.0; p];
    let mut step_ws = StepWorkspace::default();
    let mut mi_scratch = GradScratch::default();
    let mut step: u64 = 0;
    let (mut mi_sum, mut saturated, mut ratio_sum) = (0.0, 0u64, 0.0);
    let mut last_epoch_elbo = 0.0;
    let s_train = config.n_train_samples as f64;
    for epoch in 0..config.epochs {
        shuffle(
            &mut order,
            &mut stream(child_seed(config.seed, 1), epoch as u64),
        );
        let mut epoch_elbo = 0.0;
        for rows in order.chunks(m) {
            let mut rng = stream(child_seed(config.seed, 2), step);
            g_mu.iter_mut()
                .chain(g_sigma.iter_mut())
                .for_each(|g| *g = 0.0);
            mi_mu
                .iter_mut()
                .chain(mi_sigma.iter_mut())
                .for_each(|g| *g = 0.0);
            let (mut elbo_hat, mut mi_hat) = (0.0, 0.0);
            for _ in 0..config.n_train_samples {
                crate::rng::fill_standard_normal(&mut rng, &mut eps);
                elbo_hat += elbo_step_grad_in_place(
                    &q,
                    config.likelihood,
                    data,
                    rows,
                    &eps,
                    config.prior_scale,
                    &mut g_mu,
                    &mut g_sigma,
                    &mut step_ws,
                )?;
                if let Some(mi) = symmetry {
                    mi_hat += mi.term_and_grad_in(
                        &q,
                        &eps,
                        &mut rng,
                        &mut mi_mu,
                        &mut mi_sigma,
                        &mut mi_scratch,
                    )?;
                }
            }
            elbo_hat /= s_train;
            mi_hat /= s_train;
            // Loss = −(L̂ + Î); gradients in (μ, ρ), averaged over draws.
            // σ-gradients to ρ-gradients (× dσ/dρ, in place: the norms below read them),
            // the loss gradient for Adam, and its finiteness, in one pass.
            let (grad_mu, grad_rho) = grad.split_at_mut(p);
            let slopes = q.dsigma_drho();
            let w = config.mi_weight;
            let grad_finite = crate::linalg::with_avx(
                #[inline(always)]
                || {
                    let mut finite = true;
                    for ((((out_mu, out_rho), &slope), (&gm, &mm)), (gs, ms)) in grad_mu
                        .iter_mut()
                        .zip(grad_rho.iter_mut())
                        .zip(slopes)
                        .zip(g_mu.iter().zip(&mi_mu))
                        .zip(g_sigma.iter_mut().zip(mi_sigma.iter_mut()))
                    {
                        *gs *= slope;
                        *ms *= slope;
                        *out_mu = -(gm + w * mm) / s_train;
                        *out_rho = -(*gs + w * *ms) / s_train;
                        finite &= out_mu.is_finite() & out_rho.is_finite();
                    }
                    finite
                },
            );
            let loss = -(elbo_hat + w * mi_hat);
            let diverged = |what: &str, value: f64| Error::Diverged {
                step,
                epoch,
                what: what.to_string(),
                value,
            };
            if !loss.is_finite() {
                return Err(diverged("loss", loss));
            }
            if !grad_finite {
                let bad = grad.iter().copied().find(|g| !g.is_finite());
                return Err(diverged("gradient entry", bad.unwrap_or(f64::NAN)));
            }
            let elbo_grad_norm = norm(&g_mu, &g_sigma) / s_train;
            let (mi_term, mi_grad_norm) = match symmetry {
                Some(mi) => {
                    let gn = norm(&mi_mu, &mi_sigma) / s_train;
                    mi_sum += mi_hat;
                    saturated += u64::from((mi_hat - mi.ln_cap()).abs() < 1e-3);
                    ratio_sum += gn / elbo_grad_norm.max(f64::MIN_POSITIVE);
                    (Some(mi_hat), Some(gn))
                }
                None => (None, None),
            };
            // Adam on (μ, ρ) fused with refreshing σ, 1/σ, ln σ and dσ/dρ: one pass over P
            // (Adam's state holds μ at k and ρ at P + k).
            adam.begin_step();
            q.update_in_place(|start, mu, rho| {
                let n = mu.len();
                adam.update_slice(start, mu, &grad[start..start + n]);
                adam.update_slice(p + start, rho, &grad[p + start..p + start + n]);
            })
            .map_err(|e| diverged("posterior", f64::NAN).with_context(&e))?;
            epoch_elbo += elbo_hat / n as f64;
            observer.step(&StepInfo {
                epoch,
                step,
                steps_per_epoch,
                elbo_per_point: elbo_hat / n as f64,
                mi_term,
                mi_grad_norm,
                elbo_grad_norm,
            });
            step += 1;
        }
        last_epoch_elbo = epoch_elbo / steps_per_epoch as f64;
    }
    let steps = step as f64;
    Ok(TrainOutcome {
        posterior: q,
        n_steps: step,
        last_epoch_elbo_per_point: last_epoch_elbo,
        mean_mi_term: symmetry.map(|_| mi_sum / steps),
        saturated_fraction: symmetry.map(|_| saturated as f64 / steps),
        mean_grad_ratio: symmetry.map(|_| ratio_sum / steps),
        mi_cap: symmetry.map(|mi| mi.ln_cap()),
        wall_s: started.elapsed().as_secs_f64(),
    })
}

impl Error {
    fn with_context(self, cause: &Error) -> Error {
        match self {
            Error::Diverged { step, epoch, .. } => Error::Diverged {
                step,
                epoch,
                what: format!("posterior after the update ({cause})"),
                value: f64::NAN,
            },
            other => other,
        }
    }
}
