//! The tractable BNN (the paper's Fig. 4, Tables 2–3): a two-unit net on |x| data,
//! MFVI against SGM with K = 2, with the exact posterior on a grid.

use rayon::prelude::*;

use crate::data::Dataset;
use crate::data::abs_regression;
use crate::error::Result;
use crate::estimators::{ExactEnumeration, InfoNce, MiEstimator, MiGradient};
use crate::execute::Schedule;
use crate::journal::exact;
use crate::rng::child_seed;
use crate::study::experiment::{
    Experiment, Figure, PlotSpec, ReproduceOptions, Reproduction, SeriesStyle, Study,
    contour_segments, ellipse, grouped_plot, mean_sd,
};
use crate::study::experiments::tractable_quadrature::{GroundTruth, TwoUnitModel};
use crate::study::figure::{dodge, extent};
use crate::study::format::number;
use crate::study::table::{Table, Values};
use crate::train::{TrainConfig, train};
use crate::weights::Arch;
use crate::weights::Likelihood;

/// Noise precision of the tractable-BNN reproduction (the paper does not state it).
pub const TRACTABLE_NOISE_PRECISION: f64 = 100.0;
/// Prior scale of the tractable-BNN reproduction (the paper does not state it).
pub const TRACTABLE_PRIOR_SCALE: f64 = 1.0;

pub(crate) fn two_unit_arch() -> Result<Arch> {
    Arch::builder(vec![1, 2, 1])
        .bias(false)
        .fixed_layer(1, vec![1.0, 1.0], None)
        .check()
}

/// Training and test points of the tractable BNN.
pub(crate) const N_POINTS: usize = 100;
/// Its minibatch size.
pub(crate) const BATCH: usize = 10;

/// The unnormalized log posterior of the 2-parameter model under `setting` on an `n × n`
/// grid of `[−lim, lim]²`, for the training data of seed 0 at slope `alpha`.
pub(crate) struct PosteriorGrid {
    /// `(w1, w2, log posterior)`, `w1 = axis[k / n]`, `w2 = axis[k % n]` for one axis of
    /// `n` evenly spaced coordinates.
    pub(crate) points: Vec<(f64, f64, f64)>,
    /// The largest log posterior on the grid.
    pub(crate) max: f64,
}

impl PosteriorGrid {
    /// Evaluates the grid.
    ///
    /// # Errors
    ///
    /// Those of [`abs_regression`].
    pub(crate) fn new(
        o: &ReproduceOptions,
        setting: &Setting,
        alpha: f64,
        lim: f64,
        n: usize,
    ) -> Result<Self> {
        let data = abs_regression(N_POINTS, alpha, setting.noise_std, child_seed(o.seed, 0))?;
        let axis: Vec<f64> = (0..n)
            .map(|i| -lim + 2.0 * lim * i as f64 / (n - 1) as f64)
            .collect();
        let points: Vec<(f64, f64, f64)> = (0..n * n)
            .into_par_iter()
            .map(|k| {
                let (w1, w2) = (axis[k / n], axis[k % n]);
                (w1, w2, log_posterior(&data, [w1, w2], setting))
            })
            .collect();
        let max = points.iter().map(|g| g.2).fold(f64::NEG_INFINITY, f64::max);
        Ok(PosteriorGrid { points, max })
    }
}

/// The settings the paper leaves open: noise precision τ, prior scale, and the weight of
/// Î against the ELBO (`per_batch`: a minibatch objective not rescaled to the data set,
/// i.e. Î weighted N/M; [`TrainConfig::mi_weight`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    /// Noise precision τ of the Gaussian likelihood.
    pub precision: f64,
    /// Prior scale s of N(0, s²I).
    pub prior_scale: f64,
    /// Î weighted N/M (per-batch normalisation) instead of 1 (per point).
    pub per_batch: bool,
    /// Standard deviation of the Gaussian noise on the data's targets (0: y = α|x|).
    pub noise_std: f64,
}

impl Setting {
    /// The setting of `reproduce tractable-bnn`: τ = 100, s = 1, per point.
    pub const REPRODUCTION: Setting = Setting {
        precision: TRACTABLE_NOISE_PRECISION,
        prior_scale: TRACTABLE_PRIOR_SCALE,
        per_batch: false,
        noise_std: 0.0,
    };

    /// The normalisation's name.
    pub fn normalisation(&self) -> &'static str {
        if self.per_batch {
            "per batch"
        } else {
            "per point"
        }
    }
}

/// One trained run of the tractable BNN and its evaluation.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Run {
    #[serde(with = "exact")]
    pub(crate) mse: f64,
    #[serde(with = "exact")]
    pub(crate) l: f64,
    /// The Monte Carlo standard error of `l`.
    #[serde(with = "exact")]
    pub(crate) l_se: f64,
    #[serde(with = "exact")]
    pub(crate) lg_k: f64,
    #[serde(with = "exact")]
    pub(crate) lg_exact: f64,
    #[serde(with = "exact")]
    pub(crate) mi_k: f64,
    #[serde(with = "exact")]
    pub(crate) mi_exact: f64,
    #[serde(with = "exact")]
    pub(crate) mi_k_se: f64,
    #[serde(with = "exact")]
    pub(crate) mi_exact_se: f64,
    /// ln p(D), exact L and I of q on the training data ([`GroundTruth`]).
    pub(crate) truth: GroundTruth,
    #[serde(with = "exact::seq")]
    pub(crate) mu: Vec<f64>,
    #[serde(with = "exact::seq")]
    pub(crate) sigma: Vec<f64>,
}

/// Trains MFVI (or SGM with K = 2) on |x| data with slope `alpha` and evaluates it: test
/// MSE, L/N, L^G/N with I^500 and exact I, and the posterior's μ and σ.
///
/// # Errors
///
/// Training divergence, bad settings.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_run(
    setting: &Setting,
    o: &ReproduceOptions,
    alpha: f64,
    seed: u64,
    sgm: bool,
    pred_s: usize,
    mi_s: usize,
) -> Result<Run> {
    let arch = two_unit_arch()?;
    let lik = Likelihood::Gaussian {
        precision: setting.precision,
    };
    let data_seed = child_seed(o.seed, seed);
    let train_set = abs_regression(N_POINTS, alpha, setting.noise_std, data_seed)?;
    let test_set = abs_regression(
        N_POINTS,
        alpha,
        setting.noise_std,
        data_seed.wrapping_add(1_000_003),
    )?;
    let mut config = TrainConfig::new(lik);
    config.epochs = 10;
    config.batch_size = BATCH;
    config.lr = 5e-3;
    config.seed = child_seed(data_seed, 1);
    config.prior_scale = setting.prior_scale;
    if setting.per_batch {
        config.mi_weight = train_set.len() as f64 / config.batch_size as f64;
    }
    let k2 = InfoNce::new(2)?;
    let sym = if sgm {
        Some(&k2 as &dyn MiGradient)
    } else {
        None
    };
    let out = train(&arch, &train_set, &config, sym, &crate::observe::Silent)?;
    let q = &out.posterior;
    let eval = child_seed(data_seed, 2);
    let (p, l) = crate::study::evaluate(
        q,
        lik,
        &train_set,
        &test_set,
        setting.prior_scale,
        pred_s,
        mi_s,
        eval,
        &o.limits,
    )?;
    let mse = p.mse.unwrap_or(f64::NAN);
    let est_k = InfoNce::new(500)?
        .samples(mi_s)?
        .seed(eval)
        .estimate_within(q, &o.limits)?;
    let est_exact = ExactEnumeration::new()
        .samples(mi_s)?
        .seed(eval)
        .estimate_within(q, &o.limits)?;
    let (mi_k, mi_exact) = (est_k.value, est_exact.value);
    let n = train_set.len() as f64;
    let truth = TwoUnitModel::new(&train_set, setting.precision, setting.prior_scale)?
        .ground_truth([q.mu()[0], q.mu()[1]], [q.sigma()[0], q.sigma()[1]]);
    Ok(Run {
        mse,
        l: l.elbo_per_point,
        l_se: l.elbo_per_point_std_err,
        lg_k: l.elbo_per_point + mi_k / n,
        lg_exact: l.elbo_per_point + mi_exact / n,
        mi_k,
        mi_exact,
        mi_k_se: est_k.std_err.unwrap_or(f64::NAN),
        mi_exact_se: est_exact.std_err.unwrap_or(f64::NAN),
        truth,
        mu: q.mu().to_vec(),
        sigma: q.sigma().to_vec(),
    })
}

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TractableBnn;

impl Study for TractableBnn {
    /// The exact posterior with the fitted q (`posterior_figure`), and `test_mse`:
    /// test MSE against α per method, ours (mean ± SE over seeds) beside the paper's
    /// means, on a log axis (the values span a decade; the paper's sds exceed its means,
    /// so they are not drawn: the summary lists them).
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>> {
        let runs = crate::study::table::find(tables, "runs")?;
        let grid = tables
            .iter()
            .find(|t| t.name.starts_with("exact_posterior_alpha_"))
            .ok_or_else(|| {
                crate::error::Error::invalid(
                    "tables",
                    "exact_posterior_alpha_*",
                    "not in the report",
                )
            })?;
        let (alpha, method, mse) = (
            runs.reals("alpha")?,
            runs.texts("method")?,
            runs.reals("test_mse")?,
        );
        let (mut plot, groups) = grouped_plot(
            PlotSpec::new(
                "test_mse",
                "Test MSE against α (ours: mean ± SE over seeds)",
                "α",
                "test MSE",
            ),
            &method,
            &alpha,
            &mse,
            0.004,
        );
        plot.log_y = true;
        for (i, (m, pts, _)) in groups.iter().enumerate() {
            let sgm = m != "mfvi";
            let paper = pts
                .iter()
                .map(|&(a, _)| (dodge(a, i, groups.len(), 0.004), paper_mse(a, sgm).0))
                .collect();
            plot = plot.series(
                &format!("{m} (paper, mean)"),
                paper,
                None,
                SeriesStyle::reference(i),
            );
        }
        let mean_of = |m: &str| {
            groups
                .iter()
                .find(|g| g.0 == m)
                .map(|g| g.1.clone())
                .unwrap_or_default()
        };
        let (mf, sg) = (mean_of("mfvi"), mean_of("sgm-k2"));
        let lower = mf.iter().zip(&sg).filter(|(a, b)| b.1 < a.1).count();
        let range = |v: &[(f64, f64)]| {
            let (a, b) = extent(v.iter().map(|p| p.1));
            format!("{}–{}", number(a, 2), number(b, 2))
        };
        Ok(vec![
            posterior_figure(runs, grid)?,
            Figure {
                plot,
                caption: format!(
                    "Our test MSE is {} for MFVI and {} for SGM (lower than MFVI's at {lower} of {} α); the paper's means: {} and {}.",
                    range(&mf),
                    range(&sg),
                    mf.len(),
                    range(
                        &mf.iter()
                            .map(|&(a, _)| (a, paper_mse(a, false).0))
                            .collect::<Vec<_>>()
                    ),
                    range(
                        &mf.iter()
                            .map(|&(a, _)| (a, paper_mse(a, true).0))
                            .collect::<Vec<_>>()
                    ),
                ),
            },
        ])
    }

    fn experiment(&self) -> Experiment {
        Experiment::TractableBnn
    }

    fn needs_mnist(&self) -> bool {
        false
    }

    /// Runs the experiment.
    ///
    /// # Errors
    ///
    /// Missing data, training divergence, named.
    fn run(&self, o: &ReproduceOptions) -> Result<Reproduction> {
        let alphas: Vec<f64> = if o.quick {
            vec![0.1]
        } else {
            vec![0.05, 0.1, 0.15, 0.2]
        };
        let n_seeds = if o.quick { 3 } else { 10 };
        let (pred_s, mi_s) = if o.quick { (300, 300) } else { (1000, 1000) };
        let jobs: Vec<(f64, u64, bool)> = alphas
            .iter()
            .flat_map(|&a| (0..n_seeds as u64).flat_map(move |s| [(a, s, false), (a, s, true)]))
            .collect();
        let runs: Vec<Run> = o.executor().map(
            &jobs,
            Schedule::InOrder,
            |_, &(alpha, seed, sgm)| format!("tractable-bnn/{alpha}/{seed}/{sgm}"),
            |_, &(alpha, seed, sgm)| {
                train_run(&Setting::REPRODUCTION, o, alpha, seed, sgm, pred_s, mi_s)
            },
        )?;
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
            .with(
                "ln_evidence_per_point",
                Values::F64(
                    runs.iter()
                        .map(|r| r.truth.ln_evidence / N_POINTS as f64)
                        .collect(),
                ),
            )
            .with(
                "elbo_closed_form_per_point",
                Values::F64(
                    runs.iter()
                        .map(|r| r.truth.elbo / N_POINTS as f64)
                        .collect(),
                ),
            )
            .with(
                "mi_quadrature_nats",
                Values::F64(runs.iter().map(|r| r.truth.mi).collect()),
            )
            .with(
                "kl_q_posterior_nats",
                Values::F64(runs.iter().map(|r| r.truth.kl()).collect()),
            )
            .with(
                "kl_qg_posterior_nats",
                Values::F64(runs.iter().map(|r| r.truth.kl_g()).collect()),
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
        let paper_mse = paper_mse;
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
                let col =
                    |f: fn(&Run) -> f64| mean_sd(&sel.iter().map(|r| f(r)).collect::<Vec<_>>());
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
        md.push_str(&ground_truth_table(&alphas, &jobs, &runs));
        // The exact posterior on a grid for the first α, seed 0.
        let a0 = alphas[0];
        let n_grid = if o.quick { 41 } else { 121 };
        let PosteriorGrid { points: grid, max } =
            PosteriorGrid::new(o, &Setting::REPRODUCTION, a0, 3.0 * a0.max(0.05), n_grid)?;
        let grid_table = Table::new(&format!("exact_posterior_alpha_{a0}"))
            .with("w1", Values::F64(grid.iter().map(|g| g.0).collect()))
            .with("w2", Values::F64(grid.iter().map(|g| g.1).collect()))
            .with(
                "log_posterior_unnormalized",
                Values::F64(grid.iter().map(|g| g.2 - max).collect()),
            );
        Ok(Reproduction {
            experiment: Experiment::TractableBnn,
            tables: vec![table, grid_table],
            summary: md,
            samples: None,
            wall_s: 0.0,
        })
    }
}

/// The quadrature table (issue 31): per α and method, ln p(D)/N of the run's training
/// data, L/N and L^G/N exactly, and KL(q ‖ p(ω | D)) and KL(q^G ‖ p(ω | D)) in nats, mean
/// ± sd over seeds, with the largest gap between the exact L and the run's Monte Carlo L̂ in units of L̂'s
/// standard error.
pub(crate) fn ground_truth_table(
    alphas: &[f64],
    jobs: &[(f64, u64, bool)],
    runs: &[Run],
) -> String {
    let n = N_POINTS as f64;
    let mut md = String::from(
        "\nGround truth by quadrature (`tractable_quadrature`): ln p(D) of each run's training data on a 2-D grid (checked against a per-quadrant computation), L exactly (Gaussian moments of the ReLU), I of q by quadrature, so KL(q ‖ p(ω | D)) = ln p(D) − L and KL(q^G ‖ p(ω | D)) = ln p(D) − L − I; L and ln p(D) per training point whatever the objective's normalisation; mean ± sd over seeds.\n\n| α | method | ln p(D)/N | L/N (exact) | L^G/N (exact) | KL(q ‖ p(ω\\|D)) nats | KL(q^G ‖ p(ω\\|D)) nats | I by quadrature | largest \\|L − L̂\\| / SE(L̂) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for &a in alphas {
        for sgm in [false, true] {
            let sel: Vec<&Run> = jobs
                .iter()
                .zip(runs)
                .filter(|(j, _)| j.0 == a && j.2 == sgm)
                .map(|(_, r)| r)
                .collect();
            let col =
                |f: &dyn Fn(&Run) -> f64| mean_sd(&sel.iter().map(|r| f(r)).collect::<Vec<_>>());
            let (ev, l, lg, kl, klg, mi) = (
                col(&|r| r.truth.ln_evidence / n),
                col(&|r| r.truth.elbo / n),
                col(&|r| (r.truth.elbo + r.truth.mi) / n),
                col(&|r| r.truth.kl()),
                col(&|r| r.truth.kl_g()),
                col(&|r| r.truth.mi),
            );
            let gap = sel
                .iter()
                .map(|r| (r.truth.elbo / n - r.l).abs() / r.l_se)
                .fold(0.0, f64::max);
            md.push_str(&format!(
                "| {a} | {} | {:.4} ± {:.4} | {:.4} ± {:.4} | {:.4} ± {:.4} | {:.3} ± {:.3} | {:.3} ± {:.3} | {:.4} ± {:.4} | {gap:.2} |\n",
                if sgm { "SGM K=2" } else { "MFVI" },
                ev.0, ev.1, l.0, l.1, lg.0, lg.1, kl.0, kl.1, klg.0, klg.1, mi.0, mi.1
            ));
        }
    }
    md
}

/// The paper's test MSE (mean, sd over seeds) at α ∈ {0.05, 0.1, 0.15, 0.2}, MFVI or
/// SGM with K = 2.
fn paper_mse(a: f64, sgm: bool) -> (f64, f64) {
    let i = alphas_index(a);
    if sgm {
        [(0.09, 0.19), (0.09, 0.17), (0.10, 0.15), (0.12, 0.16)][i]
    } else {
        [(0.11, 0.22), (0.12, 0.16), (0.13, 0.15), (0.18, 0.19)][i]
    }
}

/// `posterior_alpha_<α>`: the exact posterior (contours 0.5, 2 and 4.5 nats below its
/// maximum: a Gaussian's 1, 2 and 3 σ) with each method's q (1- and 2-σ ellipses, three
/// seeds; SGM's q^G with both components) and means (every seed).
fn posterior_figure(runs: &Table, grid: &Table) -> Result<Figure> {
    let a0: f64 = grid
        .name
        .trim_start_matches("exact_posterior_alpha_")
        .parse()
        .map_err(|_| crate::error::Error::invalid("table", &grid.name, "names no α"))?;
    let (w1, w2, z) = (
        grid.reals("w1")?,
        grid.reals("w2")?,
        grid.reals("log_posterior_unnormalized")?,
    );
    // The grid is w1-major over one axis: w2 runs through the axis for each w1.
    let n = (w1.len() as f64).sqrt().round() as usize;
    let axis: Vec<f64> = w2.iter().take(n).copied().collect();
    let contours: Vec<Vec<(f64, f64)>> = if n * n == w1.len() && n > 1 {
        [-0.5, -2.0, -4.5]
            .iter()
            .flat_map(|&level| contour_segments(&axis, &axis, &z, level))
            .collect()
    } else {
        Vec::new()
    };
    let (alpha, seed, method) = (
        runs.reals("alpha")?,
        runs.reals("seed")?,
        runs.texts("method")?,
    );
    let (m1, m2, s1, s2) = (
        runs.reals("mu_w1")?,
        runs.reals("mu_w2")?,
        runs.reals("sigma_w1")?,
        runs.reals("sigma_w2")?,
    );
    let rows = |sgm: bool| -> Vec<usize> {
        (0..alpha.len())
            .filter(|&i| alpha[i] == a0 && (method[i] != "mfvi") == sgm)
            .collect()
    };
    let ellipses = |sgm: bool, swapped: bool| -> Vec<Vec<(f64, f64)>> {
        rows(sgm)
            .into_iter()
            .filter(|&i| seed[i] < 3.0)
            .flat_map(|i| {
                let (m, s) = if swapped {
                    ((m2[i], m1[i]), (s2[i], s1[i]))
                } else {
                    ((m1[i], m2[i]), (s1[i], s2[i]))
                };
                [ellipse(m, s, 1.0), ellipse(m, s, 2.0)]
            })
            .collect()
    };
    let means = |sgm: bool| {
        rows(sgm)
            .into_iter()
            .map(|i| (m1[i], m2[i]))
            .collect::<Vec<_>>()
    };
    let mut plot = PlotSpec::new(
        &format!("posterior_alpha_{a0}"),
        &format!("Exact posterior and variational q, α = {a0}"),
        "w1",
        "w2",
    );
    plot.paths = vec![
        (
            "exact posterior: 1, 2, 3 σ-equivalent contours".into(),
            contours,
        ),
        ("SGM K=2 q^G: both components (3 seeds)".into(), {
            let mut e = ellipses(true, false);
            e.extend(ellipses(true, true));
            e
        }),
        ("MFVI q: 1 and 2 σ (3 seeds)".into(), ellipses(false, false)),
    ];
    plot = plot
        .series(
            "MFVI means (all seeds)",
            means(false),
            None,
            SeriesStyle::own(0).points(),
        )
        .series(
            "SGM K=2 means",
            means(true),
            None,
            SeriesStyle::own(1).points(),
        );
    let on_axis = |sgm: bool| {
        let r = rows(sgm);
        let near = r
            .iter()
            .filter(|&&i| m1[i].abs().min(m2[i].abs()) < 0.25 * m1[i].abs().max(m2[i].abs()))
            .count();
        (near, r.len())
    };
    let ((nm, tm), (ns, ts)) = (on_axis(false), on_axis(true));
    Ok(Figure {
        plot,
        caption: format!(
            "At α = {a0}, {nm} of {tm} MFVI means and {ns} of {ts} SGM means sit near an axis (one weight under a quarter of the other): on one of the posterior's two symmetric modes."
        ),
    })
}

fn alphas_index(a: f64) -> usize {
    [0.05, 0.1, 0.15, 0.2]
        .iter()
        .position(|&x| (x - a).abs() < 1e-9)
        .unwrap_or(0)
}

/// Unnormalized log posterior of the 2-parameter model `f = ReLU(w1 x) + ReLU(w2 x)`.
fn log_posterior(data: &Dataset, w: [f64; 2], setting: &Setting) -> f64 {
    let x = data.x();
    let crate::data::Targets::Values(y) = data.targets() else {
        return f64::NAN;
    };
    let mut ll = 0.0;
    for r in 0..x.nrows() {
        let f = (w[0] * x[(r, 0)]).max(0.0) + (w[1] * x[(r, 0)]).max(0.0);
        let d = y[(r, 0)] - f;
        ll -= 0.5 * setting.precision * d * d;
    }
    ll - 0.5 * (w[0] * w[0] + w[1] * w[1]) / (setting.prior_scale * setting.prior_scale)
}
