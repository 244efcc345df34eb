//! A regime map (issue 18 item 2): when does I(g; ω) stay below ln|G| after training, and
//! when does training on the symmetrized objective help? MNIST subsets of N points ×
//! hidden widths × initial σ, each trained with MFVI and with the symmetrized objective
//! (exact I for one layer of width ≤ 12, the sandwich lower bound with K = 16 above).
//! For each cell it reports:
//! * I / ln|G| of the MFVI posterior (exact, or the sandwich interval's midpoint);
//! * the gain in L^G/N, accuracy and NLL of the symmetrized objective over MFVI, with the
//!   seed spread.

use crate::data::DataSpec;
use crate::elbo::Likelihood;
use crate::error::Result;
use crate::estimators::Sandwich;
use crate::execute::Schedule;
use crate::journal::exact;
use crate::rng::child_seed;
use crate::study::experiment::{
    Experiment, HeatMap, PlotSpec, ReproduceOptions, Reproduction, Study, mean_sd,
};
use crate::study::table::{Table, Values};
use crate::study::{Objective, TrainRun, run_training};
use crate::train::{StepInfo, TrainConfig};

/// One training run of the map (journaled).
#[derive(serde::Serialize, serde::Deserialize)]
struct Cell {
    #[serde(with = "exact")]
    accuracy: f64,
    #[serde(with = "exact")]
    nll: f64,
    #[serde(with = "exact")]
    elbo: f64,
    #[serde(with = "exact")]
    n_data: f64,
    #[serde(with = "exact")]
    ln_g: f64,
    /// Exact I where computable, else the sandwich interval's midpoint.
    #[serde(with = "exact")]
    mi: f64,
    /// Half the sandwich interval's width (0 for exact I).
    #[serde(with = "exact")]
    mi_half_width: f64,
    #[serde(with = "exact")]
    train_wall: f64,
}

/// One training run of the map: (N, width, (prior scale, initial ρ), symmetrized, seed).
type Job = (usize, usize, (f64, f64), bool, u64);

/// The symmetrized objective of a width: exact I up to width 12, the sandwich above.
fn symmetrized(width: usize) -> Objective {
    if width <= 12 {
        Objective::SgmExact
    } else {
        Objective::SgmSandwich { k: 16 }
    }
}

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SymmetryRegime;

impl Study for SymmetryRegime {
    fn experiment(&self) -> Experiment {
        Experiment::SymmetryRegime
    }

    fn needs_mnist(&self) -> bool {
        true
    }

    /// Runs the map.
    ///
    /// # Errors
    ///
    /// Missing data, training divergence, named.
    fn run(&self, o: &ReproduceOptions) -> Result<Reproduction> {
        // (prior scale, initial ρ) pairs.
        let (ns, widths, inits, n_seeds, epochs, pred_s, mi_s) = if o.quick {
            (
                vec![500, 1000],
                vec![5, 10],
                vec![(1.0, 1.0)],
                1u64,
                1,
                50,
                20,
            )
        } else {
            (
                vec![500, 2000, 10_000],
                vec![5, 10, 30],
                [1.0, 0.1]
                    .iter()
                    .flat_map(|&p| [-3.0, -1.0, 0.0, 1.0].map(|r| (p, r)))
                    .collect::<Vec<_>>(),
                2u64,
                30,
                100,
                100,
            )
        };
        let mut jobs: Vec<Job> = Vec::new();
        for &init in &inits {
            for &w in &widths {
                for &n in &ns {
                    for sym in [false, true] {
                        for s in 0..n_seeds {
                            jobs.push((n, w, init, sym, s));
                        }
                    }
                }
            }
        }
        let cells: Vec<Cell> = o.executor().map(
            &jobs,
            Schedule::LongestLast,
            |_, &(n, w, (prior, rho), sym, s)| {
                format!("symmetry-regime/{n}/{w}/{prior}/{rho}/{sym}/{s}")
            },
            |_, &(n, w, (prior, rho), sym, s)| {
                let mut config = TrainConfig::new(Likelihood::Softmax);
                config.epochs = epochs;
                config.init_rho = rho;
                config.prior_scale = prior;
                config.seed = child_seed(o.seed, s);
                let run = TrainRun {
                    data: DataSpec::Mnist {
                        dir: o.mnist_dir.clone(),
                        limit: Some(n),
                    },
                    hidden: vec![w],
                    activation: crate::weights::Activation::Relu,
                    objective: if sym { symmetrized(w) } else { Objective::Mfvi },
                    config,
                    predictive_samples: pred_s,
                    elbo_samples: 10,
                    eval_k: 16,
                    mi_samples: mi_s,
                };
                let r = run_training(&run, &mut |_: &StepInfo| {})?;
                let (mi, half) = match &r.exact_mi {
                    Some(e) => (e.value, 0.0),
                    None => {
                        let (lo, up) = Sandwich::new(64)?
                            .samples(mi_s)?
                            .seed(child_seed(run.config.seed, 7))
                            .estimate_both(&r.file.posterior)?;
                        ((lo.value + up.value) / 2.0, (up.value - lo.value) / 2.0)
                    }
                };
                Ok(Cell {
                    accuracy: r.predictive.accuracy.unwrap_or(f64::NAN),
                    nll: r.predictive.nll,
                    elbo: r.elbo.elbo_per_point,
                    n_data: r.elbo.n_data as f64,
                    ln_g: r.mi.ln_group_order,
                    mi,
                    mi_half_width: half,
                    train_wall: r.outcome.wall_s,
                })
            },
        )?;
        let lg = |c: &Cell| c.elbo + c.mi / c.n_data;
        let table = Table::new("runs")
            .with(
                "n_train",
                Values::U64(jobs.iter().map(|j| j.0 as u64).collect()),
            )
            .with(
                "width",
                Values::U64(jobs.iter().map(|j| j.1 as u64).collect()),
            )
            .with(
                "prior_scale",
                Values::F64(jobs.iter().map(|j| j.2.0).collect()),
            )
            .with(
                "init_rho",
                Values::F64(jobs.iter().map(|j| j.2.1).collect()),
            )
            .with(
                "objective",
                Values::Str(
                    jobs.iter()
                        .map(|j| {
                            if j.3 {
                                symmetrized(j.1).to_string()
                            } else {
                                "mfvi".into()
                            }
                        })
                        .collect(),
                ),
            )
            .with("seed", Values::U64(jobs.iter().map(|j| j.4).collect()))
            .with(
                "test_accuracy",
                Values::F64(cells.iter().map(|c| c.accuracy).collect()),
            )
            .with(
                "test_nll",
                Values::F64(cells.iter().map(|c| c.nll).collect()),
            )
            .with(
                "elbo_per_point",
                Values::F64(cells.iter().map(|c| c.elbo).collect()),
            )
            .with("mi_nats", Values::F64(cells.iter().map(|c| c.mi).collect()))
            .with(
                "mi_half_width_nats",
                Values::F64(cells.iter().map(|c| c.mi_half_width).collect()),
            )
            .with(
                "ln_group_order",
                Values::F64(cells.iter().map(|c| c.ln_g).collect()),
            )
            .with(
                "elbo_g_per_point",
                Values::F64(cells.iter().map(lg).collect()),
            )
            .with(
                "train_wall_s",
                Values::F64(cells.iter().map(|c| c.train_wall).collect()),
            );
        // Per (ρ0, width, N): the MFVI posterior's I/ln|G| and the symmetrized objective's
        // gains (paired by seed).
        let pick = |n: usize, w: usize, init: (f64, f64), sym: bool| -> Vec<&Cell> {
            jobs.iter()
                .zip(&cells)
                .filter(|(j, _)| j.0 == n && j.1 == w && j.2 == init && j.3 == sym)
                .map(|(_, c)| c)
                .collect()
        };
        let mut md = format!(
            "MNIST, the first N training images, 784-d-10 ReLU nets, prior N(0, s²) with s in the table, {epochs} epochs, batch 100, lr 1e-3, {n_seeds} seeds per cell; MFVI against the symmetrized objective (exact I up to width 12, the sandwich lower bound with K = 16 above). I of each trained posterior: exact (the permanent) where computable, else the midpoint of the sandwich interval with K = 64. Gains are symmetrized minus MFVI, paired by seed, mean ± sd; accuracy and NLL on the data folder's test set.\n\n| prior s | ρ0 | width | N | I/ln\\|G\\| (MFVI) | I/ln\\|G\\| (sym.) | L^G/N gain | accuracy gain (points) | NLL gain |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        );
        let mut plots = Vec::new();
        for &(prior, rho) in &inits {
            let tag = if prior == 1.0 {
                format!("rho{rho}")
            } else {
                format!("prior{prior}_rho{rho}")
            };
            let mut ratio = Vec::new();
            let mut gain = Vec::new();
            for &w in &widths {
                let mut ratio_row = Vec::new();
                let mut gain_row = Vec::new();
                for &n in &ns {
                    let (mf, sy) = (
                        pick(n, w, (prior, rho), false),
                        pick(n, w, (prior, rho), true),
                    );
                    let r =
                        |v: &[&Cell]| mean_sd(&v.iter().map(|c| c.mi / c.ln_g).collect::<Vec<_>>());
                    let paired = |f: &dyn Fn(&Cell) -> f64| {
                        mean_sd(
                            &mf.iter()
                                .zip(&sy)
                                .map(|(a, b)| f(b) - f(a))
                                .collect::<Vec<_>>(),
                        )
                    };
                    let (rm, rs) = (r(&mf), r(&sy));
                    let g = paired(&lg);
                    let acc = paired(&|c| 100.0 * c.accuracy);
                    let nll = paired(&|c| c.nll);
                    ratio_row.push(Some(rm.0));
                    gain_row.push(Some(g.0));
                    md.push_str(&format!(
                        "| {prior} | {rho} | {w} | {n} | {:.3} ± {:.3} | {:.3} ± {:.3} | {:+.2e} ± {:.1e} | {:+.2} ± {:.2} | {:+.4} ± {:.4} |\n",
                        rm.0, rm.1, rs.0, rs.1, g.0, g.1, acc.0, acc.1, nll.0, nll.1
                    ));
                }
                ratio.push(ratio_row);
                gain.push(gain_row);
            }
            let columns: Vec<String> = ns.iter().map(|n| n.to_string()).collect();
            let rows: Vec<String> = widths.iter().map(|w| w.to_string()).collect();
            for (name, title, values, label, range) in [
                (
                    format!("i_over_ln_g_{tag}"),
                    format!("I / ln|G| of the MFVI posterior, prior scale {prior}, rho0 = {rho}"),
                    ratio,
                    "I / ln|G|",
                    Some((0.0, 1.0)),
                ),
                (
                    format!("gain_{tag}"),
                    format!("L^G/N gain of symmetrizing, prior scale {prior}, rho0 = {rho}"),
                    gain,
                    "nats per point",
                    None,
                ),
            ] {
                plots.push(PlotSpec {
                    heat: Some(HeatMap {
                        columns: columns.clone(),
                        rows: rows.clone(),
                        values,
                        value_label: label.into(),
                        range,
                    }),
                    errors: Vec::new(),
                    paths: Vec::new(),
                    name,
                    title,
                    x_label: "N (training images)".into(),
                    y_label: "hidden width".into(),
                    log_x: false,
                    log_y: false,
                    lines: false,
                    series: Vec::new(),
                });
            }
        }
        Ok(Reproduction {
            experiment: Experiment::SymmetryRegime,
            tables: vec![table],
            plots,
            summary: md,
            samples: None,
            wall_s: 0.0,
        })
    }
}
