//! The paper's experiments (DESIGN §6), each returning plain tables and a summary that
//! puts our values beside the paper's. `mi-est reproduce <name>` writes them under
//! `reports/<name>/`; `--quick` variants check the qualitative claims in seconds.

use rand::RngExt;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

use crate::data::{MnistSplit, abs_regression, load_mnist};
use crate::elbo::{Dataset, Likelihood, elbo, predictive};
use crate::error::{Error, Result};
use crate::estimators::{ExactEnumeration, InfoNce, MiEstimator, MiGradient, UnitCost};
use crate::journal::exact;
use crate::posterior::MeanFieldGaussian;
use crate::rng::{child_seed, stream};
use crate::study::table::{Table, Values};
use crate::symmetry::Group;
use crate::train::{Adam, StepInfo, TrainConfig, initial_posterior, train};
use crate::weights::Arch;

/// The experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Experiment {
    /// Fig. 3 and 5.
    ModeInterpolation,
    /// Fig. 4, Tables 2–3.
    TractableBnn,
    /// Table 1.
    Mnist,
    /// Theorem 3.1.
    ModeProximity,
    /// Beyond the paper (issue 7): every estimator at equal wall time against exact I.
    EstimatorCost,
    /// Beyond the paper (issue 7): MNIST with MFVI, uniform SGM and the new objectives.
    MnistObjectives,
}

impl Experiment {
    /// Parses an experiment name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the unknown experiment and the known ones.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "mode-interpolation" => Ok(Experiment::ModeInterpolation),
            "tractable-bnn" => Ok(Experiment::TractableBnn),
            "mnist" => Ok(Experiment::Mnist),
            "mode-proximity" => Ok(Experiment::ModeProximity),
            "estimator-cost" => Ok(Experiment::EstimatorCost),
            "mnist-objectives" => Ok(Experiment::MnistObjectives),
            _ => Err(Error::invalid(
                "experiment",
                s,
                "expected mode-interpolation, tractable-bnn, mnist, mode-proximity, estimator-cost or mnist-objectives",
            )),
        }
    }

    /// The experiment's name (its report folder).
    pub fn name(self) -> &'static str {
        match self {
            Experiment::ModeInterpolation => "mode-interpolation",
            Experiment::TractableBnn => "tractable-bnn",
            Experiment::Mnist => "mnist",
            Experiment::ModeProximity => "mode-proximity",
            Experiment::EstimatorCost => "estimator-cost",
            Experiment::MnistObjectives => "mnist-objectives",
        }
    }

    /// Whether the experiment reads MNIST.
    pub fn needs_mnist(self) -> bool {
        matches!(
            self,
            Experiment::Mnist
                | Experiment::ModeProximity
                | Experiment::EstimatorCost
                | Experiment::MnistObjectives
        )
    }
}

/// A line of a plot: label and points.
pub type Series = (String, Vec<(f64, f64)>);

/// A plot request: file stem, title, axis labels, series.
#[derive(Clone, Debug)]
pub struct PlotSpec {
    /// File stem.
    pub name: String,
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Log-scale x axis.
    pub log_x: bool,
    /// Join each series' points with lines (for curves; off for scatter plots).
    pub lines: bool,
    /// Lines.
    pub series: Vec<Series>,
}

/// What an experiment produced.
#[derive(Clone, Debug)]
pub struct Reproduction {
    /// The experiment.
    pub experiment: Experiment,
    /// Tables to write as Parquet.
    pub tables: Vec<Table>,
    /// Plots to draw.
    pub plots: Vec<PlotSpec>,
    /// Markdown: our values beside the paper's.
    pub summary: String,
    /// `estimator-cost` only: the S of each timed estimate, keyed as
    /// [`ReproduceOptions::samples`] reads them (`manifest.json` records them, so that a
    /// rerun with them computes the same values).
    pub samples: Option<std::collections::BTreeMap<String, usize>>,
    /// Wall time, seconds.
    pub wall_s: f64,
}

/// A progress callback `(done, total)` called from worker threads as runs finish.
#[derive(Clone)]
pub struct ProgressFn(pub std::sync::Arc<dyn Fn(usize, usize) + Send + Sync>);

impl std::fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn")
    }
}

/// Counts finished runs and reports them.
pub(crate) struct Counter<'a> {
    done: std::sync::atomic::AtomicUsize,
    total: usize,
    progress: Option<&'a ProgressFn>,
}

impl<'a> Counter<'a> {
    pub(crate) fn new(total: usize, progress: Option<&'a ProgressFn>) -> Self {
        Counter {
            done: std::sync::atomic::AtomicUsize::new(0),
            total,
            progress,
        }
    }

    pub(crate) fn tick(&self) {
        let d = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(p) = self.progress {
            (p.0)(d, self.total);
        }
    }
}

/// Settings shared by the experiments.
#[derive(Clone, Debug)]
pub struct ReproduceOptions {
    /// Small, fast variant that checks the qualitative claims.
    pub quick: bool,
    /// Master seed.
    pub seed: u64,
    /// Folder of the MNIST IDX files (mnist and mode-proximity).
    pub mnist_dir: PathBuf,
    /// Called as runs finish.
    pub progress: Option<ProgressFn>,
    /// Where finished runs are recorded so an interrupted experiment resumes
    /// ([`crate::journal`]); `None` computes everything.
    pub journal: Option<std::sync::Arc<crate::journal::Journal>>,
    /// `estimator-cost` only: the S of each timed estimate (keys `posterior/probe`, as
    /// [`crate::study::beyond::samples_of_rows`] reads them from an earlier report)
    /// instead of S chosen from timed pilots, so that the values do not depend on the
    /// machine's speed; `None` times the pilots.
    pub samples: Option<std::collections::BTreeMap<String, usize>>,
}

impl ReproduceOptions {
    /// `compute()` unless the journal already holds `key`, in which case its recorded
    /// value; a computed value is recorded before it is returned.
    pub(crate) fn journaled<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        key: &str,
        compute: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if let Some(v) = self.journal.as_ref().and_then(|j| j.get::<T>(key)) {
            return Ok(v);
        }
        let v = compute()?;
        if let Some(j) = &self.journal {
            j.record(key, &v)?;
        }
        Ok(v)
    }
}

/// Runs one experiment.
///
/// # Errors
///
/// Missing data, training divergence, named.
pub fn reproduce(experiment: Experiment, options: &ReproduceOptions) -> Result<Reproduction> {
    let started = Instant::now();
    let mut r = match experiment {
        Experiment::ModeInterpolation => mode_interpolation(options)?,
        Experiment::TractableBnn => tractable_bnn(options)?,
        Experiment::Mnist => mnist(options)?,
        Experiment::ModeProximity => mode_proximity(options)?,
        Experiment::EstimatorCost => crate::study::beyond::estimator_cost(options)?,
        Experiment::MnistObjectives => crate::study::beyond::mnist_objectives(options)?,
    };
    r.wall_s = started.elapsed().as_secs_f64();
    Ok(r)
}

// ---------------------------------------------------------------------------------
// Mode interpolation (Fig. 3, 5)
// ---------------------------------------------------------------------------------

/// The result of one reverse-KL fit of a full-covariance Gaussian in 2-D.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GaussianFit {
    /// Fitted mean.
    #[serde(with = "exact::array")]
    pub mean: [f64; 2],
    /// Cholesky factor `[L11, L21, L22]`.
    #[serde(with = "exact::array")]
    pub chol: [f64; 3],
    /// Monte Carlo KL(q ‖ p) at the end.
    #[serde(with = "exact")]
    pub kl: f64,
}

/// Fits `q = N(m, L Lᵀ)` to `p = ½N(0, s²I) + ½N(α e₁, s²I)` by minimizing the Monte
/// Carlo reverse KL with Adam, starting from `(0, s²I)`. `L` is lower triangular with
/// `L_ii = exp(ℓ_i)`. Gradients (reparameterized, `z = m + L ε`):
/// `∂KL/∂m = −E[∇ ln p(z)]`, `∂KL/∂L_ij = −E[(∇ ln p(z))_i ε_j] − [i = j]/L_ii`, with
/// `∇ ln p(z) = Σ_c w_c(z) (c − z)/s²` and `w_c` the components' responsibilities.
pub fn fit_gaussian_to_mixture(
    s: f64,
    alpha: f64,
    n_samples: usize,
    steps: usize,
    lr: f64,
    seed: u64,
) -> GaussianFit {
    // params: m1, m2, ℓ1, ℓ2, l21
    let mut params = [0.0, 0.0, s.ln(), s.ln(), 0.0];
    let mut adam = Adam::new(5, lr);
    let inv_s2 = 1.0 / (s * s);
    let grad_ln_p = |z: [f64; 2]| {
        let d0 = z[0] * z[0] + z[1] * z[1];
        let d1 = (z[0] - alpha) * (z[0] - alpha) + z[1] * z[1];
        // responsibilities of the two equal-weight components
        let w1 = 1.0 / (1.0 + (0.5 * inv_s2 * (d1 - d0)).exp());
        let w0 = 1.0 - w1;
        [
            (w0 * (0.0 - z[0]) + w1 * (alpha - z[0])) * inv_s2,
            -z[1] * inv_s2,
        ]
    };
    let ln_p = |z: [f64; 2]| {
        let d0 = z[0] * z[0] + z[1] * z[1];
        let d1 = (z[0] - alpha) * (z[0] - alpha) + z[1] * z[1];
        let a = -0.5 * inv_s2 * d0;
        let b = -0.5 * inv_s2 * d1;
        let m = a.max(b);
        m + ((a - m).exp() + (b - m).exp()).ln()
            - std::f64::consts::LN_2
            - (2.0 * std::f64::consts::PI * s * s).ln()
    };
    for step in 0..steps {
        let mut rng = stream(seed, step as u64);
        let (l11, l22, l21) = (params[2].exp(), params[3].exp(), params[4]);
        let mut g = [0.0; 5];
        for _ in 0..n_samples {
            let e: [f64; 2] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
            let z = [params[0] + l11 * e[0], params[1] + l21 * e[0] + l22 * e[1]];
            let gp = grad_ln_p(z);
            g[0] -= gp[0];
            g[1] -= gp[1];
            g[2] -= gp[0] * e[0];
            g[3] -= gp[1] * e[1];
            g[4] -= gp[1] * e[0];
        }
        let n = n_samples as f64;
        let mut grad = [
            g[0] / n,
            g[1] / n,
            g[2] / n * l11 - 1.0,
            g[3] / n * l22 - 1.0,
            g[4] / n,
        ];
        // ∂(−H)/∂ℓ_i = −1 is included above (−[i=j]/L_ii · L_ii).
        grad.iter_mut()
            .for_each(|x| *x = if x.is_finite() { *x } else { 0.0 });
        adam.step(&mut params, &grad);
    }
    let (l11, l22, l21) = (params[2].exp(), params[3].exp(), params[4]);
    let mut rng = stream(seed, steps as u64);
    let entropy = params[2] + params[3] + (1.0 + (2.0 * std::f64::consts::PI).ln());
    let mut e_ln_p = 0.0;
    for _ in 0..n_samples {
        let e: [f64; 2] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
        e_ln_p += ln_p([params[0] + l11 * e[0], params[1] + l21 * e[0] + l22 * e[1]]);
    }
    GaussianFit {
        mean: [params[0], params[1]],
        chol: [l11, l21, l22],
        kl: -entropy - e_ln_p / n_samples as f64,
    }
}

fn mode_interpolation(o: &ReproduceOptions) -> Result<Reproduction> {
    let (scales, n_samples, steps): (Vec<f64>, usize, usize) = if o.quick {
        (vec![1.0], 1000, 1500)
    } else {
        (vec![0.25, 0.5, 1.0, 2.0], 5000, 3000)
    };
    // α/s on a fine grid around the expected threshold 5.
    let ratios: Vec<f64> = if o.quick {
        (12..=28).map(|i| i as f64 * 0.25).collect()
    } else {
        (4..=40).map(|i| i as f64 * 0.2).collect()
    };
    let jobs: Vec<(f64, f64)> = scales
        .iter()
        .flat_map(|&s| ratios.iter().map(move |&r| (s, r * s)))
        .collect();
    let fits: Vec<GaussianFit> = jobs
        .par_iter()
        .enumerate()
        .map(|(i, &(s, a))| {
            o.journaled(&format!("mode-interpolation/{i}"), || {
                Ok(fit_gaussian_to_mixture(
                    s,
                    a,
                    n_samples,
                    steps,
                    1e-2,
                    child_seed(o.seed, i as u64),
                ))
            })
        })
        .collect::<Result<_>>()?;
    let ratio = |f: &GaussianFit, a: f64| (f.mean[0].powi(2) + f.mean[1].powi(2)).sqrt() / a;
    let table = Table::new("fits")
        .with("s", Values::F64(jobs.iter().map(|j| j.0).collect()))
        .with("alpha", Values::F64(jobs.iter().map(|j| j.1).collect()))
        .with(
            "mean_norm_over_alpha",
            Values::F64(jobs.iter().zip(&fits).map(|(j, f)| ratio(f, j.1)).collect()),
        )
        .with(
            "det_sigma",
            Values::F64(
                fits.iter()
                    .map(|f| (f.chol[0] * f.chol[2]).powi(2))
                    .collect(),
            ),
        )
        .with("kl", Values::F64(fits.iter().map(|f| f.kl).collect()))
        .with("n_samples", Values::U64(vec![n_samples as u64; jobs.len()]))
        .with("steps", Values::U64(vec![steps as u64; jobs.len()]));
    // Threshold: the first α whose fit no longer interpolates (‖μ*‖/α < ¼), refined to
    // the midpoint with the previous grid point.
    let mut thresholds = Vec::new();
    let mut plots = Vec::new();
    let mut series = Vec::new();
    for &s in &scales {
        let pts: Vec<(f64, f64)> = jobs
            .iter()
            .zip(&fits)
            .filter(|(j, _)| j.0 == s)
            .map(|(j, f)| (j.1, ratio(f, j.1)))
            .collect();
        let star = pts
            .windows(2)
            .find(|w| w[0].1 >= 0.25 && w[1].1 < 0.25)
            .map(|w| 0.5 * (w[0].0 + w[1].0));
        thresholds.push((s, star));
        series.push((format!("s = {s}"), pts));
    }
    plots.push(PlotSpec {
        name: "interpolation".into(),
        title: "Reverse-KL Gaussian fit to a two-component mixture".into(),
        x_label: "alpha (distance between modes)".into(),
        y_label: "|mu*| / alpha".into(),
        log_x: false,
        lines: true,
        series,
    });
    let found: Vec<(f64, f64)> = thresholds
        .iter()
        .filter_map(|&(s, a)| a.map(|a| (s, a)))
        .collect();
    let slope = found.iter().map(|(s, a)| s * a).sum::<f64>()
        / found
            .iter()
            .map(|(s, _)| s * s)
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
    let paper = |s: f64| 5.0 * s;
    let mut md =
        String::from("| s | α* (ours) | α* (paper) | difference |\n| --- | --- | --- | --- |\n");
    for (s, a) in &thresholds {
        match a {
            Some(a) => md.push_str(&format!(
                "| {s} | {a:.2} | {:.2} | {:+.2} |\n",
                paper(*s),
                a - paper(*s)
            )),
            None => md.push_str(&format!(
                "| {s} | not found on the grid | {:.2} | — |\n",
                paper(*s)
            )),
        }
    }
    md.push_str(&format!(
        "\nSlope of α* in s (least squares through the origin): **{slope:.3}** (paper: linear, α* ≈ 5 s). {n_samples} Monte Carlo samples, {steps} Adam steps, lr 1e-2, initialized at (0, s²I).\n"
    ));
    let thr = Table::new("thresholds")
        .with("s", Values::F64(thresholds.iter().map(|t| t.0).collect()))
        .with(
            "alpha_star",
            Values::OptF64(thresholds.iter().map(|t| t.1).collect()),
        )
        .with(
            "alpha_star_paper",
            Values::F64(thresholds.iter().map(|t| paper(t.0)).collect()),
        );
    Ok(Reproduction {
        experiment: Experiment::ModeInterpolation,
        tables: vec![table, thr],
        plots,
        summary: md,
        samples: None,
        wall_s: 0.0,
    })
}

// ---------------------------------------------------------------------------------
// Tractable BNN (Fig. 4, Tables 2–3)
// ---------------------------------------------------------------------------------

/// Noise precision of the tractable-BNN reproduction (the paper does not state it).
pub const TRACTABLE_NOISE_PRECISION: f64 = 100.0;
/// Prior scale of the tractable-BNN reproduction (the paper does not state it).
pub const TRACTABLE_PRIOR_SCALE: f64 = 1.0;

fn two_unit_arch() -> Result<Arch> {
    Arch::builder(vec![1, 2, 1])
        .bias(false)
        .fixed_layer(1, vec![1.0, 1.0], None)
        .check()
}

pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (m, sd)
}

fn tractable_bnn(o: &ReproduceOptions) -> Result<Reproduction> {
    let alphas: Vec<f64> = if o.quick {
        vec![0.1]
    } else {
        vec![0.05, 0.1, 0.15, 0.2]
    };
    let n_seeds = if o.quick { 3 } else { 10 };
    let (pred_s, mi_s) = if o.quick { (300, 300) } else { (1000, 1000) };
    let arch = two_unit_arch()?;
    let lik = Likelihood::Gaussian {
        precision: TRACTABLE_NOISE_PRECISION,
    };
    let jobs: Vec<(f64, u64, bool)> = alphas
        .iter()
        .flat_map(|&a| (0..n_seeds as u64).flat_map(move |s| [(a, s, false), (a, s, true)]))
        .collect();
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Run {
        #[serde(with = "exact")]
        mse: f64,
        #[serde(with = "exact")]
        l: f64,
        #[serde(with = "exact")]
        lg_k: f64,
        #[serde(with = "exact")]
        lg_exact: f64,
        #[serde(with = "exact")]
        mi_k: f64,
        #[serde(with = "exact")]
        mi_exact: f64,
        #[serde(with = "exact")]
        mi_k_se: f64,
        #[serde(with = "exact")]
        mi_exact_se: f64,
        #[serde(with = "exact::seq")]
        mu: Vec<f64>,
        #[serde(with = "exact::seq")]
        sigma: Vec<f64>,
    }
    let counter = Counter::new(jobs.len(), o.progress.as_ref());
    let runs: Vec<Run> = jobs
        .par_iter()
        .map(|&(alpha, seed, sgm)| {
            let key = format!("tractable-bnn/{alpha}/{seed}/{sgm}");
            o.journaled(&key, || {
                let data_seed = child_seed(o.seed, seed);
                let train_set = abs_regression(100, alpha, 0.0, data_seed)?;
                let test_set = abs_regression(100, alpha, 0.0, data_seed.wrapping_add(1_000_003))?;
                let mut config = TrainConfig::new(lik);
                config.epochs = 10;
                config.batch_size = 10;
                config.lr = 5e-3;
                config.seed = child_seed(data_seed, 1);
                config.prior_scale = TRACTABLE_PRIOR_SCALE;
                let k2 = InfoNce::new(2);
                let sym = if sgm {
                    Some(&k2 as &dyn MiGradient)
                } else {
                    None
                };
                let out = train(&arch, &train_set, &config, sym, &mut |_: &StepInfo| {})?;
                let q = &out.posterior;
                let eval = child_seed(data_seed, 2);
                let mse = predictive(q, lik, &test_set, pred_s, eval)?
                    .mse
                    .unwrap_or(f64::NAN);
                let l = elbo(q, lik, &train_set, TRACTABLE_PRIOR_SCALE, mi_s, eval)?;
                let est_k = InfoNce::new(500).samples(mi_s).seed(eval).estimate(q)?;
                let est_exact = ExactEnumeration::new()
                    .samples(mi_s)
                    .seed(eval)
                    .estimate(q)?;
                let (mi_k, mi_exact) = (est_k.value, est_exact.value);
                let n = train_set.len() as f64;
                Ok(Run {
                    mse,
                    l: l.elbo_per_point,
                    lg_k: l.elbo_per_point + mi_k / n,
                    lg_exact: l.elbo_per_point + mi_exact / n,
                    mi_k,
                    mi_exact,
                    mi_k_se: est_k.std_err.unwrap_or(f64::NAN),
                    mi_exact_se: est_exact.std_err.unwrap_or(f64::NAN),
                    mu: q.mu().to_vec(),
                    sigma: q.sigma().to_vec(),
                })
            })
            .inspect(|_| counter.tick())
        })
        .collect::<Result<_>>()?;
    let table = Table::new("runs")
        .with("alpha", Values::F64(jobs.iter().map(|j| j.0).collect()))
        .with("seed", Values::U64(jobs.iter().map(|j| j.1).collect()))
        .with(
            "method",
            Values::Str(
                jobs.iter()
                    .map(|j| if j.2 { "sgm-k2".into() } else { "mfvi".into() })
                    .collect(),
            ),
        )
        .with(
            "test_mse",
            Values::F64(runs.iter().map(|r| r.mse).collect()),
        )
        .with(
            "elbo_per_point",
            Values::F64(runs.iter().map(|r| r.l).collect()),
        )
        .with(
            "elbo_sym_k500_per_point",
            Values::F64(runs.iter().map(|r| r.lg_k).collect()),
        )
        .with(
            "elbo_sym_exact_per_point",
            Values::F64(runs.iter().map(|r| r.lg_exact).collect()),
        )
        .with(
            "mi_k500_nats",
            Values::F64(runs.iter().map(|r| r.mi_k).collect()),
        )
        .with(
            "mi_exact_nats",
            Values::F64(runs.iter().map(|r| r.mi_exact).collect()),
        )
        .with(
            "mi_k500_std_err_nats",
            Values::F64(runs.iter().map(|r| r.mi_k_se).collect()),
        )
        .with(
            "mi_exact_std_err_nats",
            Values::F64(runs.iter().map(|r| r.mi_exact_se).collect()),
        )
        .with("mu_w1", Values::F64(runs.iter().map(|r| r.mu[0]).collect()))
        .with("mu_w2", Values::F64(runs.iter().map(|r| r.mu[1]).collect()))
        .with(
            "sigma_w1",
            Values::F64(runs.iter().map(|r| r.sigma[0]).collect()),
        )
        .with(
            "sigma_w2",
            Values::F64(runs.iter().map(|r| r.sigma[1]).collect()),
        );
    let paper_mse = |a: f64, sgm: bool| -> (f64, f64) {
        let i = alphas_index(a);
        if sgm {
            [(0.09, 0.19), (0.09, 0.17), (0.10, 0.15), (0.12, 0.16)][i]
        } else {
            [(0.11, 0.22), (0.12, 0.16), (0.13, 0.15), (0.18, 0.19)][i]
        }
    };
    let paper_elbo = |a: f64, sgm: bool| -> (f64, f64) {
        let i = alphas_index(a);
        if sgm {
            [
                (-0.023, -0.004),
                (-0.029, -0.007),
                (-0.035, -0.012),
                (-0.043, -0.019),
            ][i]
        } else {
            [
                (-0.022, -0.009),
                (-0.025, -0.013),
                (-0.032, -0.021),
                (-0.042, -0.031),
            ][i]
        }
    };
    let mut md = format!(
        "Noise precision τ = {TRACTABLE_NOISE_PRECISION}, prior N(0, {TRACTABLE_PRIOR_SCALE}²I) (not stated in the paper; our choice). {n_seeds} seeds, N = 100 train and 100 test, batch 10, lr 5e-3, 10 epochs, SGM with K = 2, predictions from {pred_s} samples, L^G with K = 500 and {mi_s} samples and exactly (|G| = 2).\n\n"
    );
    md.push_str("| α | method | test MSE (ours) | test MSE (paper) | L/N (ours) | L/N (paper) | L^G/N K=500 (ours) | L^G/N exact (ours) | L^G/N (paper) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    let mut shape_lg = true;
    let mut shape_sgm = true;
    for &a in &alphas {
        let mut lg_by_method = [0.0; 2];
        for sgm in [false, true] {
            let sel: Vec<&Run> = jobs
                .iter()
                .zip(&runs)
                .filter(|(j, _)| j.0 == a && j.2 == sgm)
                .map(|(_, r)| r)
                .collect();
            let col = |f: fn(&Run) -> f64| mean_sd(&sel.iter().map(|r| f(r)).collect::<Vec<_>>());
            let (mse, l, lgk, lge) = (
                col(|r| r.mse),
                col(|r| r.l),
                col(|r| r.lg_k),
                col(|r| r.lg_exact),
            );
            shape_lg &= sel.iter().all(|r| r.lg_exact >= r.l - 1e-12);
            lg_by_method[usize::from(sgm)] = lge.0;
            let (pm, ps) = paper_mse(a, sgm);
            let (pl, plg) = paper_elbo(a, sgm);
            md.push_str(&format!(
                "| {a} | {} | {:.3} ± {:.3} | {pm:.2} ± {ps:.2} | {:.4} ± {:.4} | {pl:.3} | {:.4} ± {:.4} | {:.4} ± {:.4} | {plg:.3} |\n",
                if sgm { "SGM K=2" } else { "MFVI" },
                mse.0, mse.1, l.0, l.1, lgk.0, lgk.1, lge.0, lge.1
            ));
        }
        shape_sgm &= lg_by_method[1] >= lg_by_method[0];
    }
    md.push_str(&format!(
        "\nShape of the comparison: L ≤ L^G for every run: **{}**; SGM's mean exact L^G ≥ MFVI's at every α: **{}**.\n",
        if shape_lg { "holds" } else { "fails" },
        if shape_sgm { "holds" } else { "fails" }
    ));
    // The exact posterior on a grid for the first α, seed 0.
    let a0 = alphas[0];
    let data = abs_regression(100, a0, 0.0, child_seed(o.seed, 0))?;
    let n_grid = if o.quick { 41 } else { 121 };
    let lim = 3.0 * a0.max(0.05);
    let grid: Vec<(f64, f64, f64)> = (0..n_grid * n_grid)
        .into_par_iter()
        .map(|k| {
            let (i, j) = (k / n_grid, k % n_grid);
            let w1 = -lim + 2.0 * lim * i as f64 / (n_grid - 1) as f64;
            let w2 = -lim + 2.0 * lim * j as f64 / (n_grid - 1) as f64;
            (w1, w2, log_posterior(&data, [w1, w2]))
        })
        .collect();
    let max = grid.iter().map(|g| g.2).fold(f64::NEG_INFINITY, f64::max);
    let grid_table = Table::new(&format!("exact_posterior_alpha_{a0}"))
        .with("w1", Values::F64(grid.iter().map(|g| g.0).collect()))
        .with("w2", Values::F64(grid.iter().map(|g| g.1).collect()))
        .with(
            "log_posterior_unnormalized",
            Values::F64(grid.iter().map(|g| g.2 - max).collect()),
        );
    let means = |sgm: bool| -> Vec<(f64, f64)> {
        jobs.iter()
            .zip(&runs)
            .filter(|(j, _)| j.0 == a0 && j.2 == sgm)
            .map(|(_, r)| (r.mu[0], r.mu[1]))
            .collect()
    };
    // Contour-like rendering: the grid points within 3 nats of the maximum.
    let hpd: Vec<(f64, f64)> = grid
        .iter()
        .filter(|g| g.2 > max - 3.0)
        .map(|g| (g.0, g.1))
        .collect();
    let plots = vec![PlotSpec {
        name: format!("posterior_alpha_{a0}"),
        title: format!("Exact posterior (within 3 nats of the mode) and VI means, alpha = {a0}"),
        x_label: "w1".into(),
        y_label: "w2".into(),
        log_x: false,
        lines: false,
        series: vec![
            ("exact posterior, top 3 nats".into(), hpd),
            ("MFVI means (10 seeds)".into(), means(false)),
            ("SGM K=2 means".into(), means(true)),
        ],
    }];
    Ok(Reproduction {
        experiment: Experiment::TractableBnn,
        tables: vec![table, grid_table],
        plots,
        summary: md,
        samples: None,
        wall_s: 0.0,
    })
}

fn alphas_index(a: f64) -> usize {
    [0.05, 0.1, 0.15, 0.2]
        .iter()
        .position(|&x| (x - a).abs() < 1e-9)
        .unwrap_or(0)
}

/// Unnormalized log posterior of the 2-parameter model `f = ReLU(w1 x) + ReLU(w2 x)`.
fn log_posterior(data: &Dataset, w: [f64; 2]) -> f64 {
    let x = data.x();
    let crate::elbo::Targets::Values(y) = data.targets() else {
        return f64::NAN;
    };
    let mut ll = 0.0;
    for r in 0..x.nrows() {
        let f = (w[0] * x[(r, 0)]).max(0.0) + (w[1] * x[(r, 0)]).max(0.0);
        let d = y[(r, 0)] - f;
        ll -= 0.5 * TRACTABLE_NOISE_PRECISION * d * d;
    }
    ll - 0.5 * (w[0] * w[0] + w[1] * w[1]) / (TRACTABLE_PRIOR_SCALE * TRACTABLE_PRIOR_SCALE)
}

// ---------------------------------------------------------------------------------
// MNIST (Table 1)
// ---------------------------------------------------------------------------------

fn mnist(o: &ReproduceOptions) -> Result<Reproduction> {
    let (widths, methods, n_seeds, epochs, limit): (
        Vec<usize>,
        Vec<usize>,
        u64,
        usize,
        Option<usize>,
    ) = if o.quick {
        (vec![10], vec![0, 5], 2, 5, None)
    } else {
        (vec![5, 10, 20, 30], vec![0, 5, 10, 20], 10, 10, None)
    };
    let train_set = load_mnist(&o.mnist_dir, MnistSplit::Train, limit)?;
    let test_set = load_mnist(&o.mnist_dir, MnistSplit::Test, limit)?;
    let (pred_s, elbo_s) = if o.quick { (100, 2) } else { (1000, 10) };
    let jobs: Vec<(usize, usize, u64)> = widths
        .iter()
        .flat_map(|&w| {
            methods
                .iter()
                .flat_map(move |&k| (0..n_seeds).map(move |s| (w, k, s)))
        })
        .collect();
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Run {
        #[serde(with = "exact")]
        accuracy: f64,
        #[serde(with = "exact")]
        nll: f64,
        #[serde(with = "exact")]
        elbo: f64,
        #[serde(with = "exact::option")]
        mean_mi: Option<f64>,
        #[serde(with = "exact::option")]
        saturated: Option<f64>,
        #[serde(with = "exact::option")]
        grad_ratio: Option<f64>,
        #[serde(with = "exact")]
        wall: f64,
    }
    let counter = Counter::new(jobs.len(), o.progress.as_ref());
    // Widest (slowest) runs first, so the last runs to finish are short ones and both
    // cores stay busy to the end; the results go back into job order.
    let mut runs: Vec<Run> = jobs
        .par_iter()
        .rev()
        .map(|&(width, k, seed)| {
            let key = format!("mnist/{width}/{k}/{seed}");
            o.journaled(&key, || {
                let started = Instant::now();
                let arch = Arch::builder(vec![784, width, 10]).check()?;
                let mut config = TrainConfig::new(Likelihood::Softmax);
                config.epochs = epochs;
                config.batch_size = 100;
                config.lr = 1e-3;
                config.seed = child_seed(o.seed, seed);
                let ik = InfoNce::new(k.max(1));
                let sym = (k > 0).then_some(&ik as &dyn MiGradient);
                let out = train(&arch, &train_set, &config, sym, &mut |_: &StepInfo| {})?;
                let eval = child_seed(config.seed, 9);
                let p = predictive(&out.posterior, Likelihood::Softmax, &test_set, pred_s, eval)?;
                let l = elbo(
                    &out.posterior,
                    Likelihood::Softmax,
                    &train_set,
                    1.0,
                    elbo_s,
                    eval,
                )?;
                Ok(Run {
                    accuracy: p.accuracy.unwrap_or(f64::NAN),
                    nll: p.nll,
                    elbo: l.elbo_per_point,
                    mean_mi: out.mean_mi_term,
                    saturated: out.saturated_fraction,
                    grad_ratio: out.mean_grad_ratio,
                    wall: started.elapsed().as_secs_f64(),
                })
            })
            .inspect(|_| counter.tick())
        })
        .collect::<Result<_>>()?;
    runs.reverse();
    let method_name = |k: usize| {
        if k == 0 {
            "mfvi".to_string()
        } else {
            format!("sgm-k{k}")
        }
    };
    let table = Table::new("runs")
        .with(
            "width",
            Values::U64(jobs.iter().map(|j| j.0 as u64).collect()),
        )
        .with(
            "method",
            Values::Str(jobs.iter().map(|j| method_name(j.1)).collect()),
        )
        .with("seed", Values::U64(jobs.iter().map(|j| j.2).collect()))
        .with("epochs", Values::U64(vec![epochs as u64; jobs.len()]))
        .with(
            "test_accuracy",
            Values::F64(runs.iter().map(|r| r.accuracy).collect()),
        )
        .with(
            "test_nll",
            Values::F64(runs.iter().map(|r| r.nll).collect()),
        )
        .with(
            "elbo_per_point",
            Values::F64(runs.iter().map(|r| r.elbo).collect()),
        )
        .with(
            "mean_train_mi_nats",
            Values::OptF64(runs.iter().map(|r| r.mean_mi).collect()),
        )
        .with(
            "saturated_fraction",
            Values::OptF64(runs.iter().map(|r| r.saturated).collect()),
        )
        .with(
            "mi_grad_over_elbo_grad",
            Values::OptF64(runs.iter().map(|r| r.grad_ratio).collect()),
        )
        .with("wall_s", Values::F64(runs.iter().map(|r| r.wall).collect()));
    let paper = |w: usize, k: usize| -> Option<(f64, f64)> {
        let wi = [5, 10, 20, 30].iter().position(|&x| x == w)?;
        let mi = [0, 5, 10, 20].iter().position(|&x| x == k)?;
        let t = [
            [
                (88.379, 0.023),
                (93.217, 0.022),
                (94.836, 0.025),
                (95.432, 0.023),
            ],
            [
                (88.423, 0.027),
                (93.221, 0.021),
                (94.899, 0.035),
                (95.534, 0.033),
            ],
            [
                (88.405, 0.034),
                (93.220, 0.023),
                (94.896, 0.026),
                (95.540, 0.025),
            ],
            [
                (88.408, 0.026),
                (93.221, 0.027),
                (94.905, 0.024),
                (95.552, 0.023),
            ],
        ];
        Some(t[mi][wi])
    };
    let mut md = format!(
        "{} seeds, {epochs} epochs, batch 100, lr 1e-3, prior N(0, 1), ρ0 = −3, μ0 ~ N(0, 0.1²), {pred_s}-sample predictive (local reparameterization of the first layer).\n\n| width | method | accuracy % (ours, mean ± sd) | accuracy % (paper) | difference | mean Î^K in training | saturated steps | ‖∇Î^K‖/‖∇L‖ |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
        n_seeds
    );
    let mut series: Vec<Series> = Vec::new();
    for &k in &methods {
        let mut pts = Vec::new();
        for &w in &widths {
            let sel: Vec<&Run> = jobs
                .iter()
                .zip(&runs)
                .filter(|(j, _)| j.0 == w && j.1 == k)
                .map(|(_, r)| r)
                .collect();
            let (m, sd) = mean_sd(&sel.iter().map(|r| 100.0 * r.accuracy).collect::<Vec<_>>());
            pts.push((w as f64, m));
            let avg = |f: fn(&Run) -> Option<f64>| {
                let v: Vec<f64> = sel.iter().filter_map(|r| f(r)).collect();
                if v.is_empty() {
                    "—".to_string()
                } else {
                    format!("{:.3e}", v.iter().sum::<f64>() / v.len() as f64)
                }
            };
            let (pm, ps) = paper(w, k).map_or(("—".to_string(), f64::NAN), |(m, s)| {
                (format!("{m:.3} ± {s:.3}"), m)
            });
            md.push_str(&format!(
                "| {w} | {} | {m:.3} ± {sd:.3} | {pm} | {} | {} | {} | {} |\n",
                method_name(k),
                if ps.is_nan() {
                    "—".into()
                } else {
                    format!("{:+.3}", m - ps)
                },
                avg(|r| r.mean_mi),
                avg(|r| r.saturated),
                avg(|r| r.grad_ratio)
            ));
        }
        series.push((method_name(k), pts));
    }
    let plots = vec![PlotSpec {
        name: "accuracy".into(),
        title: "MNIST test accuracy against hidden width".into(),
        x_label: "hidden width".into(),
        y_label: "accuracy %".into(),
        log_x: false,
        lines: true,
        series,
    }];
    Ok(Reproduction {
        experiment: Experiment::Mnist,
        tables: vec![table],
        plots,
        summary: md,
        samples: None,
        wall_s: 0.0,
    })
}

// ---------------------------------------------------------------------------------
// Mode proximity (Theorem 3.1)
// ---------------------------------------------------------------------------------

/// For one hidden layer: `min_{g ≠ e} ‖ω − g·ω‖`, attained by swapping the two closest
/// hidden units (`√2 ‖θ_i − θ_j‖`, since a cycle of length m moves m units by at least
/// the smallest pair distance each), from the unit cost layout.
///
/// # Errors
///
/// [`Error::UnsupportedArchitecture`] without exactly one hidden layer.
pub fn min_swap_distance(q: &MeanFieldGaussian, omega: &[f64]) -> Result<f64> {
    let uc = UnitCost::new(q)?;
    let (d, n) = (uc.width(), uc.n_per_unit());
    let mut theta = vec![0.0; d * n];
    let mut c = vec![0.0; d * d];
    uc.fill_in_place(omega, &mut theta, &mut c);
    let mut best = f64::INFINITY;
    for i in 0..d {
        for j in i + 1..d {
            let s: f64 = (0..n)
                .map(|k| (theta[i * n + k] - theta[j * n + k]).powi(2))
                .sum();
            best = best.min((2.0 * s).sqrt());
        }
    }
    Ok(best)
}

fn mode_proximity(o: &ReproduceOptions) -> Result<Reproduction> {
    let (widths, epochs, limit): (Vec<usize>, usize, Option<usize>) = if o.quick {
        (vec![5, 10, 20], 1, Some(1000))
    } else {
        (vec![5, 10, 20, 30, 50, 100], 1, None)
    };
    let train_set = load_mnist(&o.mnist_dir, MnistSplit::Train, limit)?;
    let rows: Vec<(usize, &'static str, f64, f64, f64)> = widths
        .par_iter()
        .map(|&w| {
            let arch = Arch::builder(vec![784, w, 10]).check()?;
            let mut config = TrainConfig::new(Likelihood::Softmax);
            config.epochs = epochs;
            config.seed = child_seed(o.seed, w as u64);
            let init = initial_posterior(&arch, &config)?;
            let trained =
                train(&arch, &train_set, &config, None, &mut |_: &StepInfo| {})?.posterior;
            let ln_g = Group::of(&arch).ln_order();
            let p = arch.n_params() as f64;
            let mut out = Vec::new();
            for (label, q) in [("initialization", &init), ("trained", &trained)] {
                let norm = q.mu().iter().map(|m| m * m).sum::<f64>().sqrt();
                let dist = min_swap_distance(q, q.mu())?;
                // The paper's bound 2R with R = D‖ω‖ / ln|G|, relative to ‖ω‖.
                out.push((w, label, dist / norm, 2.0 * p / ln_g, dist));
            }
            Ok(out)
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let table = Table::new("proximity")
        .with(
            "width",
            Values::U64(rows.iter().map(|r| r.0 as u64).collect()),
        )
        .with(
            "weights",
            Values::Str(rows.iter().map(|r| r.1.to_string()).collect()),
        )
        .with(
            "min_distance_over_norm",
            Values::F64(rows.iter().map(|r| r.2).collect()),
        )
        .with(
            "paper_bound_over_norm",
            Values::F64(rows.iter().map(|r| r.3).collect()),
        )
        .with(
            "min_distance",
            Values::F64(rows.iter().map(|r| r.4).collect()),
        );
    let mut md = format!(
        "784-d-10 ReLU MLPs; posterior means at initialization (μ ~ N(0, 0.1²), biases 0) and after {epochs} epoch(s) of MFVI on MNIST{}. min over g ≠ e of ‖ω − g·ω‖ is the closest swap of two hidden units.\n\n| width | weights | min ‖ω − g·ω‖ / ‖ω‖ (ours) | paper's bound 2R/‖ω‖ = 2D / ln(d!) |\n| --- | --- | --- | --- |\n",
        if limit.is_some() {
            " (first 1000 images)"
        } else {
            ""
        }
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {:.4} | {:.1} |\n",
            r.0, r.1, r.2, r.3
        ));
    }
    let series = ["initialization", "trained"]
        .iter()
        .map(|l| {
            (
                format!("measured, {l}"),
                rows.iter()
                    .filter(|r| r.1 == *l)
                    .map(|r| (r.0 as f64, r.2))
                    .collect(),
            )
        })
        .collect();
    let plots = vec![PlotSpec {
        name: "proximity".into(),
        title: "Closest equivalent mode relative to |w|".into(),
        x_label: "hidden width".into(),
        y_label: "min |w - g.w| / |w|".into(),
        log_x: false,
        lines: true,
        series,
    }];
    Ok(Reproduction {
        experiment: Experiment::ModeProximity,
        tables: vec![table],
        plots,
        summary: md,
        samples: None,
        wall_s: 0.0,
    })
}
