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
    Experiment, MnistUsed, PlotSpec, ReproduceOptions, Reproduction, Series, Study, mean_sd,
};
use crate::study::table::{Table, Values};
use crate::train::{TrainConfig, train};
use crate::weights::Arch;
use crate::weights::Likelihood;

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Mnist;

impl Study for Mnist {
    fn experiment(&self) -> Experiment {
        Experiment::Mnist
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
        let train_set = load_mnist(&o.mnist_dir, MnistSplit::Train, limit)?;
        let test_set = load_mnist(&o.mnist_dir, MnistSplit::Test, limit)?;
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
        let paper = |w: usize, k: usize| -> Option<(f64, f64)> {
            if !used.is_full() {
                return None;
            }
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
            "{used}. {} seeds, {epochs} epochs, batch 100, lr 1e-3, prior N(0, 1), ρ0 = −3, μ0 ~ N(0, 0.1²), {pred_s}-sample predictive (local reparameterization of the first layer).\n\n| width | method | accuracy % (ours, mean ± sd) | accuracy % (paper) | difference | mean Î^K in training | saturated steps | ‖∇Î^K‖/‖∇L‖ |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
            n_seeds
        );
        let mut series: Vec<Series> = Vec::new();
        let mut errors: Vec<Option<Vec<f64>>> = Vec::new();
        for &k in &methods {
            let mut pts = Vec::new();
            let mut sds = Vec::new();
            for &w in &widths {
                let sel: Vec<&Run> = jobs
                    .iter()
                    .zip(&runs)
                    .filter(|(j, _)| j.0 == w && j.1 == k)
                    .map(|(_, r)| r)
                    .collect();
                let (m, sd) = mean_sd(&sel.iter().map(|r| 100.0 * r.accuracy).collect::<Vec<_>>());
                pts.push((w as f64, m));
                sds.push(sd);
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
            series.push((format!("{} (ours, ± sd)", method_name(k)), pts));
            errors.push(Some(sds));
        }
        // The paper's Table 1 as its own series, with its ± sd.
        for &k in &methods {
            let (pts, sds): (Vec<(f64, f64)>, Vec<f64>) = widths
                .iter()
                .filter_map(|&w| paper(w, k).map(|(m, s)| ((w as f64, m), s)))
                .unzip();
            if !pts.is_empty() {
                series.push((format!("{} (paper)", method_name(k)), pts));
                errors.push(Some(sds));
            }
        }
        let plots = vec![PlotSpec {
            heat: None,
            errors,
            paths: Vec::new(),
            name: "accuracy".into(),
            title: "MNIST test accuracy against hidden width (mean ± sd over seeds)".into(),
            x_label: "hidden width".into(),
            y_label: "accuracy %".into(),
            log_x: false,
            log_y: false,
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
}
