//! MNIST (the paper's Table 1): MFVI against SGM at several K and widths, accuracy,
//! ELBO and the symmetrization term.

use std::time::Instant;

use crate::data::{MnistSplit, load_mnist};
use crate::error::Result;
use crate::estimators::{InfoNce, MiGradient};
use crate::execute::Schedule;
use crate::journal::exact;
use crate::rng::child_seed;
use crate::study::experiment::{
    Experiment, Figure, MnistUsed, PlotSpec, ReproduceOptions, Reproduction, SeriesStyle, Study,
    mean_sd, mean_se_by,
};
use crate::study::figure::{dodge, extent};
use crate::study::format::number;
use crate::study::table::{Table, Values};
use crate::train::{TrainConfig, train};
use crate::weights::Arch;
use crate::weights::Likelihood;

/// The paper's Table 1: test accuracy % (mean, sd) at width `w` ∈ {5, 10, 20, 30} for
/// MFVI (`k` = 0) and SGM with K = `k` ∈ {5, 10, 20}, on the full MNIST.
fn paper_table1(w: usize, k: usize) -> Option<(f64, f64)> {
    let wi = [5, 10, 20, 30].iter().position(|&x| x == w)?;
    let mi = [0, 5, 10, 20].iter().position(|&x| x == k)?;
    const T: [[(f64, f64); 4]; 4] = [
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
    Some(T[mi][wi])
}

/// K of a method's name in the runs table: `mfvi` 0, `sgm-k<K>` K.
fn method_k(method: &str) -> Option<usize> {
    match method {
        "mfvi" => Some(0),
        m => m.strip_prefix("sgm-k")?.parse().ok(),
    }
}

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Mnist;

impl Study for Mnist {
    fn experiment(&self) -> Experiment {
        Experiment::Mnist
    }

    /// `accuracy`: test accuracy against width per method, ours (mean ± SE over seeds)
    /// beside the paper's Table 1 (hollow squares, full MNIST); `accuracy_gain`: each
    /// SGM's accuracy minus MFVI's, paired by seed, beside the paper's difference. The
    /// methods are offset a little along x so that none hides another.
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>> {
        let t = crate::study::table::find(tables, "runs")?;
        let (width, method, seed, acc) = (
            t.reals("width")?,
            t.texts("method")?,
            t.reals("seed")?,
            t.reals("test_accuracy")?,
        );
        let acc: Vec<f64> = acc.iter().map(|a| 100.0 * a).collect();
        let groups = mean_se_by(&method, &width, &acc);
        let n = groups.len();
        let shift = |w: f64, i: usize| dodge(w, i, n, 0.4);
        let mut plot = PlotSpec::new(
            "accuracy",
            "MNIST test accuracy (ours: mean ± SE over seeds)",
            "hidden width",
            "accuracy %",
        );
        plot.lines = true;
        for (i, (m, pts, se)) in groups.iter().enumerate() {
            let pts = pts.iter().map(|&(w, a)| (shift(w, i), a)).collect();
            plot = plot.series(
                &format!("{m} (ours)"),
                pts,
                Some(se.clone()),
                SeriesStyle::own(i),
            );
        }
        for (i, (m, pts, _)) in groups.iter().enumerate() {
            let (paper, sd): (Vec<(f64, f64)>, Vec<f64>) = pts
                .iter()
                .filter_map(|&(w, _)| {
                    paper_table1(w as usize, method_k(m)?).map(|(a, s)| ((shift(w, i), a), s))
                })
                .unzip();
            if !paper.is_empty() {
                plot = plot.series(
                    &format!("{m} (paper, full MNIST)"),
                    paper,
                    Some(sd),
                    SeriesStyle::reference(i).points(),
                );
            }
        }
        // Each SGM run minus the MFVI run of the same width and seed.
        let mfvi = |w: f64, s: f64| {
            (0..width.len()).find(|&j| method[j] == "mfvi" && width[j] == w && seed[j] == s)
        };
        let (mut labels, mut xs, mut ds) = (Vec::new(), Vec::new(), Vec::new());
        for i in (0..width.len()).filter(|&i| method[i] != "mfvi") {
            if let Some(j) = mfvi(width[i], seed[i]) {
                labels.push(method[i].clone());
                xs.push(width[i]);
                ds.push(acc[i] - acc[j]);
            }
        }
        let gains = mean_se_by(&labels, &xs, &ds);
        let mut gain = PlotSpec::new(
            "accuracy_gain",
            "SGM's accuracy minus MFVI's (ours: paired by seed, mean ± SE)",
            "hidden width",
            "accuracy difference (percentage points)",
        );
        gain.lines = true;
        let largest = |v: &mut dyn Iterator<Item = f64>| v.fold(0.0f64, |a, x| a.max(x.abs()));
        let ours_max = largest(&mut gains.iter().flat_map(|g| g.1.iter().map(|p| p.1)));
        let mut paper_max = 0.0f64;
        for (i, (m, pts, se)) in gains.iter().enumerate() {
            let c = i + 1;
            let pts_shifted = pts.iter().map(|&(w, d)| (shift(w, c), d)).collect();
            gain = gain.series(
                &format!("{m} − mfvi (ours)"),
                pts_shifted,
                Some(se.clone()),
                SeriesStyle::own(c),
            );
            let paper: Vec<(f64, f64)> = pts
                .iter()
                .filter_map(|&(w, _)| {
                    let (a, _) = paper_table1(w as usize, method_k(m)?)?;
                    let (b, _) = paper_table1(w as usize, 0)?;
                    Some((shift(w, c), a - b))
                })
                .collect();
            paper_max = paper_max.max(largest(&mut paper.iter().map(|p| p.1)));
            if !paper.is_empty() {
                gain = gain.series(
                    &format!("{m} − mfvi (paper)"),
                    paper,
                    None,
                    SeriesStyle::reference(c).points(),
                );
            }
        }
        let widths = |g: &[(f64, f64)]| extent(g.iter().map(|p| p.0));
        let mfvi_pts = groups
            .iter()
            .find(|g| g.0 == "mfvi")
            .map(|g| g.1.clone())
            .unwrap_or_default();
        let (w0, w1) = widths(&mfvi_pts);
        let at = |w: f64| mfvi_pts.iter().find(|p| p.0 == w).map_or(f64::NAN, |p| p.1);
        Ok(vec![
            Figure {
                plot,
                caption: format!(
                    "Our MFVI reaches {}% at width {} and {}% at width {}; the SGM variants lie on it (the paper's Table 1: {}% and {}%).",
                    number(at(w0), 4),
                    w0,
                    number(at(w1), 4),
                    w1,
                    paper_table1(w0 as usize, 0).map_or("–".into(), |p| number(p.0, 4)),
                    paper_table1(w1 as usize, 0).map_or("–".into(), |p| number(p.0, 4)),
                ),
            },
            Figure {
                plot: gain,
                caption: format!(
                    "Symmetrizing changes accuracy by at most {} percentage points at any width (the paper: at most {}).",
                    number(ours_max, 2),
                    number(paper_max, 2)
                ),
            },
        ])
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
        let train_set = load_mnist(&o.mnist_dir, MnistSplit::Train, limit, &o.limits)?;
        let test_set = load_mnist(&o.mnist_dir, MnistSplit::Test, limit, &o.limits)?;
        let used = MnistUsed {
            n_train: train_set.len(),
            n_test: test_set.len(),
        };
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
            ece: f64,
            #[serde(with = "exact")]
            brier: f64,
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
        // Widest (slowest) runs first, so the last runs to finish are short ones and both
        // cores stay busy to the end.
        let runs: Vec<Run> = o.executor().map(
            &jobs,
            Schedule::LongestLast,
            |_, &(width, k, seed)| format!("mnist/{width}/{k}/{seed}"),
            |_, &(width, k, seed)| {
                let started = Instant::now();
                let arch = Arch::builder(vec![784, width, 10]).check()?;
                let mut config = TrainConfig::new(Likelihood::Softmax);
                config.epochs = epochs;
                config.batch_size = 100;
                config.lr = 1e-3;
                config.seed = child_seed(o.seed, seed);
                let ik = InfoNce::new(k.max(1))?;
                let sym = (k > 0).then_some(&ik as &dyn MiGradient);
                let out = train(&arch, &train_set, &config, sym, &crate::observe::Silent)?;
                let eval = child_seed(config.seed, 9);
                let (p, l) = crate::study::evaluate(
                    &out.posterior,
                    Likelihood::Softmax,
                    &train_set,
                    &test_set,
                    1.0,
                    pred_s,
                    elbo_s,
                    eval,
                    &o.limits,
                )?;
                Ok(Run {
                    accuracy: p.accuracy.unwrap_or(f64::NAN),
                    nll: p.nll,
                    ece: p.calibration.as_ref().map_or(f64::NAN, |c| c.ece),
                    brier: p.calibration.as_ref().map_or(f64::NAN, |c| c.brier),
                    elbo: l.elbo_per_point,
                    mean_mi: out.mean_mi_term,
                    saturated: out.saturated_fraction,
                    grad_ratio: out.mean_grad_ratio,
                    wall: started.elapsed().as_secs_f64(),
                })
            },
        )?;
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
                "test_ece",
                Values::F64(runs.iter().map(|r| r.ece).collect()),
            )
            .with(
                "test_brier",
                Values::F64(runs.iter().map(|r| r.brier).collect()),
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
        // The paper's Table 1, which only the full data set is compared with.
        let paper = |w: usize, k: usize| used.is_full().then(|| paper_table1(w, k)).flatten();
        let mut md = format!(
            "{used}. {} seeds, {epochs} epochs, batch 100, lr 1e-3, prior N(0, 1), ρ0 = −3, μ0 ~ N(0, 0.1²), {pred_s}-sample predictive (local reparameterization of the first layer).\n\n| width | method | accuracy % (ours, mean ± sd) | accuracy % (paper) | difference | mean Î^K in training | saturated steps | ‖∇Î^K‖/‖∇L‖ | ECE ({} bins) | Brier |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
            n_seeds,
            crate::elbo::ECE_BINS
        );
        for &k in &methods {
            for &w in &widths {
                let sel: Vec<&Run> = jobs
                    .iter()
                    .zip(&runs)
                    .filter(|(j, _)| j.0 == w && j.1 == k)
                    .map(|(_, r)| r)
                    .collect();
                let (m, sd) = mean_sd(&sel.iter().map(|r| 100.0 * r.accuracy).collect::<Vec<_>>());
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
                let spread = |f: fn(&Run) -> f64| {
                    let (m, sd) = mean_sd(&sel.iter().map(|r| f(r)).collect::<Vec<_>>());
                    format!("{m:.4} ± {sd:.4}")
                };
                md.push_str(&format!(
                    "| {w} | {} | {m:.3} ± {sd:.3} | {pm} | {} | {} | {} | {} | {} | {} |\n",
                    method_name(k),
                    if ps.is_nan() {
                        "—".into()
                    } else {
                        format!("{:+.3}", m - ps)
                    },
                    avg(|r| r.mean_mi),
                    avg(|r| r.saturated),
                    avg(|r| r.grad_ratio),
                    spread(|r| r.ece),
                    spread(|r| r.brier)
                ));
            }
        }
        Ok(Reproduction {
            experiment: Experiment::Mnist,
            tables: vec![table],
            summary: md,
            samples: None,
            wall_s: 0.0,
        })
    }
}
