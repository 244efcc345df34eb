//! Runs that combine the pieces: a training run with its evaluation (what
//! `mi-est train` does). Results are plain structs; printing and files are the
//! caller's.

use std::fmt;
use std::path::PathBuf;

use crate::data::DataSpec;
use crate::data::Dataset;
use crate::elbo::{ElboEstimate, Predictive, elbo, predictive};
use crate::error::{Error, Result};
use crate::estimators::{Estimate, ExactLimits, ExactPermanent, InfoNce, MiEstimator, Sandwich};
use crate::io::PosteriorFile;
use crate::rng::child_seed;
use crate::train::{TrainConfig, TrainOutcome, train};
use crate::weights::Likelihood;
use crate::weights::{Activation, Arch};

/// Plain mean-field VI or the paper's symmetrized objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// Maximize L.
    Mfvi,
    /// Maximize L + Î^K ("SGM").
    Sgm {
        /// Contrast size K.
        k: usize,
    },
    /// Maximize L + I with the exact per-draw I of one hidden layer (ln perm), whose
    /// gradient is an expectation under the permutation posterior (width ≤ 24).
    SgmExact,
    /// Maximize L + the sandwich lower bound on I with `K − 1` proposal draws (one hidden
    /// layer, any width), with its unbiased pathwise-plus-score gradient.
    SgmSandwich {
        /// Contrast size K (the identity and K − 1 proposal draws).
        k: usize,
    },
}

impl Objective {
    /// Checks its K: K counts the identity (K >= 1), and the sandwich needs a proposal
    /// draw beside it (K >= 2).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `k`.
    pub fn check(self) -> Result<Self> {
        match self {
            Objective::Sgm { k } => {
                InfoNce::new(k)?;
            }
            Objective::SgmSandwich { k } => {
                Sandwich::new(k)?;
            }
            Objective::Mfvi | Objective::SgmExact => {}
        }
        Ok(self)
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Objective::Mfvi => f.write_str("mfvi"),
            Objective::Sgm { k } => write!(f, "sgm(K={k})"),
            Objective::SgmExact => f.write_str("sgm-exact"),
            Objective::SgmSandwich { k } => write!(f, "sgm-sandwich(K={k})"),
        }
    }
}

/// A training run and how to evaluate it.
#[derive(Clone, Debug)]
pub struct TrainRun {
    /// Where the data come from.
    pub data: DataSpec,
    /// Hidden widths d1..d(L−1).
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Objective.
    pub objective: Objective,
    /// Optimizer, prior, likelihood and initialization settings.
    pub config: TrainConfig,
    /// Weight draws of the predictive average (the paper uses 1000).
    pub predictive_samples: usize,
    /// Weight draws of the full-data ELBO estimate.
    pub elbo_samples: usize,
    /// K of the evaluation Î^K.
    pub eval_k: usize,
    /// Weight draws of the evaluation Î^K (and of the exact I where computable).
    pub mi_samples: usize,
    /// The memory and time the data, the training and the evaluation may take.
    pub limits: crate::resources::Limits,
}

impl TrainRun {
    /// The estimated cost of training `arch` on `n_train` rows and evaluating it on
    /// `n_held_out`: every step's forward and backward passes over its batch and its
    /// symmetry term (the estimator's own cost model for one draw, three times over for
    /// the gradient), then the predictive, the ELBO and the evaluation Î^K; in memory, the
    /// posterior with its gradients and optimizer state, a batch's activations, and the
    /// largest of the estimators' and the ELBO's own. An order-of-magnitude guide, like
    /// every estimate of [`crate::resources`]. The estimators' models need a posterior of
    /// the architecture: its memory is checked first, then a stand-in is built.
    ///
    /// # Errors
    ///
    /// [`Error::ResourceLimit`] if the posterior alone would not fit; the estimators'
    /// constructors' errors.
    pub fn cost(
        &self,
        arch: &Arch,
        n_train: usize,
        n_held_out: usize,
    ) -> Result<crate::resources::Cost> {
        use crate::resources::{Cost, NS_MAC, NS_STEP};
        let widths = arch.widths();
        let macs: f64 = widths.windows(2).map(|w| (w[0] * w[1]) as f64).sum();
        let units: f64 = widths.iter().map(|&w| w as f64).sum();
        let p = arch.n_params() as f64;
        let batch = self.config.batch_size.clamp(1, n_train.max(1)) as f64;
        let posterior = Cost::default().with_bytes(8.0 * (14.0 * p + 3.0 * batch * units));
        crate::resources::check(
            &format!("a posterior of widths {widths:?} ({p} parameters) with its optimizer state"),
            posterior,
            &self.limits,
        )?;
        let stand_in = crate::posterior::MeanFieldGaussian::from_mu_sigma(
            arch.clone(),
            vec![0.0; arch.n_params()],
            vec![1.0; arch.n_params()],
        )?;
        let one_draw = |e: &dyn MiEstimator| e.cost(&stand_in);
        let symmetry = match self.objective {
            Objective::Mfvi => Cost::default(),
            Objective::Sgm { k } => one_draw(&InfoNce::new(k)?.samples(1)?),
            Objective::SgmExact => one_draw(&ExactPermanent::new().samples(1)?),
            Objective::SgmSandwich { k } => one_draw(&Sandwich::new(k)?.samples(1)?.lower()),
        };
        let steps = self.config.epochs as f64 * (n_train as f64 / batch).ceil();
        let draws = self.config.n_train_samples as f64;
        let per_step_ns =
            NS_STEP + draws * (3.0 * batch * macs * NS_MAC + 3.0 * symmetry.seconds * 1e9);
        // The gradient of the symmetry term holds its K − 1 permutations of the hidden units.
        let k = match self.objective {
            Objective::Sgm { k } | Objective::SgmSandwich { k } => k as f64,
            _ => 0.0,
        };
        let hidden: f64 = widths[1..widths.len() - 1]
            .iter()
            .map(|&w| w as f64 + 3.0)
            .sum();
        let training = Cost::ops(steps * per_step_ns, 1.0)
            .with_bytes(posterior.bytes + 8.0 * k * hidden)
            .then(Cost::default().with_bytes(symmetry.bytes));
        let evaluation = Cost::ops(
            self.predictive_samples as f64 * n_held_out as f64 * macs,
            NS_MAC,
        )
        .then(crate::elbo::elbo_cost(arch, n_train, self.elbo_samples))
        .then(one_draw(
            &InfoNce::new(self.eval_k)?.samples(self.mi_samples)?.seed(0),
        ));
        Ok(training.then(evaluation))
    }
}

/// What a training run produced.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// The run's settings, as JSON (stored in the posterior file).
    pub config_json: String,
    /// The training loop's record.
    pub outcome: TrainOutcome,
    /// The posterior file contents (not yet written).
    pub file: PosteriorFile,
    /// Predictive performance on the test set (the training set if there is none).
    pub predictive: Predictive,
    /// Whether `predictive` is on held-out data.
    pub predictive_on_test: bool,
    /// The ELBO on the training set.
    pub elbo: ElboEstimate,
    /// Î^K at `eval_k`.
    pub mi: Estimate,
    /// Exact I(g; ω) where the group allows ([`exact_mi_if_cheap`]).
    pub exact_mi: Option<Estimate>,
}

impl TrainReport {
    /// `L^K / N = (L + Î^K) / N` and its standard error.
    pub fn elbo_k_per_point(&self) -> (f64, f64) {
        let n = self.elbo.n_data as f64;
        let se_i = self.mi.std_err.unwrap_or(0.0) / n;
        (
            self.elbo.elbo_per_point + self.mi.value / n,
            (self.elbo.elbo_per_point_std_err.powi(2) + se_i * se_i).sqrt(),
        )
    }
}

/// Exact I where it is cheap ([`ExactLimits::CHEAP`]); `None` where it is not, or where
/// the pruned permanent cannot split a wide layer.
///
/// # Errors
///
/// The exact estimator's other errors.
pub fn exact_mi_if_cheap(
    q: &crate::posterior::MeanFieldGaussian,
    n_samples: usize,
    seed: u64,
    limits: &crate::resources::Limits,
) -> Result<Option<Estimate>> {
    crate::estimators::exact_estimate(q, n_samples, seed, ExactLimits::CHEAP, limits)
}

/// How a trained posterior is evaluated everywhere (`train`, `reproduce`): the
/// posterior predictive on `held_out` with `predictive_samples` draws and the full-data
/// ELBO on `train_set` with `elbo_samples` draws, both from `eval_seed`.
///
/// # Errors
///
/// As [`predictive`] and [`elbo`].
#[allow(clippy::too_many_arguments)] // the two evaluations' own settings
pub fn evaluate(
    q: &crate::posterior::MeanFieldGaussian,
    likelihood: Likelihood,
    train_set: &Dataset,
    held_out: &Dataset,
    prior_scale: f64,
    predictive_samples: usize,
    elbo_samples: usize,
    eval_seed: u64,
    limits: &crate::resources::Limits,
) -> Result<(Predictive, ElboEstimate)> {
    let p = predictive(q, likelihood, held_out, predictive_samples, eval_seed)?;
    let l = elbo(
        q,
        likelihood,
        train_set,
        prior_scale,
        elbo_samples,
        eval_seed,
        limits,
    )?;
    Ok((p, l))
}

/// Loads the data, trains, and evaluates.
///
/// # Errors
///
/// Data, configuration and divergence errors, named.
pub fn run_training(
    run: &TrainRun,
    observer: &dyn crate::observe::Observer,
) -> Result<TrainReport> {
    let likelihood = run.config.likelihood;
    let (train_set, test_set) = run.data.load(likelihood, run.config.seed, &run.limits)?;
    let d0 = train_set.x().ncols();
    let d_out = match (&likelihood, train_set.n_classes()) {
        (Likelihood::Softmax, Some(c)) => c.max(2),
        (Likelihood::Softmax, None) => {
            return Err(Error::invalid(
                "likelihood",
                "softmax",
                "needs class labels",
            ));
        }
        (Likelihood::Gaussian { .. }, _) => match train_set.targets() {
            crate::data::Targets::Values(y) => y.ncols(),
            crate::data::Targets::Classes(_) => {
                return Err(Error::invalid(
                    "likelihood",
                    "gaussian",
                    "needs real targets",
                ));
            }
        },
    };
    let mut widths = vec![d0];
    widths.extend(&run.hidden);
    widths.push(d_out);
    let arch = Arch::builder(widths).activation(run.activation).check()?;
    let symmetry: Option<Box<dyn crate::estimators::MiGradient>> = match run.objective {
        Objective::Mfvi => None,
        Objective::Sgm { k } => {
            if k == 0 {
                return Err(Error::invalid("k", 0, "K counts the identity, so K >= 1"));
            }
            Some(Box::new(InfoNce::new(k)?))
        }
        Objective::SgmExact => Some(Box::new(ExactPermanent::new())),
        Objective::SgmSandwich { k } => Some(Box::new(Sandwich::new(k)?.lower())),
    };
    let held_out_rows = test_set.as_ref().map_or(train_set.len(), Dataset::len);
    crate::resources::check(
        &format!(
            "training widths {:?} for {} epochs on {} rows, then evaluating",
            arch.widths(),
            run.config.epochs,
            train_set.len()
        ),
        run.cost(&arch, train_set.len(), held_out_rows)?,
        &run.limits,
    )?;
    let outcome = train(
        &arch,
        &train_set,
        &run.config,
        symmetry.as_deref(),
        observer,
    )?;
    let q = &outcome.posterior;
    let eval_seed = child_seed(run.config.seed, 7);
    let held_out: &Dataset = test_set.as_ref().unwrap_or(&train_set);
    let (predictive, elbo) = evaluate(
        q,
        likelihood,
        &train_set,
        held_out,
        run.config.prior_scale,
        run.predictive_samples,
        run.elbo_samples,
        eval_seed,
        &run.limits,
    )?;
    let mi = InfoNce::new(run.eval_k)?
        .samples(run.mi_samples)?
        .seed(eval_seed)
        .estimate_within(q, &run.limits)?;
    let exact_mi = exact_mi_if_cheap(q, run.mi_samples, eval_seed, &run.limits)?;
    let config_json = serde_json::json!({
        "data_spec": run.data.to_string(),
        "hidden": run.hidden,
        "activation": run.activation.name(),
        "objective": run.objective.to_string(),
        "epochs": run.config.epochs,
        "batch_size": run.config.batch_size,
        "lr": run.config.lr,
        "seed": run.config.seed,
        "prior_scale": run.config.prior_scale,
        "n_train_samples": run.config.n_train_samples,
        "init_mu_std": run.config.init_mu_std,
        "init_rho": run.config.init_rho,
        "mi_weight": run.config.mi_weight,
        "likelihood": likelihood.to_string(),
        "n_train": train_set.len(),
    })
    .to_string();
    let file = PosteriorFile {
        posterior: q.clone(),
        likelihood: Some(likelihood),
        prior_scale: run.config.prior_scale,
        train_config: Some(config_json.clone()),
        metadata: Default::default(),
    };
    Ok(TrainReport {
        config_json,
        outcome,
        file,
        predictive,
        predictive_on_test: test_set.is_some(),
        elbo,
        mi,
        exact_mi,
    })
}

/// Where `mi-est train` writes by default.
pub fn default_posterior_path(objective: Objective, hidden: &[usize], seed: u64) -> PathBuf {
    let h: Vec<String> = hidden.iter().map(|d| d.to_string()).collect();
    let obj = match objective {
        Objective::Mfvi => "mfvi".to_string(),
        Objective::Sgm { k } => format!("sgm-k{k}"),
        Objective::SgmExact => "sgm-exact".to_string(),
        Objective::SgmSandwich { k } => format!("sgm-sandwich-k{k}"),
    };
    PathBuf::from(format!(
        "posterior-{}-{obj}-seed{seed}.safetensors",
        h.join("x")
    ))
}

impl fmt::Display for TrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.outcome;
        let q = &self.file.posterior;
        writeln!(
            f,
            "architecture         {}, {} parameters, ln|G| = {:.4}",
            q.space().describe(),
            q.n_params(),
            self.mi.ln_group_order
        )?;
        writeln!(
            f,
            "training             {} steps in {:.2} s",
            o.n_steps, o.wall_s
        )?;
        let split = if self.predictive_on_test {
            "test"
        } else {
            "train"
        };
        if let Some(a) = self.predictive.accuracy {
            writeln!(
                f,
                "{split} accuracy        {:.4} ({} posterior samples)",
                a, self.predictive.n_samples
            )?;
        }
        if let Some(m) = self.predictive.mse {
            writeln!(
                f,
                "{split} MSE             {:.6} ({} posterior samples)",
                m, self.predictive.n_samples
            )?;
        }
        writeln!(
            f,
            "{split} NLL             {:.6} per point",
            self.predictive.nll
        )?;
        if let Some(c) = &self.predictive.calibration {
            writeln!(
                f,
                "{split} ECE             {:.4} ({} bins); Brier score {:.4}",
                c.ece,
                crate::elbo::ECE_BINS,
                c.brier
            )?;
        }
        writeln!(
            f,
            "ELBO L / N           {:.6} ± {:.6}",
            self.elbo.elbo_per_point, self.elbo.elbo_per_point_std_err
        )?;
        let (lk, lk_se) = self.elbo_k_per_point();
        writeln!(
            f,
            "I^K (K = {})       {:.4} ± {:.4} nats (cap ln K = {:.4})",
            self.mi.k.unwrap_or(0),
            self.mi.value,
            self.mi.std_err.unwrap_or(f64::NAN),
            self.mi.ln_cap
        )?;
        if let Some(e) = &self.exact_mi {
            writeln!(
                f,
                "exact I              {:.4} ± {:.4} nats ({})",
                e.value,
                e.std_err.unwrap_or(f64::NAN),
                e.estimator
            )?;
        }
        writeln!(f, "L^K / N              {lk:.6} ± {lk_se:.6}")?;
        if let (Some(m), Some(s), Some(r), Some(cap)) = (
            o.mean_mi_term,
            o.saturated_fraction,
            o.mean_grad_ratio,
            o.mi_cap,
        ) {
            writeln!(
                f,
                "during training      mean symmetry term = {m:.4} (cap {cap:.4}), at its cap in {:.1}% of steps, |grad term| / |grad L| = {r:.3e}",
                100.0 * s
            )?;
        }
        Ok(())
    }
}

pub mod experiment;
pub mod experiments;
pub mod figure;
pub mod format;
pub mod grid;
pub mod reproduce;
pub mod table;
