//! `symmetry-replication` (issue 31): the one positive finding of `symmetry-regime` —
//! symmetrizing raised L^G/N in the band prior N(0, 0.1²), ρ0 = −1, width 30 — tested on
//! fresh seeds as `plans/symmetry-replication.md` fixed before any run: seeds 100–119,
//! MFVI and the symmetrized objective paired by seed, per seed
//! `Δ = L^G/N(symmetrized) − L^G/N(MFVI)`, a one-sided paired t-test of mean Δ > 0 at
//! α = 0.05 / 2 for each of the two primary cells (N = 10,000 and 60,000), and, outside
//! that family, the decomposition of Δ into ΔL/N and ΔI/N, accuracy and NLL, and the
//! controls at N = 10,000: 60 epochs, and learning rates 3e-4 and 3e-3.

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::Result;
use crate::execute::Schedule;
use crate::rng::child_seed;
use crate::study::experiment::{
    Experiment, Figure, MnistUsed, PlotSpec, ReproduceOptions, Reproduction, SeriesStyle, Study,
    mean_sd,
};
use crate::study::experiments::symmetry_regime::{
    Cell, OOD_NOISE_SD, Ood, RegimeRun, train_and_measure,
};
use crate::study::format::number;
use crate::study::table::{Table, Values};

/// The significance level of each primary hypothesis: 0.05 over the two (Bonferroni).
const ALPHA: f64 = 0.05 / 2.0;

/// One setting of the replication: a cell and its training, and whether it is one of the
/// primary hypotheses.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Setting {
    name: &'static str,
    primary: bool,
    n: usize,
    width: usize,
    epochs: usize,
    lr: f64,
}

/// The design: the settings, the seeds and the draws.
struct Design {
    settings: Vec<Setting>,
    seeds: Vec<u64>,
    prior: f64,
    rho: f64,
    pred_s: usize,
    mi_s: usize,
}

impl Design {
    /// The plan's: H1 (N = 10,000) and H2 (N = 60,000) at width 30, 30 epochs, lr 1e-3;
    /// the controls at N = 10,000 (60 epochs; lr 3e-4 and 3e-3); seeds 100–119.
    fn full() -> Self {
        let at = |name, primary, n, epochs, lr| Setting {
            name,
            primary,
            n,
            width: 30,
            epochs,
            lr,
        };
        Design {
            settings: vec![
                at("H1: N = 10,000", true, 10_000, 30, 1e-3),
                at("H2: N = 60,000", true, 60_000, 30, 1e-3),
                at("control: 60 epochs", false, 10_000, 60, 1e-3),
                at("control: lr 3e-4", false, 10_000, 30, 3e-4),
                at("control: lr 3e-3", false, 10_000, 30, 3e-3),
            ],
            seeds: (100..120).collect(),
            prior: 0.1,
            rho: -1.0,
            pred_s: 100,
            mi_s: 100,
        }
    }

    /// The tests' small version: the same settings' kinds on 500 images at width 5 (exact
    /// I) from ρ0 = 1, one or two epochs, three seeds.
    fn quick() -> Self {
        let at = |name, primary, epochs, lr| Setting {
            name,
            primary,
            n: 500,
            width: 5,
            epochs,
            lr,
        };
        Design {
            settings: vec![
                at("H1: N = 500", true, 1, 1e-3),
                at("control: 2 epochs", false, 2, 1e-3),
                at("control: lr 3e-3", false, 1, 3e-3),
            ],
            seeds: vec![100, 101, 102],
            prior: 0.1,
            // Overlapping units from the start, so that the two objectives differ even
            // after one epoch.
            rho: 1.0,
            pred_s: 50,
            mi_s: 20,
        }
    }
}

/// One training run: (setting index, symmetrized, seed).
type Job = (usize, bool, u64);

/// The one-sided paired t-test of mean Δ > 0: (mean, standard error, t, p), p from
/// Student's t with n − 1 degrees of freedom. Pairs that agree exactly (SE 0) give t of
/// the mean's sign and p = 0 for a positive mean, else 1: no evidence of a gain.
fn paired_test(deltas: &[f64]) -> (f64, f64, f64, f64) {
    let n = deltas.len();
    let (m, sd) = mean_sd(deltas);
    let se = sd / (n as f64).sqrt();
    if se == 0.0 || !se.is_finite() {
        let (t, p) = if m > 0.0 {
            (f64::INFINITY, 0.0)
        } else if m < 0.0 {
            (f64::NEG_INFINITY, 1.0)
        } else {
            (0.0, 1.0)
        };
        return (m, se, t, p);
    }
    let t = m / se;
    let p = StudentsT::new(0.0, 1.0, (n - 1).max(1) as f64).map_or(f64::NAN, |dist| dist.sf(t));
    (m, se, t, p)
}

/// The two-sided 95 % interval of a mean with standard error `se` from `n` pairs.
fn interval_95(m: f64, se: f64, n: usize) -> (f64, f64) {
    let q = StudentsT::new(0.0, 1.0, (n - 1).max(1) as f64).map_or(1.96, |d| d.inverse_cdf(0.975));
    (m - q * se, m + q * se)
}

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SymmetryReplication;

impl Study for SymmetryReplication {
    fn experiment(&self) -> Experiment {
        Experiment::SymmetryReplication
    }

    fn needs_mnist(&self) -> bool {
        true
    }

    /// `gains`: per setting, each seed's Δ L^G/N (symmetrized − MFVI), with the mean and
    /// its standard error.
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>> {
        let t = crate::study::table::find(tables, "tests")?;
        let (setting, mean, se) = (
            t.texts("setting")?,
            t.reals("mean_gain")?,
            t.reals("se_gain")?,
        );
        let runs = crate::study::table::find(tables, "pairs")?;
        let (run_setting, gain) = (runs.texts("setting")?, runs.reals("gain")?);
        let mut plot = PlotSpec::new(
            "gains",
            "Δ L^G/N of symmetrizing, paired by seed",
            "setting",
            "nats per point",
        );
        for (c, name) in setting.iter().enumerate() {
            let mine: Vec<(f64, f64)> = (0..run_setting.len())
                .filter(|&i| run_setting[i] == *name)
                .map(|i| (c as f64 + 1.0, gain[i]))
                .collect();
            plot = plot.series(name, mine, None, SeriesStyle::own(c));
            plot = plot.series(
                &format!("{name}: mean ± SE"),
                vec![(c as f64 + 1.0, mean[c])],
                Some(vec![se[c]]),
                SeriesStyle::reference(c),
            );
        }
        let caption = format!(
            "Settings 1–{} left to right; points are seeds, the marker with bars the mean ± its standard error. The plan (plans/symmetry-replication.md) was committed before these runs.",
            setting.len()
        );
        Ok(vec![Figure { plot, caption }])
    }

    /// Runs the experiment.
    ///
    /// # Errors
    ///
    /// Missing data, training divergence, named.
    fn run(&self, o: &ReproduceOptions) -> Result<Reproduction> {
        let design = if o.quick {
            Design::quick()
        } else {
            Design::full()
        };
        let mut jobs: Vec<Job> = Vec::new();
        for si in 0..design.settings.len() {
            for sym in [false, true] {
                for &s in &design.seeds {
                    jobs.push((si, sym, s));
                }
            }
        }
        let cells: Vec<Cell> = o.executor().map(
            &jobs,
            Schedule::LongestLast,
            |_, &(si, sym, s)| {
                let st = design.settings[si];
                format!(
                    "symmetry-replication/{}/{}/{}/{}/{sym}/{s}",
                    st.n, st.width, st.epochs, st.lr
                )
            },
            |_, &(si, sym, s)| {
                let st = design.settings[si];
                train_and_measure(
                    o,
                    &RegimeRun {
                        n: st.n,
                        width: st.width,
                        prior: design.prior,
                        rho: design.rho,
                        symmetrized: sym,
                        seed: child_seed(o.seed, s),
                        epochs: st.epochs,
                        lr: st.lr,
                        pred_s: design.pred_s,
                        mi_s: design.mi_s,
                        ood: true,
                    },
                )
            },
        )?;
        let runs = runs_table(&design, &jobs, &cells);
        // Pairs: per setting and seed, symmetrized minus MFVI.
        let pair = |si: usize, s: u64| -> (&Cell, &Cell) {
            let find = |sym: bool| {
                let i = jobs
                    .iter()
                    .position(|&j| j == (si, sym, s))
                    .expect("every setting runs both objectives on every seed");
                &cells[i]
            };
            (find(false), find(true))
        };
        let ood = |c: &Cell| {
            c.ood.unwrap_or(Ood {
                rotated: f64::NAN,
                noised: f64::NAN,
            })
        };
        let mut uncertainty = Vec::new();
        let mut pairs: Vec<(String, u64, [f64; 9])> = Vec::new();
        let mut tests = Vec::new();
        let mut md = String::new();
        for (si, st) in design.settings.iter().enumerate() {
            let d: Vec<[f64; 9]> = design
                .seeds
                .iter()
                .map(|&s| {
                    let (m, y) = pair(si, s);
                    [
                        y.elbo_g() - m.elbo_g(),
                        y.elbo - m.elbo,
                        (y.value() - m.value()) / y.n_data,
                        100.0 * (y.accuracy - m.accuracy),
                        y.nll - m.nll,
                        y.ece - m.ece,
                        y.brier - m.brier,
                        ood(y).rotated - ood(m).rotated,
                        ood(y).noised - ood(m).noised,
                    ]
                })
                .collect();
            for (&s, v) in design.seeds.iter().zip(&d) {
                pairs.push((st.name.to_string(), s, *v));
            }
            let col = |k: usize| d.iter().map(|v| v[k]).collect::<Vec<f64>>();
            let (m, se, t, p) = paired_test(&col(0));
            let (lo, hi) = interval_95(m, se, d.len());
            let mean_se = |k: usize| {
                let (mm, sd) = mean_sd(&col(k));
                (mm, sd / (d.len() as f64).sqrt())
            };
            let (dl, di, acc, nll) = (mean_se(1), mean_se(2), mean_se(3), mean_se(4));
            let level = |f: &dyn Fn(&Cell) -> f64, sym: bool| {
                let v: Vec<f64> = design
                    .seeds
                    .iter()
                    .map(|&s| {
                        let (m, y) = pair(si, s);
                        f(if sym { y } else { m })
                    })
                    .collect();
                mean_sd(&v).0
            };
            uncertainty.push((
                st.name,
                [
                    (
                        level(&|c| c.ece, false),
                        level(&|c| c.ece, true),
                        mean_se(5),
                    ),
                    (
                        level(&|c| c.brier, false),
                        level(&|c| c.brier, true),
                        mean_se(6),
                    ),
                    (
                        level(&|c| ood(c).rotated, false),
                        level(&|c| ood(c).rotated, true),
                        mean_se(7),
                    ),
                    (
                        level(&|c| ood(c).noised, false),
                        level(&|c| ood(c).noised, true),
                        mean_se(8),
                    ),
                ],
            ));
            let decision = if !st.primary {
                "control (outside the family)"
            } else if p < ALPHA {
                "confirmed"
            } else {
                "not confirmed"
            };
            tests.push((
                st,
                d.len(),
                m,
                se,
                t,
                p,
                (lo, hi),
                dl,
                di,
                acc,
                nll,
                decision,
            ));
        }
        let used = MnistUsed::of(&o.mnist_dir, None, &o.limits)?;
        md.push_str(&format!(
            "{used}. The plan, committed before any of these runs: `plans/symmetry-replication.md`. 784-d-10 ReLU nets, prior N(0, {}²), ρ0 = {}, batch 100, seeds {}–{} (MFVI and the symmetrized objective paired by seed); I of each posterior as `symmetry-regime` computes it; Δ = L^G/N(symmetrized) − L^G/N(MFVI). Primary hypotheses: one-sided paired t-test of mean Δ > 0 at α = {ALPHA} each (0.05 over the two).\n\n| setting | N | epochs | lr | seeds | mean Δ L^G/N ± SE | t | p (one-sided) | 95 % interval | decision | Δ L/N ± SE | Δ I/N ± SE | share of Δ from L/N | Δ accuracy (points) | Δ NLL |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
            design.prior,
            design.rho,
            design.seeds[0],
            design.seeds[design.seeds.len() - 1],
        ));
        for (st, n, m, se, t, p, (lo, hi), dl, di, acc, nll, decision) in &tests {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {n} | {m:+.3e} ± {se:.1e} | {t:.2} | {} | [{lo:+.2e}, {hi:+.2e}] | **{decision}** | {:+.3e} ± {:.1e} | {:+.3e} ± {:.1e} | {} | {:+.2} ± {:.2} | {:+.4} ± {:.4} |\n",
                st.name,
                st.n,
                st.epochs,
                st.lr,
                number(*p, 3),
                dl.0,
                dl.1,
                di.0,
                di.1,
                if m.abs() > 0.0 {
                    format!("{:.0} %", 100.0 * dl.0 / m)
                } else {
                    "—".into()
                },
                acc.0,
                acc.1,
                nll.0,
                nll.1
            ));
        }
        md.push('\n');
        for (st, _, m, se, _, p, _, _, _, _, _, decision) in tests.iter().filter(|t| t.0.primary) {
            md.push_str(&format!(
                "* **{}: {decision}** (mean Δ L^G/N = {m:+.3e} ± {se:.1e} nats per point, p = {} against α = {ALPHA}).\n",
                st.name,
                number(*p, 3)
            ));
        }
        md.push_str(&format!(
            "\nUncertainty (not in the plan; added after its results, descriptive only): expected calibration error ({} bins) and Brier score of the test predictive, and the AUROC of its entropy between the test images and the same images turned a quarter turn or under pixel noise of sd {OOD_NOISE_SD} (clipped to [0, 1]); MFVI → symmetrized (mean over seeds), and the paired difference ± SE.\n\n| setting | ECE | Δ ECE | Brier | Δ Brier | AUROC rotated | Δ AUROC rotated | AUROC noised | Δ AUROC noised |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
            crate::elbo::ECE_BINS
        ));
        for (name, cols) in &uncertainty {
            md.push_str(&format!("| {name} |"));
            for (mfvi, sym, (d, se)) in cols {
                md.push_str(&format!(" {mfvi:.4} → {sym:.4} | {d:+.2e} ± {se:.1e} |"));
            }
            md.push('\n');
        }
        let tests_table = Table::new("tests")
            .with(
                "setting",
                Values::Str(tests.iter().map(|t| t.0.name.to_string()).collect()),
            )
            .with(
                "primary",
                Values::Bool(tests.iter().map(|t| t.0.primary).collect()),
            )
            .with(
                "n_train",
                Values::U64(tests.iter().map(|t| t.0.n as u64).collect()),
            )
            .with(
                "epochs",
                Values::U64(tests.iter().map(|t| t.0.epochs as u64).collect()),
            )
            .with("lr", Values::F64(tests.iter().map(|t| t.0.lr).collect()))
            .with(
                "seeds",
                Values::U64(tests.iter().map(|t| t.1 as u64).collect()),
            )
            .with(
                "mean_gain",
                Values::F64(tests.iter().map(|t| t.2).collect()),
            )
            .with("se_gain", Values::F64(tests.iter().map(|t| t.3).collect()))
            .with("t", Values::F64(tests.iter().map(|t| t.4).collect()))
            .with(
                "p_one_sided",
                Values::F64(tests.iter().map(|t| t.5).collect()),
            )
            .with(
                "ci95_lower",
                Values::F64(tests.iter().map(|t| t.6.0).collect()),
            )
            .with(
                "ci95_upper",
                Values::F64(tests.iter().map(|t| t.6.1).collect()),
            )
            .with(
                "decision",
                Values::Str(tests.iter().map(|t| t.11.to_string()).collect()),
            )
            .with(
                "mean_gain_l",
                Values::F64(tests.iter().map(|t| t.7.0).collect()),
            )
            .with(
                "se_gain_l",
                Values::F64(tests.iter().map(|t| t.7.1).collect()),
            )
            .with(
                "mean_gain_i",
                Values::F64(tests.iter().map(|t| t.8.0).collect()),
            )
            .with(
                "se_gain_i",
                Values::F64(tests.iter().map(|t| t.8.1).collect()),
            )
            .with(
                "mean_gain_accuracy",
                Values::F64(tests.iter().map(|t| t.9.0).collect()),
            )
            .with(
                "mean_gain_nll",
                Values::F64(tests.iter().map(|t| t.10.0).collect()),
            );
        let pairs_table = Table::new("pairs")
            .with(
                "setting",
                Values::Str(pairs.iter().map(|p| p.0.clone()).collect()),
            )
            .with("seed", Values::U64(pairs.iter().map(|p| p.1).collect()))
            .with("gain", Values::F64(pairs.iter().map(|p| p.2[0]).collect()))
            .with(
                "gain_l",
                Values::F64(pairs.iter().map(|p| p.2[1]).collect()),
            )
            .with(
                "gain_i",
                Values::F64(pairs.iter().map(|p| p.2[2]).collect()),
            )
            .with(
                "gain_accuracy",
                Values::F64(pairs.iter().map(|p| p.2[3]).collect()),
            )
            .with(
                "gain_nll",
                Values::F64(pairs.iter().map(|p| p.2[4]).collect()),
            )
            .with(
                "gain_ece",
                Values::F64(pairs.iter().map(|p| p.2[5]).collect()),
            )
            .with(
                "gain_brier",
                Values::F64(pairs.iter().map(|p| p.2[6]).collect()),
            )
            .with(
                "gain_auroc_rotated",
                Values::F64(pairs.iter().map(|p| p.2[7]).collect()),
            )
            .with(
                "gain_auroc_noised",
                Values::F64(pairs.iter().map(|p| p.2[8]).collect()),
            );
        Ok(Reproduction {
            experiment: Experiment::SymmetryReplication,
            tables: vec![runs, tests_table, pairs_table],
            summary: md,
            samples: None,
            wall_s: 0.0,
        })
    }
}

/// One row per training run.
fn runs_table(design: &Design, jobs: &[Job], cells: &[Cell]) -> Table {
    let st = |j: &Job| design.settings[j.0];
    let f64s = |f: &dyn Fn(&Cell) -> f64| Values::F64(cells.iter().map(f).collect());
    Table::new("runs")
        .with(
            "setting",
            Values::Str(jobs.iter().map(|j| st(j).name.to_string()).collect()),
        )
        .with(
            "n_train",
            Values::U64(jobs.iter().map(|j| st(j).n as u64).collect()),
        )
        .with(
            "width",
            Values::U64(jobs.iter().map(|j| st(j).width as u64).collect()),
        )
        .with(
            "epochs",
            Values::U64(jobs.iter().map(|j| st(j).epochs as u64).collect()),
        )
        .with("lr", Values::F64(jobs.iter().map(|j| st(j).lr).collect()))
        .with(
            "objective",
            Values::Str(
                jobs.iter()
                    .map(|j| if j.1 { "symmetrized" } else { "mfvi" }.to_string())
                    .collect(),
            ),
        )
        .with("seed", Values::U64(jobs.iter().map(|j| j.2).collect()))
        .with("elbo_per_point", f64s(&|c| c.elbo))
        .with("mi_nats", f64s(&|c| c.value()))
        .with(
            "mi_interval",
            Values::Str(cells.iter().map(|c| c.chosen().1.to_string()).collect()),
        )
        .with("ln_group_order", f64s(&|c| c.ln_g))
        .with("elbo_g_per_point", f64s(&Cell::elbo_g))
        .with("test_accuracy", f64s(&|c| c.accuracy))
        .with("test_nll", f64s(&|c| c.nll))
        .with("test_ece", f64s(&|c| c.ece))
        .with("test_brier", f64s(&|c| c.brier))
        .with(
            "ood_auroc_rotated",
            Values::OptF64(cells.iter().map(|c| c.ood.map(|o| o.rotated)).collect()),
        )
        .with(
            "ood_auroc_noised",
            Values::OptF64(cells.iter().map(|c| c.ood.map(|o| o.noised)).collect()),
        )
        .with("train_wall_s", f64s(&|c| c.train_wall))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paired test against values computed by hand: Δ = (1, 2, 3, 4) has mean 2.5,
    /// sd 1.2910, SE 0.6455, t = 3.873 with 3 degrees of freedom, one-sided p = 0.01523
    /// (scipy.stats.t.sf(3.873, 3)).
    #[test]
    fn the_paired_test_matches_a_hand_computation() {
        let (m, se, t, p) = paired_test(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        assert!((se - 0.645_497_224_367_902_8).abs() < 1e-12, "{se}");
        assert!((t - 3.872_983_346_207_417).abs() < 1e-9, "{t}");
        assert!((p - 0.015_233).abs() < 1e-5, "{p}");
        let (lo, hi) = interval_95(m, se, 4);
        // t_{0.975, 3} = 3.182446
        assert!(
            (lo - (2.5 - 3.182_446 * se)).abs() < 1e-5
                && (hi - (2.5 + 3.182_446 * se)).abs() < 1e-5
        );
        // Identical pairs: no evidence, and no panic.
        assert_eq!(paired_test(&[0.0, 0.0, 0.0]), (0.0, 0.0, 0.0, 1.0));
        assert_eq!(paired_test(&[0.5, 0.5]).3, 0.0);
    }
}
