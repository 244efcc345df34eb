//! `estimator-cost` (beyond the paper): on posteriors where exact I is computable
//! (overlapping one-layer nets of width 6–16, a two-hidden-layer net, clusters of
//! overlapping units at width 30, MNIST-trained nets of width 10 and 30), every estimator
//! at an **equal wall-time budget** per estimate, repeated: bias, spread and MSE against
//! the exact value, coverage and width of the sandwich interval. Timed on one thread.

use crate::journal::exact;
use rand::RngExt;
use rand_distr::StandardNormal;
use std::time::Instant;

use crate::data::{MnistSplit, load_mnist};
use crate::error::{Error, Result};
use crate::estimators::{
    Annealed, Estimate, EstimatorId, EstimatorKind, InfoNce, MiEstimator, PairwiseBound, Sandwich,
};
use crate::posterior::MeanFieldGaussian;
use crate::rng::{child_seed, stream};
use crate::study::experiment::{
    Experiment, Figure, MnistUsed, PlotSpec, ReproduceOptions, Reproduction, SeriesStyle, Study,
    mean_sd,
};
use crate::study::figure::extent;
use crate::study::format::number;
use crate::study::table::{Table, Values};
use crate::train::{TrainConfig, train};
use crate::weights::Arch;
use crate::weights::Likelihood;

/// A one-hidden-layer (or deeper) posterior whose units overlap: μ ~ N(0, 0.6²),
/// σ uniform in [0.05, 1.5], from `stream(seed, 999)`.
///
/// # Errors
///
/// Invalid widths, named.
pub fn overlapping_posterior(widths: &[usize], seed: u64) -> Result<MeanFieldGaussian> {
    let arch = Arch::builder(widths.to_vec()).check()?;
    let mut rng = stream(seed, 999);
    let p = arch.n_params();
    let mu = (0..p)
        .map(|_| 0.6 * rng.sample::<f64, _>(StandardNormal))
        .collect();
    let sigma = (0..p).map(|_| rng.random_range(0.05..1.5)).collect();
    MeanFieldGaussian::from_mu_sigma(arch, mu, sigma)
}

/// A 2-`clusters·size`-1 posterior whose hidden units form `clusters` groups of `size`
/// overlapping units (incoming weights 0.1 apart within a group, 10 apart across groups,
/// every σ = 0.3): I lies strictly between `ln(d!/(size!)^clusters)` and `ln d!`.
///
/// # Errors
///
/// Zero clusters or size, named.
pub fn clustered_posterior(clusters: usize, size: usize) -> Result<MeanFieldGaussian> {
    let d = clusters * size;
    let arch = Arch::builder(vec![2, d, 1]).check()?;
    let p = arch.n_params();
    let mut mu = vec![0.0; p];
    let o0 = arch.offsets(0).expect("variational first layer");
    for i in 0..d {
        mu[o0.weight + i * 2] = 10.0 * (i / size) as f64 + 0.1 * (i % size) as f64;
    }
    MeanFieldGaussian::from_mu_sigma(arch, mu, vec![0.3; p])
}

/// Exact I by the estimator `mi-est run` uses ([`exact_estimator`]: the permanent, the
/// pruned permanent beyond width 24, enumeration for deeper nets).
///
/// [`exact_estimator`]: crate::grid::exact_estimator
fn exact_for(
    q: &MeanFieldGaussian,
    samples: usize,
    seed: u64,
    limits: &crate::resources::Limits,
) -> Result<Estimate> {
    crate::estimators::exact_estimator(q, samples, seed, crate::estimators::ExactLimits::FULL)?
        .ok_or_else(|| {
            Error::invalid(
                "posterior",
                q.space().describe(),
                "exact I is not computable for this architecture",
            )
        })?
        .estimate_within(q, limits)
}

/// The 97.5 % quantile of Student's t with `samples − 1` degrees of freedom (the
/// one-sided 2.5 % margin of each bound; 1.96 for many draws).
fn t_quantile_975(samples: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    StudentsT::new(0.0, 1.0, samples.saturating_sub(1).max(1) as f64)
        .map_or(1.96, |t| t.inverse_cdf(0.975))
}

/// One estimator configuration of the cost study.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Probe {
    InfoNce(usize),
    Sandwich(usize),
    /// The annealed bounds with T temperatures.
    Annealed(usize),
    Exact,
    Pairwise,
}

impl Probe {
    /// Runs the probe: one estimate per reported estimator (the sandwich and the
    /// pairwise bounds report two from one computation).
    fn run(
        self,
        q: &MeanFieldGaussian,
        samples: usize,
        seed: u64,
        limits: &crate::resources::Limits,
    ) -> Result<Vec<Estimate>> {
        Ok(match self {
            Probe::InfoNce(k) => vec![
                InfoNce::new(k)?
                    .samples(samples)?
                    .seed(seed)
                    .estimate_within(q, limits)?,
            ],
            Probe::Sandwich(k) => {
                let (lo, up) = Sandwich::new(k)?
                    .samples(samples)?
                    .seed(seed)
                    .estimate_both_within(q, limits)?;
                vec![lo, up]
            }
            Probe::Annealed(t) => {
                let (lo, up) = Annealed::new(t)?
                    .samples(samples)?
                    .seed(seed)
                    .estimate_both_within(q, limits)?;
                vec![lo, up]
            }
            Probe::Exact => vec![exact_for(q, samples, seed, limits)?],
            Probe::Pairwise => {
                let started = Instant::now();
                let mut lo = PairwiseBound::Bhattacharyya.estimate_within(q, limits)?;
                let mut up = PairwiseBound::Kl.estimate_within(q, limits)?;
                let wall = started.elapsed().as_secs_f64();
                lo.wall_s = wall;
                up.wall_s = wall;
                vec![lo, up]
            }
        })
    }

    fn deterministic(self) -> bool {
        self == Probe::Pairwise
    }

    /// The probe behind a row of the raw table (`estimator`, `k`); `None` for the
    /// deterministic pairwise bounds, which take no S.
    fn of_row(estimator: EstimatorId, k: Option<usize>) -> Option<Probe> {
        match (estimator, k) {
            (EstimatorId::InfoNce, Some(k)) => Some(Probe::InfoNce(k)),
            (e, Some(k)) => match e.interval_of() {
                Some(EstimatorKind::Sandwich) => Some(Probe::Sandwich(k)),
                Some(EstimatorKind::Annealed) => Some(Probe::Annealed(k)),
                _ => None,
            },
            (e, None) if e.is_exact() => Some(Probe::Exact),
            _ => None,
        }
    }

    /// The name of this probe on posterior `posterior`: the key of its S in
    /// [`ReproduceOptions::samples`](crate::study::reproduce::ReproduceOptions) and of its
    /// repeats in the journal.
    fn key(self, posterior: &str) -> String {
        match self {
            Probe::InfoNce(k) => format!("{posterior}/infonce-{k}"),
            Probe::Sandwich(k) => format!("{posterior}/sandwich-{k}"),
            Probe::Annealed(t) => format!("{posterior}/annealed-{t}"),
            Probe::Exact => format!("{posterior}/exact"),
            Probe::Pairwise => format!("{posterior}/pairwise"),
        }
    }
}

/// The S each timed estimate of an `estimator-cost` report used, read from the rows of
/// its raw table (`posterior`, `estimator`, `k`, `samples`), keyed as
/// [`ReproduceOptions::samples`](crate::study::reproduce::ReproduceOptions) expects.
/// With them a rerun computes the same values as that report, whatever the machine's
/// speed (S is otherwise chosen from timed pilots).
///
/// # Errors
///
/// [`Error::InvalidParameter`] if two rows of one estimate disagree on S or an S is 0.
pub fn samples_of_rows(
    rows: impl IntoIterator<Item = (String, EstimatorId, Option<usize>, usize)>,
) -> Result<std::collections::BTreeMap<String, usize>> {
    let mut map = std::collections::BTreeMap::new();
    for (posterior, estimator, k, samples) in rows {
        let Some(probe) = Probe::of_row(estimator, k) else {
            continue;
        };
        let key = probe.key(&posterior);
        if samples == 0 || *map.entry(key.clone()).or_insert(samples) != samples {
            return Err(Error::invalid(
                "samples",
                samples,
                format!("rows of `{key}` disagree on S or S is 0"),
            ));
        }
    }
    Ok(map)
}

/// One row of the cost study's raw table.
#[derive(serde::Serialize, serde::Deserialize)]
struct Repeat {
    posterior: String,
    estimator: EstimatorId,
    k: Option<usize>,
    samples: usize,
    repeat: usize,
    #[serde(with = "exact")]
    value: f64,
    #[serde(with = "exact::option")]
    std_err: Option<f64>,
    #[serde(with = "exact")]
    wall_s: f64,
}

/// A posterior of the cost study with its exact reference.
struct Case {
    name: String,
    q: MeanFieldGaussian,
    reference: Reference,
    regime: &'static str,
}

/// The exact reference of a cost-study posterior (journaled).
#[derive(serde::Serialize, serde::Deserialize)]
struct Reference {
    #[serde(with = "exact")]
    value: f64,
    #[serde(with = "exact::option")]
    std_err: Option<f64>,
    estimator: EstimatorId,
    #[serde(with = "exact::option")]
    bracket: Option<f64>,
}

/// Trains a 784-`width`-10 MFVI posterior on MNIST for the cost study.
fn mnist_posterior(
    o: &ReproduceOptions,
    width: usize,
    epochs: usize,
    limit: Option<usize>,
) -> Result<MeanFieldGaussian> {
    let train_set = load_mnist(&o.mnist_dir, MnistSplit::Train, limit, &o.limits)?;
    let arch = Arch::builder(vec![784, width, 10]).check()?;
    let mut config = TrainConfig::new(Likelihood::Softmax);
    config.epochs = epochs;
    config.seed = child_seed(o.seed, 100 + width as u64);
    Ok(train(&arch, &train_set, &config, None, &crate::observe::Silent)?.posterior)
}

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct EstimatorCost;

impl Study for EstimatorCost {
    fn experiment(&self) -> Experiment {
        Experiment::EstimatorCost
    }

    /// `rmse-<posterior>`: each estimator's RMSE against the exact I per K (log axes:
    /// the values span decades), the estimators without a K (exact, pairwise) as dashed
    /// levels across the K axis; an RMSE of 0 cannot sit on a log axis and is said in
    /// the legend. Each estimate had the same budget; the wall times it took are in the
    /// caption.
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>> {
        let t = crate::study::table::find(tables, "summary")?;
        let (posterior, estimator) = (t.texts("posterior")?, t.texts("estimator")?);
        let (k, wall, rmse) = (t.reals("k")?, t.reals("mean_wall_ms")?, t.reals("rmse")?);
        let mut names: Vec<&String> = Vec::new();
        for p in &posterior {
            if !names.contains(&p) {
                names.push(p);
            }
        }
        let label = EstimatorId::label_of;
        let mut figures = Vec::new();
        for name in names {
            let rows: Vec<usize> = (0..posterior.len())
                .filter(|&i| posterior[i] == *name)
                .collect();
            let mut ests: Vec<&String> = Vec::new();
            for &i in &rows {
                if !ests.contains(&&estimator[i]) {
                    ests.push(&estimator[i]);
                }
            }
            let ks: Vec<f64> = rows
                .iter()
                .map(|&i| k[i])
                .filter(|k| k.is_finite())
                .collect();
            let (k0, k1) = extent(ks.iter().copied());
            let mut plot = PlotSpec::new(
                &format!("rmse-{name}"),
                &format!("{name}: RMSE against the exact I, per K"),
                "K (T for the annealed bounds)",
                "RMSE (nats)",
            );
            plot.log_x = true;
            plot.log_y = true;
            plot.lines = true;
            let mut walls = Vec::new();
            for (c, e) in ests.iter().enumerate() {
                let mine: Vec<usize> = rows
                    .iter()
                    .copied()
                    .filter(|&i| estimator[i] == **e)
                    .collect();
                let ms = extent(mine.iter().map(|&i| wall[i]));
                walls.push(format!(
                    "{} {}–{} ms",
                    label(e),
                    number(ms.0, 2),
                    number(ms.1, 2)
                ));
                let with_k: Vec<(f64, f64)> = mine
                    .iter()
                    .filter(|&&i| k[i].is_finite())
                    .map(|&i| (k[i], rmse[i]))
                    .collect();
                if with_k.is_empty() {
                    let level = rmse[mine[0]];
                    plot = plot.series(
                        &format!("{} (no K)", label(e)),
                        vec![(k0, level), (k1, level)],
                        None,
                        SeriesStyle::reference(c),
                    );
                } else {
                    plot = plot.series(&label(e), with_k, None, SeriesStyle::own(c));
                }
            }
            let best_at = |e: &str| {
                rows.iter()
                    .copied()
                    .filter(|&i| estimator[i] == e && k[i] == k1)
                    .map(|i| rmse[i])
                    .next()
            };
            let mut caption = match (best_at("sandwich-lower"), best_at("infonce")) {
                (Some(s), Some(i)) if s > 0.0 => format!(
                    "At K = {k1}, the sandwich lower bound's RMSE is {} nats against I^K's {} ({}× smaller).",
                    number(s, 2),
                    number(i, 2),
                    number(i / s, 3)
                ),
                _ => format!("RMSE of each estimator against the exact I for K from {k0} to {k1}."),
            };
            caption.push_str(&format!(
                " Mean wall time per estimate: {}.",
                walls.join("; ")
            ));
            figures.push(Figure { plot, caption });
        }
        if let Ok(d) = crate::study::table::find(tables, "deep") {
            figures.extend(deep_figures(d)?);
        }
        Ok(figures)
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
        // (budget per estimate in seconds, repeats, reference draws, MNIST epochs and limit)
        let (budget, repeats, ref_samples, epochs, limit) = if o.quick {
            (0.002, 12, 1000, 1, Some(1000))
        } else {
            (0.04, 200, 20_000, 5, None)
        };
        let mut posteriors: Vec<(String, MeanFieldGaussian)> = vec![
            ("overlap-d6".into(), overlapping_posterior(&[3, 6, 2], 1)?),
            ("overlap-d10".into(), overlapping_posterior(&[3, 10, 2], 2)?),
        ];
        if !o.quick {
            posteriors.push(("overlap-d16".into(), overlapping_posterior(&[3, 16, 2], 3)?));
            posteriors.push(("deep-4x3".into(), overlapping_posterior(&[2, 4, 3, 2], 4)?));
        }
        posteriors.push(("clusters-d30".into(), clustered_posterior(10, 3)?));
        if !o.quick {
            posteriors.push(("mnist-d10".into(), mnist_posterior(o, 10, epochs, limit)?));
        }
        posteriors.push(("mnist-d30".into(), mnist_posterior(o, 30, epochs, limit)?));
        let probes = [
            Probe::InfoNce(16),
            Probe::InfoNce(256),
            Probe::InfoNce(4096),
            Probe::Sandwich(4),
            Probe::Sandwich(16),
            Probe::Sandwich(64),
            Probe::Annealed(100),
            Probe::Annealed(1000),
            Probe::Exact,
            Probe::Pairwise,
        ];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map_err(|e| Error::invalid("threads", 1, e.to_string()))?;
        let executor = o.executor();
        let counter = executor.counter(posteriors.len() * probes.len());
        let mut cases = Vec::new();
        let mut rows: Vec<Repeat> = Vec::new();
        for (pi, (name, q)) in posteriors.into_iter().enumerate() {
            let seed = child_seed(o.seed, pi as u64);
            // The reference runs on every thread; the timed probes on one.
            let reference =
                executor.journaled(&format!("estimator-cost/{name}/reference"), || {
                    let e = exact_for(&q, ref_samples, child_seed(seed, 1_000_000), &o.limits)?;
                    Ok(Reference {
                        value: e.value,
                        std_err: e.std_err,
                        estimator: e.estimator,
                        bracket: e.bracket,
                    })
                })?;
            let ln_g = q.space().group().ln_order();
            let regime = if reference.value > ln_g - 0.01 {
                "saturated (I = ln|G|)"
            } else {
                "overlapping (I < ln|G|)"
            };
            for probe in probes {
                if probe == Probe::Pairwise && !q.space().single_unit_group() {
                    counter.tick();
                    continue;
                }
                rows.extend(timed_repeats(
                    o,
                    &executor,
                    &pool,
                    (&name, &q),
                    probe,
                    (budget, repeats),
                    seed,
                )?);
                counter.tick();
            }
            cases.push(Case {
                name,
                q,
                reference,
                regime,
            });
        }
        let summary = summarize_cost(&cases, &rows);
        // The deep nets whose units overlap (issue 30): no exact I, so the estimators'
        // intervals side by side at an equal budget per estimate.
        let deep = deep_cases(o.quick)?;
        let deep_counter = executor.counter(deep.len() * DEEP_PROBES.len());
        let mut deep_rows: Vec<Repeat> = Vec::new();
        for (di, case) in deep.iter().enumerate() {
            let seed = child_seed(o.seed, 1000 + di as u64);
            for probe in DEEP_PROBES {
                deep_rows.extend(timed_repeats(
                    o,
                    &executor,
                    &pool,
                    (&case.name, &case.q),
                    probe,
                    (case.budget_s, case.repeats),
                    seed,
                )?);
                deep_counter.tick();
            }
        }
        let (deep_table, deep_md) = summarize_deep(&deep, &deep_rows);
        rows.extend(deep_rows);
        let raw = Table::new("repeats")
            .with(
                "posterior",
                Values::Str(rows.iter().map(|r| r.posterior.clone()).collect()),
            )
            .with(
                "estimator",
                Values::Str(rows.iter().map(|r| r.estimator.to_string()).collect()),
            )
            .with(
                "k",
                Values::OptF64(rows.iter().map(|r| r.k.map(|k| k as f64)).collect()),
            )
            .with(
                "samples",
                Values::U64(rows.iter().map(|r| r.samples as u64).collect()),
            )
            .with(
                "repeat",
                Values::U64(rows.iter().map(|r| r.repeat as u64).collect()),
            )
            .with("value", Values::F64(rows.iter().map(|r| r.value).collect()))
            .with(
                "std_err",
                Values::OptF64(rows.iter().map(|r| r.std_err).collect()),
            )
            .with(
                "wall_s",
                Values::F64(rows.iter().map(|r| r.wall_s).collect()),
            );
        let (table, md) = summary;
        let chosen = if o.samples.is_some() {
            "S as recorded by an earlier run"
        } else {
            "S chosen from a timed pilot"
        };
        let used = MnistUsed::of(&o.mnist_dir, limit, &o.limits)?;
        let header = format!(
            "The MNIST-trained posteriors: {epochs} epoch(s) of MFVI on {used}. Budget {:.0} ms of one thread per estimate ({chosen}; `manifest.json` records it, and `mi-est reproduce estimator-cost --samples-from <this folder>` reruns with the same S and so the same values), {repeats} repeats per estimator, exact reference from {ref_samples} draws. Coverage: the share of repeats whose interval [lower − t SE, upper + t SE] contains the exact value (to 1e-9 relative, for rounding), t the 97.5 % quantile of Student's t with S − 1 degrees of freedom (each side misses with probability ≤ 2.5 %, so ≥ 95 % is expected); raw: [lower, upper] without the margin.\n\n",
            1000.0 * budget
        );
        let samples = samples_of_rows(
            rows.iter()
                .map(|r| (r.posterior.clone(), r.estimator, r.k, r.samples)),
        )?;
        Ok(Reproduction {
            experiment: Experiment::EstimatorCost,
            tables: vec![table, deep_table, raw],
            summary: header + &md + &deep_md,
            samples: Some(samples),
            wall_s: 0.0,
        })
    }
}

/// `deep-<posterior>`: per estimator, its lower and upper bound (mean over repeats ± their
/// spread) against its K or T (log axis), every estimate with the same budget.
fn deep_figures(t: &Table) -> Result<Vec<Figure>> {
    let (posterior, estimator, arch) = (
        t.texts("posterior")?,
        t.texts("estimator")?,
        t.texts("architecture")?,
    );
    let (k, lower, lower_sd) = (t.reals("k")?, t.reals("lower")?, t.reals("lower_sd")?);
    let (upper, upper_sd, budget) = (
        t.reals("upper")?,
        t.reals("upper_sd")?,
        t.reals("budget_s")?,
    );
    let mut names: Vec<&String> = Vec::new();
    for p in &posterior {
        if !names.contains(&p) {
            names.push(p);
        }
    }
    let mut figures = Vec::new();
    for name in names {
        let rows: Vec<usize> = (0..posterior.len())
            .filter(|&i| posterior[i] == *name)
            .collect();
        let mut plot = PlotSpec::new(
            &format!("deep-{name}"),
            &format!("{name} ({}): bounds on I at an equal budget", arch[rows[0]]),
            "K (I^K, sandwich) or T (annealed)",
            "nats",
        );
        plot.log_x = true;
        plot.lines = true;
        let mut kinds: Vec<&String> = Vec::new();
        for &i in &rows {
            if !kinds.contains(&&estimator[i]) {
                kinds.push(&estimator[i]);
            }
        }
        for (c, e) in kinds.iter().enumerate() {
            let mine: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&i| estimator[i] == **e)
                .collect();
            let side = |v: &[f64], sd: &[f64]| -> (Vec<(f64, f64)>, Vec<f64>) {
                mine.iter()
                    .filter(|&&i| v[i].is_finite())
                    .map(|&i| ((k[i], v[i]), sd[i]))
                    .unzip()
            };
            let (lo, lo_sd) = side(&lower, &lower_sd);
            let label = EstimatorId::label_of;
            let lower_name = if **e == "infonce" {
                label(e)
            } else {
                format!("{e} lower")
            };
            plot = plot.series(&lower_name, lo, Some(lo_sd), SeriesStyle::own(c));
            let (up, up_sd) = side(&upper, &upper_sd);
            if !up.is_empty() {
                plot = plot.series(
                    &format!("{e} upper"),
                    up,
                    Some(up_sd),
                    SeriesStyle::reference(c),
                );
            }
        }
        let caption = format!(
            "Each estimate had {} s of one thread (S from a timed pilot); points are means over the repeats, bars their spread. The interval of each estimator lies between its lower and its upper line.",
            number(budget[rows[0]], 3)
        );
        figures.push(Figure { plot, caption });
    }
    Ok(figures)
}

/// A deep posterior of the study, with the budget of each of its estimates.
struct DeepCase {
    name: String,
    q: MeanFieldGaussian,
    budget_s: f64,
    repeats: usize,
}

/// The estimators side by side on the deep nets: I^K at its largest K, the sandwich at
/// the K of the measurement, the annealed bounds at two numbers of temperatures.
const DEEP_PROBES: [Probe; 5] = [
    Probe::InfoNce(4096),
    Probe::Sandwich(16),
    Probe::Sandwich(256),
    Probe::Annealed(1000),
    Probe::Annealed(10_000),
];

/// The deep cases: `demo` posteriors (μ ~ N(0, 1/d_in) per weight, biases 0) with every
/// σ = 0.5, comparable to the means' spread, so that units overlap. Two and three hidden
/// layers of width 30, two of width 100, and the 784-256-256-10 net; budgets (one
/// thread) grow with the net. Quick: the first of them at a small budget (its name as in
/// the full run, so that `--samples-from` a full report reruns it).
fn deep_cases(quick: bool) -> Result<Vec<DeepCase>> {
    // σ = softplus(ρ) = 0.5.
    let rho = (0.5f64.exp() - 1.0).ln();
    let case = |name: &str, widths: &[usize], budget_s: f64, repeats: usize| -> Result<DeepCase> {
        Ok(DeepCase {
            name: name.to_string(),
            q: crate::demo::demo_posterior(widths, crate::weights::Activation::Relu, 0, rho)?,
            budget_s,
            repeats,
        })
    };
    if quick {
        return Ok(vec![case("deep2-w30", &[10, 30, 30, 2], 0.02, 2)?]);
    }
    Ok(vec![
        case("deep2-w30", &[10, 30, 30, 2], 1.0, 3)?,
        case("deep3-w30", &[10, 30, 30, 30, 2], 1.0, 3)?,
        case("deep2-w100", &[100, 100, 100, 10], 10.0, 3)?,
        case("deep2-w256", &[784, 256, 256, 10], 40.0, 3)?,
    ])
}

/// One line of the deep table: an estimator at one K (T) on one deep posterior, over its
/// repeats: each bound's mean, spread and mean standard error, the interval's width.
struct DeepLine {
    posterior: String,
    architecture: String,
    ln_g: f64,
    budget_s: f64,
    estimator: String,
    k: Option<usize>,
    samples: usize,
    wall_s: f64,
    lower: (f64, f64, f64),
    upper: Option<(f64, f64, f64)>,
    width: Option<f64>,
}

/// Mean, spread over repeats and mean standard error of one estimator's values.
fn value_stats(rows: &[&Repeat]) -> (f64, f64, f64) {
    let values: Vec<f64> = rows.iter().map(|r| r.value).collect();
    let (m, sd) = mean_sd(&values);
    let se = rows.iter().filter_map(|r| r.std_err).sum::<f64>() / rows.len() as f64;
    (m, sd, se)
}

/// The deep cases' table and markdown: per estimator and K (T), both bounds over the
/// repeats and the interval's width relative to the narrowest interval's midpoint.
fn summarize_deep(cases: &[DeepCase], rows: &[Repeat]) -> (Table, String) {
    let mut lines: Vec<DeepLine> = Vec::new();
    let mut md = String::from(
        "## Deep nets whose units overlap\n\nNo exact I: each estimator's bounds side by side at an equal budget per estimate (one thread; S from a timed pilot). `demo` posteriors (μ ~ N(0, 1/d_in) per weight, biases 0), every σ = 0.5. Lower: I^K and the lower side of each interval; upper: the interval's upper side, as computed (not cut). Each value is the mean over the repeats ± their spread, with the mean Monte Carlo SE within a repeat; width relative to the midpoint of the narrowest interval.\n\n",
    );
    for case in cases {
        let mine: Vec<&Repeat> = rows.iter().filter(|r| r.posterior == case.name).collect();
        let mut keys: Vec<(EstimatorId, Option<usize>)> = Vec::new();
        for r in &mine {
            let lower = match r.estimator.interval_of().and_then(EstimatorKind::sides) {
                Some((lower, _)) => lower,
                None => r.estimator,
            };
            if !keys.contains(&(lower, r.k)) {
                keys.push((lower, r.k));
            }
        }
        let start = lines.len();
        for (lower_id, k) in keys {
            let of = |id: EstimatorId| -> Vec<&Repeat> {
                mine.iter()
                    .copied()
                    .filter(|r| r.estimator == id && r.k == k)
                    .collect()
            };
            let lows = of(lower_id);
            let kind = lower_id.interval_of();
            let upper = kind
                .and_then(EstimatorKind::sides)
                .map(|(_, up)| value_stats(&of(up)));
            let lower = value_stats(&lows);
            lines.push(DeepLine {
                posterior: case.name.clone(),
                architecture: case.q.space().describe(),
                ln_g: case.q.space().group().ln_order(),
                budget_s: case.budget_s,
                estimator: kind.map_or_else(|| lower_id.to_string(), |k| k.name().to_string()),
                k,
                samples: lows[0].samples,
                wall_s: lows.iter().map(|r| r.wall_s).sum::<f64>() / lows.len() as f64,
                lower,
                upper,
                width: upper.map(|u| u.0 - lower.0),
            });
        }
        let narrowest = lines[start..]
            .iter()
            .filter_map(|l| Some((l.width?, l.lower.0 + 0.5 * l.width?)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        md.push_str(&format!(
            "### {} — {}, budget {} s per estimate\n\nln|G| = {:.2}\n\n| estimator | K or T | S | wall s | lower (± sd; SE) | upper (± sd; SE) | width | width / I |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
            case.name,
            case.q.space().describe(),
            number(case.budget_s, 3),
            case.q.space().group().ln_order()
        ));
        for l in &lines[start..] {
            let bound = |(m, sd, se): (f64, f64, f64)| format!("{m:.2} (± {sd:.2}; {se:.2})");
            md.push_str(&format!(
                "| {} | {} | {} | {:.2} | {} | {} | {} | {} |\n",
                l.estimator,
                l.k.map_or("—".into(), |k| k.to_string()),
                l.samples,
                l.wall_s,
                bound(l.lower),
                l.upper.map_or("—".into(), bound),
                l.width.map_or("—".into(), |w| format!("{w:.2}")),
                match (l.width, narrowest) {
                    (Some(w), Some((_, mid))) if mid > 0.0 => format!("{:.2} %", 100.0 * w / mid),
                    _ => "—".into(),
                }
            ));
        }
        md.push('\n');
    }
    (deep_table(&lines), md)
}

/// The deep table: one row per line.
fn deep_table(lines: &[DeepLine]) -> Table {
    let part = |f: &dyn Fn(&DeepLine) -> Option<f64>| Values::OptF64(lines.iter().map(f).collect());
    Table::new("deep")
        .with(
            "posterior",
            Values::Str(lines.iter().map(|l| l.posterior.clone()).collect()),
        )
        .with(
            "architecture",
            Values::Str(lines.iter().map(|l| l.architecture.clone()).collect()),
        )
        .with(
            "ln_group_order",
            Values::F64(lines.iter().map(|l| l.ln_g).collect()),
        )
        .with(
            "budget_s",
            Values::F64(lines.iter().map(|l| l.budget_s).collect()),
        )
        .with(
            "estimator",
            Values::Str(lines.iter().map(|l| l.estimator.clone()).collect()),
        )
        .with("k", part(&|l| l.k.map(|k| k as f64)))
        .with(
            "samples",
            Values::U64(lines.iter().map(|l| l.samples as u64).collect()),
        )
        .with(
            "mean_wall_s",
            Values::F64(lines.iter().map(|l| l.wall_s).collect()),
        )
        .with(
            "lower",
            Values::F64(lines.iter().map(|l| l.lower.0).collect()),
        )
        .with(
            "lower_sd",
            Values::F64(lines.iter().map(|l| l.lower.1).collect()),
        )
        .with(
            "lower_se",
            Values::F64(lines.iter().map(|l| l.lower.2).collect()),
        )
        .with("upper", part(&|l| l.upper.map(|u| u.0)))
        .with("upper_sd", part(&|l| l.upper.map(|u| u.1)))
        .with("upper_se", part(&|l| l.upper.map(|u| u.2)))
        .with("width", part(&|l| l.width))
}

/// A probe's repeats on one posterior at the budget (seconds of one thread per estimate):
/// S from a timed pilot (or as recorded in `o.samples`), each repeat with its own seed;
/// journaled under the probe's key.
fn timed_repeats(
    o: &ReproduceOptions,
    executor: &crate::execute::Executor,
    pool: &rayon::ThreadPool,
    (name, q): (&str, &MeanFieldGaussian),
    probe: Probe,
    (budget, repeats): (f64, usize),
    seed: u64,
) -> Result<Vec<Repeat>> {
    let probe_key = probe.key(name);
    let recorded = match (&o.samples, probe.deterministic()) {
        (Some(map), false) => Some(*map.get(&probe_key).ok_or_else(|| {
            Error::invalid(
                "samples",
                &probe_key,
                "no S recorded for this estimate".to_string(),
            )
        })?),
        _ => None,
    };
    let key = format!("estimator-cost/{probe_key}");
    executor.journaled(&key, || {
        pool.install(|| -> Result<Vec<Repeat>> {
            let mut rows = Vec::new();
            let samples = if probe.deterministic() {
                1
            } else if let Some(s) = recorded {
                s
            } else {
                // Pilot: a warm-up, then the time of one draw (budgets of a second and
                // more: two draws, no warm-up).
                let pilot_s = if budget >= 1.0 {
                    2
                } else {
                    probe.run(q, 2, seed, &o.limits)?;
                    8
                };
                let pilot = probe.run(q, pilot_s, seed, &o.limits)?;
                let per_draw = pilot[0].wall_s / pilot_s as f64;
                ((budget / per_draw).round() as usize).clamp(2, 1_000_000)
            };
            let n_rep = if probe.deterministic() { 1 } else { repeats };
            for r in 0..n_rep {
                for e in probe.run(q, samples, child_seed(seed, 1 + r as u64), &o.limits)? {
                    rows.push(Repeat {
                        posterior: name.to_string(),
                        estimator: e.estimator,
                        k: e.k,
                        samples: e.n_samples,
                        repeat: r,
                        value: e.value,
                        std_err: e.std_err,
                        wall_s: e.wall_s,
                    });
                }
            }
            Ok(rows)
        })
    })
}

/// One row of the summary: an estimator at one K on one posterior, over its repeats.
struct Line {
    posterior: String,
    regime: &'static str,
    ln_g: f64,
    reference: f64,
    reference_se: f64,
    estimator: EstimatorId,
    k: Option<usize>,
    samples: usize,
    wall_ms: f64,
    mean: f64,
    sd: f64,
    rmse: f64,
    mse: f64,
    coverage: Option<f64>,
    coverage_raw: Option<f64>,
    width: Option<f64>,
}

/// The per-(posterior, estimator, K) summary table and its markdown.
fn summarize_cost(cases: &[Case], rows: &[Repeat]) -> (Table, String) {
    let mut lines: Vec<Line> = Vec::new();
    let mut md = String::new();
    for case in cases {
        let reference = case.reference.value;
        let ln_g = case.q.space().group().ln_order();
        let mine: Vec<&Repeat> = rows.iter().filter(|r| r.posterior == case.name).collect();
        let mut keys: Vec<(EstimatorId, Option<usize>)> = Vec::new();
        for r in &mine {
            if !keys.contains(&(r.estimator, r.k)) {
                keys.push((r.estimator, r.k));
            }
        }
        md.push_str(&format!(
            "### {} — {}, {}\n\nexact I = {:.4} ± {:.4} ({}{}), ln|G| = {:.4}\n\n| estimator | K | S | wall ms | mean | bias | sd | RMSE | coverage | raw coverage | mean width |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
            case.name,
            case.q.space().describe(),
            case.regime,
            reference,
            case.reference.std_err.unwrap_or(0.0),
            case.reference.estimator,
            case.reference
                .bracket
                .map_or(String::new(), |b| format!(", bracket ≤ {b:.1e} per draw")),
            ln_g
        ));
        for (est, k) in keys {
            let sel: Vec<&&Repeat> = mine
                .iter()
                .filter(|r| r.estimator == est && r.k == k)
                .collect();
            let values: Vec<f64> = sel.iter().map(|r| r.value).collect();
            let (mean, sd) = mean_sd(&values);
            let mse = values
                .iter()
                .map(|v| (v - reference) * (v - reference))
                .sum::<f64>()
                / values.len() as f64;
            let wall_ms = 1000.0 * sel.iter().map(|r| r.wall_s).sum::<f64>() / sel.len() as f64;
            let (coverage, coverage_raw, width) =
                match est.interval_of().and_then(EstimatorKind::sides) {
                    Some(sides) => interval_coverage(&sel, &mine, sides, k, reference),
                    None => (None, None, None),
                };
            lines.push(Line {
                posterior: case.name.clone(),
                regime: case.regime,
                ln_g,
                reference,
                reference_se: case.reference.std_err.unwrap_or(0.0),
                estimator: est,
                k,
                samples: sel[0].samples,
                wall_ms,
                mean,
                sd,
                rmse: mse.sqrt(),
                mse,
                coverage,
                coverage_raw,
                width,
            });
            md.push_str(&line_markdown(lines.last().expect("just pushed")));
        }
        // Headline: best lower-bound MSE against best I^K MSE at the same budget.
        let best = |id: EstimatorId| {
            lines
                .iter()
                .filter(|l| l.posterior == case.name && l.estimator == id)
                .map(|l| l.mse)
                .fold(f64::INFINITY, f64::min)
        };
        let (lo, ik) = (best(EstimatorId::SandwichLower), best(EstimatorId::InfoNce));
        md.push_str(&format!(
            "\nAt equal wall time the best sandwich lower bound has MSE {lo:.3e} against I^K's best {ik:.3e}: **{:.3e}× smaller**.\n\n",
            ik / lo
        ));
    }
    (summary_table(&lines), md)
}

/// Rows of an interval (the sandwich, the annealed bounds): over the repeats, the share whose interval [lower − t SE, upper + t SE]
/// holds the exact value, the share whose raw interval does, and the mean width, each
/// interval from the same repeat's two bounds.
fn interval_coverage(
    sel: &[&&Repeat],
    mine: &[&Repeat],
    (lower, upper): (EstimatorId, EstimatorId),
    k: Option<usize>,
    reference: f64,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let pairs: Vec<(&Repeat, &Repeat)> = sel
        .iter()
        .filter_map(|lo| {
            let up = mine
                .iter()
                .find(|u| u.estimator == upper && u.k == k && u.repeat == lo.repeat)?;
            let lo = mine
                .iter()
                .find(|l| l.estimator == lower && l.k == k && l.repeat == lo.repeat)?;
            Some((&**lo, &**up))
        })
        .collect();
    let n = pairs.len() as f64;
    let z = t_quantile_975(sel[0].samples);
    // Rounding: a saturated posterior gives both bounds = ln|G| to ~1e-13.
    let tol = 1e-9 * reference.abs().max(1.0);
    let cov = pairs
        .iter()
        .filter(|(l, u)| {
            l.value - z * l.std_err.unwrap_or(0.0) - tol <= reference
                && reference <= u.value + z * u.std_err.unwrap_or(0.0) + tol
        })
        .count() as f64
        / n;
    let raw = pairs
        .iter()
        .filter(|(l, u)| l.value - tol <= reference && reference <= u.value + tol)
        .count() as f64
        / n;
    let w = pairs.iter().map(|(l, u)| u.value - l.value).sum::<f64>() / n;
    (Some(cov), Some(raw), Some(w))
}

/// A summary row's line of the markdown table.
fn line_markdown(l: &Line) -> String {
    let fmt_opt = |x: Option<f64>, pct: bool| {
        x.map_or("—".to_string(), |v| {
            if pct {
                format!("{:.1} %", 100.0 * v)
            } else {
                format!("{v:.4}")
            }
        })
    };
    format!(
        "| {} | {} | {} | {:.2} | {:.4} | {:+.4} | {:.4} | {:.4} | {} | {} | {} |\n",
        l.estimator,
        l.k.map_or("—".into(), |k| k.to_string()),
        if l.samples == 0 {
            "— (deterministic)".to_string()
        } else {
            l.samples.to_string()
        },
        l.wall_ms,
        l.mean,
        l.mean - l.reference,
        l.sd,
        l.mse.sqrt(),
        fmt_opt(l.coverage, true),
        fmt_opt(l.coverage_raw, true),
        fmt_opt(l.width, false),
    )
}

/// The summary as a table: one row per line.
fn summary_table(lines: &[Line]) -> Table {
    Table::new("summary")
        .with(
            "posterior",
            Values::Str(lines.iter().map(|l| l.posterior.clone()).collect()),
        )
        .with(
            "regime",
            Values::Str(lines.iter().map(|l| l.regime.to_string()).collect()),
        )
        .with(
            "ln_group_order",
            Values::F64(lines.iter().map(|l| l.ln_g).collect()),
        )
        .with(
            "exact_i",
            Values::F64(lines.iter().map(|l| l.reference).collect()),
        )
        .with(
            "exact_i_se",
            Values::F64(lines.iter().map(|l| l.reference_se).collect()),
        )
        .with(
            "estimator",
            Values::Str(lines.iter().map(|l| l.estimator.to_string()).collect()),
        )
        .with(
            "k",
            Values::OptF64(lines.iter().map(|l| l.k.map(|k| k as f64)).collect()),
        )
        .with(
            "samples",
            Values::U64(lines.iter().map(|l| l.samples as u64).collect()),
        )
        .with(
            "mean_wall_ms",
            Values::F64(lines.iter().map(|l| l.wall_ms).collect()),
        )
        .with("mean", Values::F64(lines.iter().map(|l| l.mean).collect()))
        .with(
            "bias",
            Values::F64(lines.iter().map(|l| l.mean - l.reference).collect()),
        )
        .with("sd", Values::F64(lines.iter().map(|l| l.sd).collect()))
        .with("rmse", Values::F64(lines.iter().map(|l| l.rmse).collect()))
        .with("mse", Values::F64(lines.iter().map(|l| l.mse).collect()))
        .with(
            "coverage",
            Values::OptF64(lines.iter().map(|l| l.coverage).collect()),
        )
        .with(
            "coverage_raw",
            Values::OptF64(lines.iter().map(|l| l.coverage_raw).collect()),
        )
        .with(
            "mean_interval_width",
            Values::OptF64(lines.iter().map(|l| l.width).collect()),
        )
}
