//! The tractable BNN in the paper's regime (issue 18 item 1). The paper's Tables 2–3 do
//! not state the noise precision τ, the prior, how the objective and the reported values
//! are normalised, or whether the data are noisy. Its test MSE (0.09 to 0.18 at every α)
//! is above the targets' own variance at α = 0.1 (0.083 for y = α|x|, x ~ U(−10, 10)),
//! which points to noisy targets. This study sweeps all four at α = 0.1 and scores each
//! setting by its distance to the paper's magnitudes. It then reruns `tractable-bnn`'s four α at the closest setting and
//! answers the paper's questions there: do MFVI's means sit between the two modes, does
//! SGM with K = 2 fit a mode, is L^G higher for SGM, is I below ln 2?

use crate::error::Result;
use crate::execute::Schedule;
use crate::study::experiment::{
    Experiment, Figure, PlotSpec, ReproduceOptions, Reproduction, SeriesStyle, Study, mean_sd,
    mean_se_by,
};
use crate::study::experiments::tractable_bnn::{
    BATCH, N_POINTS, Run, Setting, ground_truth_table, train_run,
};
use crate::study::table::{Table, Values};

/// The paper's α = 0.1 row (Tables 2–3): (test MSE, L/N, L^G/N) for MFVI and SGM K = 2.
const PAPER_MFVI: (f64, f64, f64) = (0.12, -0.025, -0.013);
const PAPER_SGM: (f64, f64, f64) = (0.09, -0.029, -0.007);

/// How far a run's means sit from the nearer of the two modes `(α, −α)`, `(−α, α)`,
/// relative to the modes' norm: 0 on a mode, 1 at the origin (half way between them).
fn mode_distance(mu: &[f64], alpha: f64) -> f64 {
    let d = |m: [f64; 2]| ((mu[0] - m[0]).powi(2) + (mu[1] - m[1]).powi(2)).sqrt();
    d([alpha, -alpha]).min(d([-alpha, alpha])) / (2.0f64.sqrt() * alpha)
}

/// The distance of a setting's two cells (MFVI, SGM) to the paper's α = 0.1 row: the mean,
/// over the methods and the three quantities, of |ln(MSE/MSE_paper)| and of
/// |x − x_paper| / |x_paper| for L/N and L^G/N.
fn score(mfvi: (f64, f64, f64), sgm: (f64, f64, f64)) -> f64 {
    let one = |ours: (f64, f64, f64), paper: (f64, f64, f64)| {
        (ours.0 / paper.0).ln().abs()
            + (ours.1 - paper.1).abs() / paper.1.abs()
            + (ours.2 - paper.2).abs() / paper.2.abs()
    };
    (one(mfvi, PAPER_MFVI) + one(sgm, PAPER_SGM)) / 6.0
}

/// Minibatch size over data-set size of the tractable BNN (M = 10, N = 100).
const BATCH_FRACTION: f64 = BATCH as f64 / N_POINTS as f64;

/// A run's (L/N, L^G/N) as the setting's normalisation reports them: per point, the ELBO
/// and the symmetrized ELBO per data point; per batch, a minibatch's objective per data
/// point, `((M/N)·L + Î)/N`.
fn reported(st: &Setting, r: &Run) -> (f64, f64) {
    if st.per_batch {
        let l = BATCH_FRACTION * r.l;
        (l, l + r.mi_exact / N_POINTS as f64)
    } else {
        (r.l, r.lg_exact)
    }
}

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TractableSweep;

impl Study for TractableSweep {
    /// `sweep_mse_elbo_<normalisation>`: per normalisation of the reported ELBO (two
    /// figures: the two do not share an axis), each swept setting's test MSE against its
    /// reported L/N at α = 0.1, the mean over seeds, coloured by prior scale and shaped
    /// by method, beside the paper's two points; `rerun_means_alpha_0.1`: the means of
    /// every rerun's q at α = 0.1 beside the posterior's two modes.
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>> {
        let sweep = crate::study::table::find(tables, "sweep")?;
        let (noise, tau, prior) = (
            sweep.reals("noise_std")?,
            sweep.reals("tau")?,
            sweep.reals("prior_scale")?,
        );
        let (norm, method) = (sweep.texts("normalisation")?, sweep.texts("method")?);
        let (mse, elbo) = (
            sweep.reals("test_mse")?,
            sweep.reals("reported_elbo_per_point")?,
        );
        let mut norms = norm.clone();
        norms.sort();
        norms.dedup();
        let mut priors = prior.clone();
        priors.sort_by(f64::total_cmp);
        priors.dedup();
        let mut figures = Vec::new();
        for nm in &norms {
            let mut plot = PlotSpec::new(
                &format!("sweep_mse_elbo_{}", nm.replace(' ', "_")),
                &format!(
                    "Sweep at α = 0.1, ELBO normalised {nm}: one point per setting (mean over seeds)"
                ),
                "test MSE",
                "L / N as reported",
            );
            plot.log_x = true;
            let mut closest = (f64::INFINITY, String::new());
            for (c, &p) in priors.iter().enumerate() {
                for (shape, m) in ["MFVI", "SGM K=2"].into_iter().enumerate() {
                    let rows: Vec<usize> = (0..norm.len())
                        .filter(|&i| norm[i] == *nm && prior[i] == p && method[i] == m)
                        .collect();
                    // One point per (noise, τ): the mean over its seeds.
                    let labels: Vec<String> = rows
                        .iter()
                        .map(|&i| format!("target noise {}, τ = {}", noise[i], tau[i]))
                        .collect();
                    let x: Vec<f64> = rows.iter().map(|_| 0.0).collect();
                    let mses = mean_se_by(
                        &labels,
                        &x,
                        &rows.iter().map(|&i| mse[i]).collect::<Vec<_>>(),
                    );
                    let elbos = mean_se_by(
                        &labels,
                        &x,
                        &rows.iter().map(|&i| elbo[i]).collect::<Vec<_>>(),
                    );
                    let points: Vec<(f64, f64)> = mses
                        .iter()
                        .zip(&elbos)
                        .filter_map(|(a, b)| Some((a.1.first()?.1, b.1.first()?.1)))
                        .collect();
                    let paper = if shape == 0 { PAPER_MFVI } else { PAPER_SGM };
                    for ((setting, _, _), &(x, y)) in mses.iter().zip(&points) {
                        let d = (x / paper.0).ln().abs() + ((y - paper.1) / paper.1).abs();
                        if d < closest.0 {
                            closest = (d, format!("{m} at prior scale {p}, {setting}"));
                        }
                    }
                    let style = SeriesStyle::own(c).points().shaped(2 * shape);
                    plot = plot.series(&format!("{m}, prior scale {p}"), points, None, style);
                }
            }
            plot = plot
                .series(
                    "the paper's MFVI",
                    vec![(PAPER_MFVI.0, PAPER_MFVI.1)],
                    None,
                    SeriesStyle::reference(6).points(),
                )
                .series(
                    "the paper's SGM K=2",
                    vec![(PAPER_SGM.0, PAPER_SGM.1)],
                    None,
                    SeriesStyle::reference(7).points(),
                );
            figures.push(Figure {
                plot,
                caption: format!(
                    "With the ELBO normalised {nm}, the swept settings spread over the plane; the one nearest the paper's (MSE, L/N) is {}.",
                    closest.1
                ),
            });
        }
        let rerun = crate::study::table::find(tables, "rerun")?;
        let (alpha, r_method) = (rerun.reals("alpha")?, rerun.texts("method")?);
        let (m1, m2, dist) = (
            rerun.reals("mu_w1")?,
            rerun.reals("mu_w2")?,
            rerun.reals("mode_distance")?,
        );
        let a0 = 0.1;
        let mut plot = PlotSpec::new(
            "rerun_means_alpha_0.1",
            "The rerun at the closest setting: each run's means at α = 0.1",
            "w1",
            "w2",
        );
        let mut distances = Vec::new();
        for (c, m) in ["MFVI", "SGM K=2"].into_iter().enumerate() {
            let rows: Vec<usize> = (0..alpha.len())
                .filter(|&i| alpha[i] == a0 && r_method[i] == m)
                .collect();
            distances.push(mean_sd(&rows.iter().map(|&i| dist[i]).collect::<Vec<_>>()).0);
            plot = plot.series(
                &format!("{m} means"),
                rows.iter().map(|&i| (m1[i], m2[i])).collect(),
                None,
                SeriesStyle::own(c).points(),
            );
        }
        plot = plot.series(
            "the posterior's modes (α, −α), (−α, α)",
            vec![(a0, -a0), (-a0, a0)],
            None,
            SeriesStyle::reference(5).points(),
        );
        figures.push(Figure {
            plot,
            caption: format!(
                "MFVI's means sit at a mean distance of {} from the nearer mode and SGM's at {} (0: on a mode, 1: half way between them).",
                crate::study::format::number(distances[0], 2),
                crate::study::format::number(distances[1], 2)
            ),
        });
        Ok(figures)
    }

    fn experiment(&self) -> Experiment {
        Experiment::TractableSweep
    }

    fn needs_mnist(&self) -> bool {
        false
    }

    /// Runs the sweep and the rerun.
    ///
    /// # Errors
    ///
    /// Training divergence, named.
    fn run(&self, o: &ReproduceOptions) -> Result<Reproduction> {
        let plan = Plan::of(o);
        let (jobs, runs) = sweep(o, &plan)?;
        let (mut md, chosen) = sweep_summary(&plan, &jobs, &runs);
        let (rjobs, rruns) = rerun(o, &plan, &chosen)?;
        md.push_str(&rerun_summary(&plan, &chosen, &rjobs, &rruns));
        Ok(Reproduction {
            experiment: Experiment::TractableSweep,
            tables: vec![
                sweep_table(&jobs, &runs),
                rerun_table(&chosen, &rjobs, &rruns),
            ],
            summary: md,
            samples: None,
            wall_s: 0.0,
        })
    }
}

fn method(sgm: bool) -> &'static str {
    if sgm { "SGM K=2" } else { "MFVI" }
}

/// The α of the sweep.
const ALPHA: f64 = 0.1;

/// A run of the sweep: (setting, seed, SGM?).
type Job = (Setting, u64, bool);

/// A run of the rerun at the chosen setting: (α, seed, SGM?).
type RerunJob = (f64, u64, bool);

/// What the sweep and the rerun cover (fewer of each with `quick`).
struct Plan {
    settings: Vec<Setting>,
    n_seeds: u64,
    pred_s: usize,
    mi_s: usize,
    alphas: Vec<f64>,
    rerun_seeds: u64,
}

impl Plan {
    fn of(o: &ReproduceOptions) -> Self {
        let (precisions, scales, noises, n_seeds) = if o.quick {
            (vec![1.0, 10.0], vec![1.0], vec![0.0, 0.3], 2u64)
        } else {
            (
                vec![1.0, 4.0, 10.0, 100.0],
                vec![0.1, 1.0, 10.0],
                vec![0.0, 0.3],
                5,
            )
        };
        let (pred_s, mi_s) = if o.quick { (200, 200) } else { (1000, 1000) };
        let mut settings = Vec::new();
        for &noise_std in &noises {
            for &precision in &precisions {
                for &prior_scale in &scales {
                    for per_batch in [false, true] {
                        settings.push(Setting {
                            precision,
                            prior_scale,
                            per_batch,
                            noise_std,
                        });
                    }
                }
            }
        }
        Plan {
            settings,
            n_seeds,
            pred_s,
            mi_s,
            alphas: if o.quick {
                vec![0.1]
            } else {
                vec![0.05, 0.1, 0.15, 0.2]
            },
            rerun_seeds: if o.quick { 2 } else { 10 },
        }
    }
}

/// The journal key of one training run.
fn key(st: &Setting, a: f64, seed: u64, sgm: bool) -> String {
    format!(
        "tractable-sweep/{}/{}/{}/{}/{a}/{seed}/{sgm}",
        st.noise_std, st.precision, st.prior_scale, st.per_batch
    )
}

/// The sweep: every setting, seed and method at α = [`ALPHA`].
fn sweep(o: &ReproduceOptions, plan: &Plan) -> Result<(Vec<Job>, Vec<Run>)> {
    let n_seeds = plan.n_seeds;
    let jobs: Vec<Job> = plan
        .settings
        .iter()
        .flat_map(|&st| (0..n_seeds).flat_map(move |s| [(st, s, false), (st, s, true)]))
        .collect();
    let runs = o.executor().map(
        &jobs,
        Schedule::InOrder,
        |_, (st, seed, sgm)| key(st, ALPHA, *seed, *sgm),
        |_, (st, seed, sgm)| train_run(st, o, ALPHA, *seed, *sgm, plan.pred_s, plan.mi_s),
    )?;
    Ok((jobs, runs))
}

/// The sweep's table: one row per run.
fn sweep_table(jobs: &[Job], runs: &[Run]) -> Table {
    let alpha = ALPHA;
    Table::new("sweep")
        .with(
            "noise_std",
            Values::F64(jobs.iter().map(|j| j.0.noise_std).collect()),
        )
        .with(
            "tau",
            Values::F64(jobs.iter().map(|j| j.0.precision).collect()),
        )
        .with(
            "prior_scale",
            Values::F64(jobs.iter().map(|j| j.0.prior_scale).collect()),
        )
        .with(
            "normalisation",
            Values::Str(
                jobs.iter()
                    .map(|j| j.0.normalisation().to_string())
                    .collect(),
            ),
        )
        .with("seed", Values::U64(jobs.iter().map(|j| j.1).collect()))
        .with(
            "method",
            Values::Str(jobs.iter().map(|j| method(j.2).to_string()).collect()),
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
            "elbo_sym_exact_per_point",
            Values::F64(runs.iter().map(|r| r.lg_exact).collect()),
        )
        .with(
            "reported_elbo_per_point",
            Values::F64(
                jobs.iter()
                    .zip(runs)
                    .map(|(j, r)| reported(&j.0, r).0)
                    .collect(),
            ),
        )
        .with(
            "reported_elbo_sym_per_point",
            Values::F64(
                jobs.iter()
                    .zip(runs)
                    .map(|(j, r)| reported(&j.0, r).1)
                    .collect(),
            ),
        )
        .with(
            "mi_exact_nats",
            Values::F64(runs.iter().map(|r| r.mi_exact).collect()),
        )
        .with(
            "mode_distance",
            Values::F64(runs.iter().map(|r| mode_distance(&r.mu, alpha)).collect()),
        )
}

/// The sweep's summary (per setting and method, with its score against the paper's row)
/// and the closest setting.
fn sweep_summary(plan: &Plan, jobs: &[Job], runs: &[Run]) -> (String, Setting) {
    let (alpha, n_seeds, settings) = (ALPHA, plan.n_seeds, &plan.settings);
    // Per setting and method: mean test MSE, L/N, L^G/N, I, mode distance.
    let cell = |st: &Setting, sgm: bool| -> [f64; 5] {
        let sel: Vec<&Run> = jobs
            .iter()
            .zip(runs)
            .filter(|(j, _)| j.0 == *st && j.2 == sgm)
            .map(|(_, r)| r)
            .collect();
        let m = |f: &dyn Fn(&Run) -> f64| mean_sd(&sel.iter().map(|r| f(r)).collect::<Vec<_>>()).0;
        [
            m(&|r| r.mse),
            m(&|r| reported(st, r).0),
            m(&|r| reported(st, r).1),
            m(&|r| r.mi_exact),
            m(&|r| mode_distance(&r.mu, alpha)),
        ]
    };
    let mut md = format!(
        "α = {alpha}, {n_seeds} seeds per cell, otherwise as `tractable-bnn` (N = 100 train and 100 test, batch 10, lr 5e-3, 10 epochs). Noise: the standard deviation of Gaussian noise on the targets (train and test). *Per point*: the objective L + Î and the reported L/N, L^G/N = (L + I)/N (with the Gaussian's normalising constant). *Per batch*: a minibatch's objective not rescaled to the data set, (M/N)·L + Î (Î weighted N/M = 10 in training), and the values reported the same way, ((M/N)·L + I)/N. Mode distance: of the posterior means from the nearer mode, 0 on a mode and 1 half way between the modes. Score: the mean relative distance to the paper's α = 0.1 row (MFVI: MSE 0.12, L/N −0.025, L^G/N −0.013; SGM: 0.09, −0.029, −0.007; |ln| of the MSE ratio).\n\n| noise | τ | prior s | normalisation | MFVI MSE | MFVI L/N | MFVI L^G/N | MFVI I | MFVI mode dist. | SGM MSE | SGM L/N | SGM L^G/N | SGM I | SGM mode dist. | score |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    );
    let mut best: Option<(f64, Setting)> = None;
    for st in settings {
        let (a, b) = (cell(st, false), cell(st, true));
        let sc = score((a[0], a[1], a[2]), (b[0], b[1], b[2]));
        if best.is_none_or(|(s, _)| sc < s) {
            best = Some((sc, *st));
        }
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.3} | {:.4} | {:.4} | {:.3} | {:.2} | {:.3} | {:.4} | {:.4} | {:.3} | {:.2} | {sc:.2} |\n",
            st.noise_std,
            st.precision,
            st.prior_scale,
            st.normalisation(),
            a[0], a[1], a[2], a[3], a[4], b[0], b[1], b[2], b[3], b[4],
        ));
    }
    let (best_score, chosen) = best.expect("at least one setting");
    md.push_str(&format!(
        "\n**Closest setting**: target noise {}, τ = {}, prior N(0, {}²), {} (score {best_score:.2}).\n\n",
        chosen.noise_std,
        chosen.precision,
        chosen.prior_scale,
        chosen.normalisation()
    ));
    (md, chosen)
}

/// The rerun of `tractable-bnn` at the chosen setting.
fn rerun(o: &ReproduceOptions, plan: &Plan, chosen: &Setting) -> Result<(Vec<RerunJob>, Vec<Run>)> {
    let rerun_seeds = plan.rerun_seeds;
    let rjobs: Vec<RerunJob> = plan
        .alphas
        .iter()
        .flat_map(|&a| (0..rerun_seeds).flat_map(move |s| [(a, s, false), (a, s, true)]))
        .collect();
    let rruns = o.executor().map(
        &rjobs,
        Schedule::InOrder,
        |_, &(a, seed, sgm)| format!("{}/rerun", key(chosen, a, seed, sgm)),
        |_, &(a, seed, sgm)| train_run(chosen, o, a, seed, sgm, plan.pred_s, plan.mi_s),
    )?;
    Ok((rjobs, rruns))
}

/// The rerun's table: one row per run.
fn rerun_table(chosen: &Setting, rjobs: &[RerunJob], rruns: &[Run]) -> Table {
    Table::new("rerun")
        .with("alpha", Values::F64(rjobs.iter().map(|j| j.0).collect()))
        .with("seed", Values::U64(rjobs.iter().map(|j| j.1).collect()))
        .with(
            "method",
            Values::Str(rjobs.iter().map(|j| method(j.2).to_string()).collect()),
        )
        .with(
            "test_mse",
            Values::F64(rruns.iter().map(|r| r.mse).collect()),
        )
        .with(
            "elbo_per_point",
            Values::F64(rruns.iter().map(|r| r.l).collect()),
        )
        .with(
            "reported_elbo_sym_per_point",
            Values::F64(rruns.iter().map(|r| reported(chosen, r).1).collect()),
        )
        .with(
            "elbo_sym_exact_per_point",
            Values::F64(rruns.iter().map(|r| r.lg_exact).collect()),
        )
        .with(
            "mi_exact_nats",
            Values::F64(rruns.iter().map(|r| r.mi_exact).collect()),
        )
        .with(
            "ln_evidence_per_point",
            Values::F64(
                rruns
                    .iter()
                    .map(|r| r.truth.ln_evidence / N_POINTS as f64)
                    .collect(),
            ),
        )
        .with(
            "kl_q_posterior_nats",
            Values::F64(rruns.iter().map(|r| r.truth.kl()).collect()),
        )
        .with(
            "kl_qg_posterior_nats",
            Values::F64(rruns.iter().map(|r| r.truth.kl_g()).collect()),
        )
        .with(
            "mu_w1",
            Values::F64(rruns.iter().map(|r| r.mu[0]).collect()),
        )
        .with(
            "mu_w2",
            Values::F64(rruns.iter().map(|r| r.mu[1]).collect()),
        )
        .with(
            "sigma_w1",
            Values::F64(rruns.iter().map(|r| r.sigma[0]).collect()),
        )
        .with(
            "sigma_w2",
            Values::F64(rruns.iter().map(|r| r.sigma[1]).collect()),
        )
        .with(
            "mode_distance",
            Values::F64(
                rjobs
                    .iter()
                    .zip(rruns)
                    .map(|(j, r)| mode_distance(&r.mu, j.0))
                    .collect(),
            ),
        )
}

/// The rerun's summary: per α and method, and the shape of the comparison.
fn rerun_summary(plan: &Plan, chosen: &Setting, rjobs: &[RerunJob], rruns: &[Run]) -> String {
    let (alphas, rerun_seeds) = (&plan.alphas, plan.rerun_seeds);
    let mut md = String::new();
    md.push_str(&format!(
        "### Rerun at the closest setting ({rerun_seeds} seeds)\n\n| α | method | test MSE | L/N (reported) | L^G/N exact (reported) | I exact (nats) | mode distance |\n| --- | --- | --- | --- | --- | --- | --- |\n"
    ));
    let ln2 = 2f64.ln();
    let (mut between, mut fits, mut lg_higher, mut below_ln2) = (true, true, true, true);
    for &a in alphas {
        let mut lg = [0.0; 2];
        for sgm in [false, true] {
            let sel: Vec<(&Run, f64)> = rjobs
                .iter()
                .zip(rruns)
                .filter(|(j, _)| j.0 == a && j.2 == sgm)
                .map(|(j, r)| (r, mode_distance(&r.mu, j.0)))
                .collect();
            let col =
                |f: &dyn Fn(&(&Run, f64)) -> f64| mean_sd(&sel.iter().map(f).collect::<Vec<_>>());
            let (mse, l, lge, mi, md_) = (
                col(&|r| r.0.mse),
                col(&|r| reported(chosen, r.0).0),
                col(&|r| reported(chosen, r.0).1),
                col(&|r| r.0.mi_exact),
                col(&|r| r.1),
            );
            lg[usize::from(sgm)] = lge.0;
            if sgm {
                fits &= md_.0 < 0.25;
            } else {
                between &= md_.0 > 0.5;
            }
            below_ln2 &= mi.0 < ln2 - 0.01;
            md.push_str(&format!(
                "| {a} | {} | {:.3} ± {:.3} | {:.4} ± {:.4} | {:.4} ± {:.4} | {:.4} ± {:.4} | {:.2} ± {:.2} |\n",
                method(sgm),
                mse.0, mse.1, l.0, l.1, lge.0, lge.1, mi.0, mi.1, md_.0, md_.1
            ));
        }
        lg_higher &= lg[1] >= lg[0];
    }
    // Paired by seed: does SGM end nearer a mode than MFVI from the same seed, and with
    // a higher exact L^G?
    md.push_str("\nPaired by seed (SGM K=2 against MFVI from the same seed and data):\n\n| α | seeds where SGM is nearer a mode | mode distance, MFVI − SGM | seeds where SGM's L^G is higher | L^G/N (reported), SGM − MFVI |\n| --- | --- | --- | --- | --- |\n");
    for &a in alphas {
        let of = |sgm: bool| -> Vec<(u64, &Run)> {
            rjobs
                .iter()
                .zip(rruns)
                .filter(|(j, _)| j.0 == a && j.2 == sgm)
                .map(|(j, r)| (j.1, r))
                .collect()
        };
        let (mf, sg) = (of(false), of(true));
        let pairs: Vec<(&Run, &Run)> = mf
            .iter()
            .filter_map(|(s, m)| sg.iter().find(|(t, _)| t == s).map(|(_, y)| (*m, *y)))
            .collect();
        let dist: Vec<f64> = pairs
            .iter()
            .map(|(m, y)| mode_distance(&m.mu, a) - mode_distance(&y.mu, a))
            .collect();
        let gain: Vec<f64> = pairs
            .iter()
            .map(|(m, y)| reported(chosen, y).1 - reported(chosen, m).1)
            .collect();
        let ((dm, ds), (gm, gs)) = (mean_sd(&dist), mean_sd(&gain));
        md.push_str(&format!(
            "| {a} | {} of {} | {dm:+.3} ± {ds:.3} | {} of {} | {gm:+.5} ± {gs:.5} |\n",
            dist.iter().filter(|d| **d > 0.0).count(),
            pairs.len(),
            gain.iter().filter(|g| **g > 0.0).count(),
            pairs.len()
        ));
    }
    md.push_str(&ground_truth_table(alphas, rjobs, rruns));
    let yes = |b: bool| if b { "yes" } else { "no" };
    md.push_str(&format!(
        "\nAt every α: MFVI's means between the modes (mean mode distance > 0.5): **{}**; SGM K=2 on a mode (< 0.25): **{}**; SGM's exact L^G/N ≥ MFVI's: **{}**; I < ln 2 for both methods: **{}**.\n",
        yes(between),
        yes(fits),
        yes(lg_higher),
        yes(below_ln2)
    ));
    md
}
