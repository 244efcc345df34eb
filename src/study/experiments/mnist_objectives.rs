//! `mnist-objectives` (beyond the paper): MNIST, widths 10 and 30, several seeds: plain
//! MFVI, the paper's uniform SGM (L + Î^K) and SGM with the sandwich lower bound (and, at
//! width 10, the exact ln-perm objective): accuracy, ELBO, L^G = L + I with I exact
//! (permanent or pruned permanent), and whether the symmetrization term had a gradient.

use crate::execute::Schedule;
use crate::journal::exact;

use crate::data::DataSpec;
use crate::error::Result;
use crate::estimators::{Sandwich, cut_to_group};
use crate::rng::child_seed;
use crate::study::experiment::{
    Experiment, Figure, MnistUsed, PlotSpec, ReproduceOptions, Reproduction, Study, grouped_plot,
    mean_sd,
};
use crate::study::format::number;
use crate::study::table::{Table, Values};
use crate::study::{Objective, TrainRun, run_training};
use crate::train::TrainConfig;
use crate::weights::Likelihood;

/// What the MNIST objectives study keeps of one training run (journaled).
#[derive(serde::Serialize, serde::Deserialize)]
struct ObjRun {
    #[serde(with = "exact::option")]
    accuracy: Option<f64>,
    #[serde(with = "exact")]
    nll: f64,
    #[serde(with = "exact::option")]
    ece: Option<f64>,
    #[serde(with = "exact::option")]
    brier: Option<f64>,
    #[serde(with = "exact")]
    elbo: f64,
    #[serde(with = "exact")]
    n_data: f64,
    #[serde(with = "exact::option")]
    exact: Option<f64>,
    exact_estimator: Option<String>,
    #[serde(with = "exact")]
    ln_g: f64,
    #[serde(with = "exact::option")]
    mean_mi: Option<f64>,
    #[serde(with = "exact::option")]
    saturated: Option<f64>,
    #[serde(with = "exact::option")]
    grad_ratio: Option<f64>,
    #[serde(with = "exact")]
    train_wall: f64,
    #[serde(with = "exact")]
    lower: f64,
    #[serde(with = "exact")]
    upper: f64,
}

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct MnistObjectives;

impl Study for MnistObjectives {
    /// Per ρ0: `accuracy_rho<ρ0>`, test accuracy against width per objective, and
    /// `elbo_g_rho<ρ0>`, the symmetrized bound L^G/N per objective (mean ± SE over
    /// seeds; L^G with exact I where computable, else with the sandwich's lower bound,
    /// as the table's `elbo_g_uses` says).
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>> {
        let t = crate::study::table::find(tables, "runs")?;
        let (width, rho, objective) = (
            t.reals("width")?,
            t.reals("init_rho")?,
            t.texts("objective")?,
        );
        let (acc, lg) = (t.reals("test_accuracy")?, t.reals("elbo_g_per_point")?);
        let mut rhos: Vec<f64> = rho.clone();
        rhos.sort_by(f64::total_cmp);
        rhos.dedup();
        let mut figures = Vec::new();
        for &r in &rhos {
            let rows: Vec<usize> = (0..rho.len()).filter(|&i| rho[i] == r).collect();
            let pick = |v: &[f64]| rows.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            let labels: Vec<String> = rows.iter().map(|&i| objective[i].clone()).collect();
            let w = pick(&width);
            let dodge = 0.6;
            for (stem, title, y_label, values, scale, digits) in [
                (
                    "accuracy",
                    "test accuracy",
                    "accuracy % (mean ± SE over seeds)",
                    pick(&acc),
                    100.0,
                    4,
                ),
                (
                    "elbo_g",
                    "symmetrized bound L^G / N",
                    "L^G / N, nats (mean ± SE over seeds)",
                    pick(&lg),
                    1.0,
                    5,
                ),
            ] {
                let y: Vec<f64> = values.iter().map(|v| v * scale).collect();
                let rho_name = number(r, 3);
                let (plot, groups) = grouped_plot(
                    PlotSpec::new(
                        &format!("{stem}_rho{rho_name}"),
                        &format!("MNIST {title} by objective, ρ0 = {rho_name}"),
                        "hidden width",
                        y_label,
                    ),
                    &labels,
                    &w,
                    &y,
                    dodge,
                );
                let w_max = w.iter().copied().fold(0.0f64, f64::max);
                let at_max: Vec<String> = groups
                    .iter()
                    .filter_map(|(l, pts, se)| {
                        let i = pts.iter().position(|p| p.0 == w_max)?;
                        Some(format!(
                            "{l} {} ± {}",
                            number(pts[i].1, digits),
                            number(se[i], 2)
                        ))
                    })
                    .collect();
                figures.push(Figure {
                    plot,
                    caption: format!(
                        "At width {w_max} and ρ0 = {rho_name}, {title}: {}.",
                        at_max.join(", ")
                    ),
                });
            }
        }
        Ok(figures)
    }

    fn experiment(&self) -> Experiment {
        Experiment::MnistObjectives
    }

    fn needs_mnist(&self) -> bool {
        true
    }

    /// Runs the experiment.
    ///
    /// # Errors
    ///
    /// Missing data, training divergence, named.
    fn run(&self, o: &ReproduceOptions) -> Result<Reproduction> {
        let plan = Plan::of(o);
        let jobs = plan.jobs();
        let reports: Vec<ObjRun> = o.executor().map(
            &jobs,
            Schedule::InOrder,
            |_, &(width, init_rho, objective, seed)| {
                format!("mnist-objectives/{width}/{init_rho}/{objective}/{seed}")
            },
            |_, job| one_run(o, &plan, job),
        )?;
        let summary = summary(o, &plan, &jobs, &reports)?;
        Ok(Reproduction {
            experiment: Experiment::MnistObjectives,
            tables: vec![runs_table(&plan, &jobs, &reports)],
            summary,
            samples: None,
            wall_s: 0.0,
        })
    }
}

/// One training run: (width, initial ρ, objective, seed).
type Job = (usize, f64, Objective, u64);

/// What the experiment covers (less with `quick`).
struct Plan {
    widths: Vec<usize>,
    n_seeds: u64,
    epochs: usize,
    limit: Option<usize>,
    pred_s: usize,
    mi_s: usize,
}

/// ρ0 = −3 (σ ≈ 0.05: units hundreds of nats apart, I = ln|G| from the start) and
/// ρ0 = 1 (σ ≈ 1.3: units overlap, I < ln|G|, the symmetry term has a gradient).
const INITS: [f64; 2] = [-3.0, 1.0];

impl Plan {
    fn of(o: &ReproduceOptions) -> Self {
        let (widths, n_seeds, epochs, limit, pred_s, mi_s) = if o.quick {
            (vec![10], 1u64, 2, Some(1000), 100, 20)
        } else {
            (vec![10, 30], 3u64, 10, None, 1000, 200)
        };
        Plan {
            widths,
            n_seeds,
            epochs,
            limit,
            pred_s,
            mi_s,
        }
    }

    /// The objectives trained at width `w` (the exact one only where the permanent is
    /// cheap).
    fn objectives(w: usize) -> Vec<Objective> {
        let mut v = vec![
            Objective::Mfvi,
            Objective::Sgm { k: 20 },
            Objective::SgmSandwich { k: 16 },
        ];
        if w <= 12 {
            v.push(Objective::SgmExact);
        }
        v
    }

    fn jobs(&self) -> Vec<Job> {
        let n_seeds = self.n_seeds;
        self.widths
            .iter()
            .flat_map(|&w| {
                INITS.iter().flat_map(move |&rho| {
                    Self::objectives(w)
                        .into_iter()
                        .flat_map(move |obj| (0..n_seeds).map(move |s| (w, rho, obj, s)))
                })
            })
            .collect()
    }
}

/// One job: the training run and, on its final posterior, the sandwich interval.
fn one_run(
    o: &ReproduceOptions,
    plan: &Plan,
    &(width, init_rho, objective, seed): &Job,
) -> Result<ObjRun> {
    let (epochs, limit, pred_s, mi_s) = (plan.epochs, plan.limit, plan.pred_s, plan.mi_s);
    let mut config = TrainConfig::new(Likelihood::Softmax);
    config.epochs = epochs;
    config.init_rho = init_rho;
    config.seed = child_seed(o.seed, seed);
    let run = TrainRun {
        data: DataSpec::Mnist {
            dir: o.mnist_dir.clone(),
            limit,
        },
        hidden: vec![width],
        activation: crate::weights::Activation::Relu,
        objective,
        config,
        predictive_samples: pred_s,
        elbo_samples: 10,
        eval_k: 20,
        mi_samples: mi_s,
        limits: o.limits,
    };
    let r = run_training(&run, &crate::observe::Silent)?;
    // The sandwich interval on the final posterior, also where exact I is
    // not computable (overlapping wide layers); the exact I's draws: paired.
    let (lo, up) = Sandwich::new(64)?
        .samples(mi_s)?
        .seed(child_seed(run.config.seed, 7))
        .estimate_both_within(&r.file.posterior, &o.limits)?;
    Ok(ObjRun {
        accuracy: r.predictive.accuracy,
        nll: r.predictive.nll,
        ece: r.predictive.calibration.as_ref().map(|c| c.ece),
        brier: r.predictive.calibration.as_ref().map(|c| c.brier),
        elbo: r.elbo.elbo_per_point,
        n_data: r.elbo.n_data as f64,
        exact: r.exact_mi.as_ref().map(|e| e.value),
        exact_estimator: r.exact_mi.as_ref().map(|e| e.estimator.to_string()),
        ln_g: r.mi.ln_group_order,
        mean_mi: r.outcome.mean_mi_term,
        saturated: r.outcome.saturated_fraction,
        grad_ratio: r.outcome.mean_grad_ratio,
        train_wall: r.outcome.wall_s,
        lower: lo.value,
        upper: up.value,
    })
}

/// L^G/N = L/N + I/N with exact I, else with the sandwich's lower bound cut to
/// [0, ln|G|] (a lower bound on L^G).
fn elbo_g(r: &ObjRun) -> f64 {
    r.elbo + r.exact.unwrap_or(cut_to_group(r.lower, r.ln_g)) / r.n_data
}

/// The table: one row per run.
fn runs_table(plan: &Plan, jobs: &[Job], reports: &[ObjRun]) -> Table {
    let epochs = plan.epochs;
    Table::new("runs")
        .with(
            "width",
            Values::U64(jobs.iter().map(|j| j.0 as u64).collect()),
        )
        .with("init_rho", Values::F64(jobs.iter().map(|j| j.1).collect()))
        .with(
            "objective",
            Values::Str(jobs.iter().map(|j| j.2.to_string()).collect()),
        )
        .with("seed", Values::U64(jobs.iter().map(|j| j.3).collect()))
        .with("epochs", Values::U64(vec![epochs as u64; jobs.len()]))
        .with(
            "test_accuracy",
            Values::F64(
                reports
                    .iter()
                    .map(|r| r.accuracy.unwrap_or(f64::NAN))
                    .collect(),
            ),
        )
        .with(
            "test_nll",
            Values::F64(reports.iter().map(|r| r.nll).collect()),
        )
        .with(
            "test_ece",
            Values::OptF64(reports.iter().map(|r| r.ece).collect()),
        )
        .with(
            "test_brier",
            Values::OptF64(reports.iter().map(|r| r.brier).collect()),
        )
        .with(
            "elbo_per_point",
            Values::F64(reports.iter().map(|r| r.elbo).collect()),
        )
        .with(
            "exact_i",
            Values::OptF64(reports.iter().map(|r| r.exact).collect()),
        )
        .with(
            "exact_i_estimator",
            Values::Str(
                reports
                    .iter()
                    .map(|r| r.exact_estimator.clone().unwrap_or_else(|| "—".into()))
                    .collect(),
            ),
        )
        .with(
            "sandwich_lower_k64",
            Values::F64(reports.iter().map(|r| r.lower).collect()),
        )
        .with(
            "sandwich_upper_k64",
            Values::F64(reports.iter().map(|r| r.upper).collect()),
        )
        .with(
            "ln_group_order",
            Values::F64(reports.iter().map(|r| r.ln_g).collect()),
        )
        .with(
            "elbo_g_per_point",
            Values::F64(reports.iter().map(elbo_g).collect()),
        )
        .with(
            "elbo_g_uses",
            Values::Str(
                reports
                    .iter()
                    .map(|r| {
                        if r.exact.is_some() {
                            "exact I"
                        } else {
                            "sandwich lower bound"
                        }
                        .to_string()
                    })
                    .collect(),
            ),
        )
        .with(
            "mean_train_sym_term",
            Values::OptF64(reports.iter().map(|r| r.mean_mi).collect()),
        )
        .with(
            "saturated_fraction",
            Values::OptF64(reports.iter().map(|r| r.saturated).collect()),
        )
        .with(
            "sym_grad_over_elbo_grad",
            Values::OptF64(reports.iter().map(|r| r.grad_ratio).collect()),
        )
        .with(
            "train_wall_s",
            Values::F64(reports.iter().map(|r| r.train_wall).collect()),
        )
}

/// The summary: per width, ρ0 and objective, our numbers with their spread.
fn summary(o: &ReproduceOptions, plan: &Plan, jobs: &[Job], reports: &[ObjRun]) -> Result<String> {
    let (widths, n_seeds, epochs, limit, pred_s, mi_s) = (
        &plan.widths,
        plan.n_seeds,
        plan.epochs,
        plan.limit,
        plan.pred_s,
        plan.mi_s,
    );
    let used = MnistUsed::of(&o.mnist_dir, limit, &o.limits)?;
    let mut md = format!(
        "{used}. {n_seeds} seed(s), {epochs} epoch(s){}, batch 100, lr 1e-3, prior N(0, 1), μ0 ~ N(0, 0.1²), ρ0 = −3 (σ0 ≈ 0.05, the usual) or 1 (σ0 ≈ 1.31, overlapping units); {pred_s}-sample predictive; I exact by the permanent (width 10) or the pruned permanent (width 30) over {mi_s} draws where the pruned blocks allow, and the sandwich interval (K = 64, same draws count) on every final posterior; L^G = L + I (with the sandwich lower bound where exact I is not computable, marked ≥).\n\n| width | ρ0 | objective | accuracy % (mean ± sd) | ELBO / N | L^G / N | exact I | sandwich interval on I | ln\\|G\\| | mean symmetry term in training | saturated steps | ‖∇ sym‖/‖∇L‖ | ECE ({} bins) | Brier |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        limit.map_or(String::new(), |l| format!(" on the first {l} images")),
        crate::elbo::ECE_BINS
    );
    for &w in widths {
        for rho in INITS {
            for obj in Plan::objectives(w) {
                let idx: Vec<usize> = (0..jobs.len())
                    .filter(|&i| jobs[i].0 == w && jobs[i].1 == rho && jobs[i].2 == obj)
                    .collect();
                let sel: Vec<&ObjRun> = idx.iter().map(|&i| &reports[i]).collect();
                let avg = |f: &dyn Fn(usize) -> f64| {
                    mean_sd(&idx.iter().map(|&i| f(i)).collect::<Vec<_>>())
                };
                // The interval as quoted: each run's bounds cut to [0, ln|G|] (raw in the
                // table's columns).
                let cut = |v: f64, i: usize| cut_to_group(v, reports[i].ln_g);
                let (lo_m, up_m) = (
                    avg(&|i| cut(reports[i].lower, i)).0,
                    avg(&|i| cut(reports[i].upper, i)).0,
                );
                let (lg_m, lg_sd) = avg(&|i| elbo_g(&reports[i]));
                let stat = |f: &dyn Fn(&ObjRun) -> Option<f64>, digits: usize| {
                    let v: Vec<f64> = sel.iter().filter_map(|r| f(r)).collect();
                    if v.is_empty() {
                        "—".to_string()
                    } else {
                        let (m, sd) = mean_sd(&v);
                        format!("{m:.digits$} ± {sd:.digits$}")
                    }
                };
                let sci = |f: &dyn Fn(&ObjRun) -> Option<f64>| {
                    let v: Vec<f64> = sel.iter().filter_map(|r| f(r)).collect();
                    if v.is_empty() {
                        "—".to_string()
                    } else {
                        format!("{:.3e}", v.iter().sum::<f64>() / v.len() as f64)
                    }
                };
                md.push_str(&format!(
                "| {w} | {rho} | {obj} | {} | {} | {lg_m:.5} ± {lg_sd:.5}{} | {} | [{lo_m:.3}, {up_m:.3}] | {:.3} | {} | {} | {} | {} | {} |\n",
                stat(&|r| r.accuracy.map(|a| 100.0 * a), 3),
                stat(&|r| Some(r.elbo), 5),
                if sel.iter().all(|r| r.exact.is_some()) {
                    ""
                } else {
                    " (≥, sandwich)"
                },
                stat(&|r| r.exact, 4),
                sel[0].ln_g,
                sci(&|r| r.mean_mi),
                sci(&|r| r.saturated),
                sci(&|r| r.grad_ratio),
                stat(&|r| r.ece, 4),
                stat(&|r| r.brier, 4),
            ));
            }
        }
    }
    Ok(md)
}
