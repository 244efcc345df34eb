//! A regime map (issue 18 item 2): when does I(g; ω) stay below ln|G| after training, and
//! when does training on the symmetrized objective help? MNIST subsets of N points ×
//! hidden widths × prior scale × initial σ, each trained with MFVI and with the
//! symmetrized objective (exact I for one layer of width ≤ 12, the sandwich lower bound
//! with K = 16 above). Not every cell of the cross product is run; `Design::full` says
//! which are and why. For each cell it reports:
//! * I / ln|G| of both trained posteriors (exact, or the midpoint of the narrower of the
//!   sandwich's and the annealed bounds' intervals, with its half width);
//! * the gain in L^G/N, accuracy and NLL of the symmetrized objective over MFVI, paired
//!   by seed, with the seed spread;
//! * heat maps of I / ln|G| and of the gain over N × width, one per (prior, ρ0).

use crate::data::DataSpec;
use crate::error::Result;
use crate::estimators::{Annealed, Estimate, Sandwich, cut_to_group};
use crate::execute::Schedule;
use crate::journal::exact;
use crate::rng::child_seed;
use crate::study::experiment::{
    Experiment, Figure, HeatMap, MnistUsed, PlotSpec, ReproduceOptions, Reproduction, SeriesStyle,
    Study, mean_sd,
};
use crate::study::figure::extent;
use crate::study::format::number;
use crate::study::table::{Table, Values};
use crate::study::{Objective, TrainRun, run_training};
use crate::train::TrainConfig;
use crate::weights::Likelihood;

/// One training run of the map (journaled).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Cell {
    #[serde(with = "exact")]
    pub(crate) accuracy: f64,
    #[serde(with = "exact")]
    pub(crate) nll: f64,
    /// Expected calibration error and Brier score of the test predictive.
    #[serde(with = "exact")]
    pub(crate) ece: f64,
    #[serde(with = "exact")]
    pub(crate) brier: f64,
    /// Out-of-distribution AUROCs of the predictive entropy, where asked ([`Ood`]).
    pub(crate) ood: Option<Ood>,
    #[serde(with = "exact")]
    pub(crate) elbo: f64,
    #[serde(with = "exact")]
    pub(crate) n_data: f64,
    #[serde(with = "exact")]
    pub(crate) ln_g: f64,
    /// Exact I where computable.
    #[serde(with = "exact::option")]
    pub(crate) exact_mi: Option<f64>,
    /// Else the sandwich's interval (K = 64), raw.
    pub(crate) sandwich: Option<Bounds>,
    /// And the annealed bounds' (T = [`MI_TEMPERATURES`]), raw.
    pub(crate) annealed: Option<Bounds>,
    #[serde(with = "exact")]
    pub(crate) train_wall: f64,
}

/// How well the predictive entropy tells the test images from shifted copies of them:
/// the AUROC of entropy with the shifted images as positives (0.5: not at all), for the
/// images turned a quarter turn and under pixel noise of sd [`OOD_NOISE_SD`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Ood {
    #[serde(with = "exact")]
    pub(crate) rotated: f64,
    #[serde(with = "exact")]
    pub(crate) noised: f64,
}

/// The pixel noise of the out-of-distribution images (pixels in [0, 1], clipped).
pub(crate) const OOD_NOISE_SD: f64 = 0.5;
/// The seed of that noise: the same noised images for every run.
const OOD_NOISE_SEED: u64 = 31;

/// The raw bounds of an interval on I, `(lower, upper)` (journaled bit for bit).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Bounds {
    #[serde(with = "exact")]
    pub(crate) lower: f64,
    #[serde(with = "exact")]
    pub(crate) upper: f64,
}

impl Cell {
    /// The interval that holds I, and which it is: exact I twice; else the narrower of
    /// the sandwich's and the annealed bounds' intervals, each intersected with
    /// [0, ln|G|], where I(g; ω) always lies (I ≤ H(g) = ln|G|): the library's cut. A loose
    /// upper bound (the sandwich's on overlapping units, the annealed bounds' on a sharply
    /// trained posterior whose mode the forward chains do not find) is cut at ln|G|.
    pub(crate) fn chosen(&self) -> ((f64, f64), &'static str) {
        if let Some(v) = self.exact_mi {
            return ((v, v), "exact");
        }
        let cut = |b: &Bounds| {
            (
                cut_to_group(b.lower, self.ln_g),
                cut_to_group(b.upper, self.ln_g),
            )
        };
        let width = |(lo, up): (f64, f64)| up - lo;
        match (
            self.sandwich.as_ref().map(cut),
            self.annealed.as_ref().map(cut),
        ) {
            (Some(s), Some(a)) if width(a) < width(s) => (a, "annealed"),
            (Some(s), _) => (s, "sandwich"),
            (None, Some(a)) => (a, "annealed"),
            (None, None) => ((f64::NAN, f64::NAN), "none"),
        }
    }

    /// [`Cell::chosen`]'s interval.
    pub(crate) fn interval(&self) -> (f64, f64) {
        self.chosen().0
    }

    /// The reported I: the midpoint of [`Cell::interval`].
    pub(crate) fn value(&self) -> f64 {
        let (lo, up) = self.interval();
        (lo + up) / 2.0
    }

    /// L^G/N = L/N + I/N with the reported I.
    pub(crate) fn elbo_g(&self) -> f64 {
        self.elbo + self.value() / self.n_data
    }
}

/// One training run of the map: (N, width, (prior scale, initial ρ), symmetrized, seed).
type Job = (usize, usize, (f64, f64), bool, u64);

/// A cell of the map: (N, width, (prior scale, initial ρ)).
type CellKey = (usize, usize, (f64, f64));

/// The map's design: its axes, the cells that are run (with their number of seeds) and
/// the training and evaluation sizes.
struct Design {
    ns: Vec<usize>,
    widths: Vec<usize>,
    inits: Vec<(f64, f64)>,
    /// Every cell that is run, with its number of seeds, in (init, width, N) order.
    cells: Vec<(CellKey, u64)>,
    epochs: usize,
    pred_s: usize,
    mi_s: usize,
}

impl Design {
    /// The full map. The axes are N ∈ {500, 2000, 10,000, 60,000} × widths {5, 10, 30,
    /// 100} × prior scale {1, 0.1} × ρ0 {−3, −1, 0, 1}, 30 epochs each, 2 seeds per cell.
    /// Not every cell is run: the design took 87 minutes on two cores (AMD EPYC Zen 3).
    /// * The 3 × 3 block N ≤ 10,000, width ≤ 30 is run for every (prior, ρ0).
    /// * The cells with N = 60,000 or width 100 (a symmetrized width-100 run at N =
    ///   60,000 trains for 9–13 minutes) are run for ρ0 ∈ {−3, −1, 1}; ρ0 = 0 lies
    ///   between −1 and 1 in every smaller cell.
    /// * The corner (N = 60,000, width 100) is run for the reference where nets learn
    ///   (prior 1, ρ0 = −3) and for the one region where overlap and learning met in the
    ///   smaller map (prior 0.1, ρ0 = −1).
    /// * That region (prior 0.1, ρ0 = −1) gets 8 seeds at (width 30, N = 10,000 and
    ///   60,000) and (width 100, N = 10,000), so that its gain has a usable spread.
    fn full() -> Self {
        let (ns, widths) = (vec![500, 2000, 10_000, 60_000], vec![5, 10, 30, 100]);
        let inits: Vec<(f64, f64)> = [1.0, 0.1]
            .iter()
            .flat_map(|&p| [-3.0, -1.0, 0.0, 1.0].map(|r| (p, r)))
            .collect();
        let promising = (0.1, -1.0);
        let mut cells = Vec::new();
        for &init in &inits {
            for &w in &widths {
                for &n in &ns {
                    let small = n <= 10_000 && w <= 30;
                    let corner = n == 60_000 && w == 100;
                    let run = small
                        || (!corner && init.1 != 0.0)
                        || (corner && (init == (1.0, -3.0) || init == promising));
                    if !run {
                        continue;
                    }
                    let seeds = if init == promising
                        && matches!((w, n), (30, 10_000) | (30, 60_000) | (100, 10_000))
                    {
                        8
                    } else {
                        2
                    };
                    cells.push(((n, w, init), seeds));
                }
            }
        }
        Self {
            ns,
            widths,
            inits,
            cells,
            epochs: 30,
            pred_s: 100,
            mi_s: 100,
        }
    }

    /// The quick map of the tests: N {500, 1000} × widths {5, 10}, prior 1, ρ0 = 1, one
    /// epoch. The cell (1000, 10) is left out and (500, 5) has two seeds, so that a
    /// missing cell and a seed spread are exercised.
    fn quick() -> Self {
        let init = (1.0, 1.0);
        Self {
            ns: vec![500, 1000],
            widths: vec![5, 10],
            inits: vec![init],
            cells: vec![
                ((500, 5, init), 2),
                ((1000, 5, init), 1),
                ((500, 10, init), 1),
            ],
            epochs: 1,
            pred_s: 50,
            mi_s: 20,
        }
    }

    /// The training runs, in (init, width, N, objective, seed) order.
    fn jobs(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        for &((n, w, init), seeds) in &self.cells {
            for sym in [false, true] {
                for s in 0..seeds {
                    jobs.push((n, w, init, sym, s));
                }
            }
        }
        jobs
    }

    /// The number of seeds of a cell (`None`: not run).
    fn seeds(&self, key: CellKey) -> Option<u64> {
        self.cells.iter().find(|c| c.0 == key).map(|c| c.1)
    }
}

/// A rough relative cost of a training run, to start the longest runs first: steps ×
/// width, and about 3× for the sandwich objective.
fn cost(job: &Job) -> f64 {
    let (n, w, _, sym, _) = *job;
    let factor = match (sym, w <= 12) {
        (false, _) => 1.0,
        (true, true) => 1.3,
        (true, false) => 3.0,
    };
    n as f64 * (w as f64 + 20.0) * factor
}

/// The temperatures of the annealed interval on I of a trained posterior where exact I is
/// not computed (widths above 12): on a 784-100-10 net, 100 swap moves per temperature.
const MI_TEMPERATURES: usize = 10_000;

/// The symmetrized objective of a width: exact I up to width 12, the sandwich above.
fn symmetrized(width: usize) -> Objective {
    if width <= 12 {
        Objective::SgmExact
    } else {
        Objective::SgmSandwich { k: 16 }
    }
}

/// One training run of the map's kind: the MNIST subset, net, prior and initial ρ, the
/// objective, the training seed, epochs and learning rate, and the draws of the
/// predictive and of I.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RegimeRun {
    pub n: usize,
    pub width: usize,
    pub prior: f64,
    pub rho: f64,
    pub symmetrized: bool,
    pub seed: u64,
    pub epochs: usize,
    pub lr: f64,
    pub pred_s: usize,
    pub mi_s: usize,
    /// Also measure [`Ood`] on the run's test images.
    pub ood: bool,
}

/// Trains `run` (784-`width`-10 ReLU on the first N MNIST images, batch 100) and measures
/// the trained posterior: test accuracy and NLL, L/N, and I (exact where computable, else
/// both intervals; [`Cell::chosen`]).
///
/// # Errors
///
/// Missing data, training divergence, work beyond the limits.
pub(crate) fn train_and_measure(o: &ReproduceOptions, run: &RegimeRun) -> Result<Cell> {
    let mut config = TrainConfig::new(Likelihood::Softmax);
    config.epochs = run.epochs;
    config.lr = run.lr;
    config.init_rho = run.rho;
    config.prior_scale = run.prior;
    config.seed = run.seed;
    let training = TrainRun {
        data: DataSpec::Mnist {
            dir: o.mnist_dir.clone(),
            limit: Some(run.n),
        },
        hidden: vec![run.width],
        activation: crate::weights::Activation::Relu,
        objective: if run.symmetrized {
            symmetrized(run.width)
        } else {
            Objective::Mfvi
        },
        config,
        predictive_samples: run.pred_s,
        elbo_samples: 10,
        eval_k: 16,
        mi_samples: run.mi_s,
        limits: o.limits,
    };
    let r = run_training(&training, &crate::observe::Silent)?;
    let (exact_mi, sandwich, annealed) = match &r.exact_mi {
        Some(e) => (Some(e.value), None, None),
        None => {
            let q = &r.file.posterior;
            let seed = child_seed(run.seed, 7);
            let bounds = |(lo, up): (Estimate, Estimate)| Bounds {
                lower: lo.value,
                upper: up.value,
            };
            let sandwich = Sandwich::new(64)?
                .samples(run.mi_s)?
                .seed(seed)
                .estimate_both_within(q, &o.limits)?;
            let annealed = Annealed::new(MI_TEMPERATURES)?
                .samples(run.mi_s)?
                .seed(seed)
                .estimate_both_within(q, &o.limits)?;
            (None, Some(bounds(sandwich)), Some(bounds(annealed)))
        }
    };
    let calibration = r.predictive.calibration.as_ref();
    let ood = if run.ood {
        let (_, test) = training
            .data
            .load(Likelihood::Softmax, run.seed, &o.limits)?;
        let test = test.ok_or_else(|| {
            crate::error::Error::invalid("data", "MNIST", "has no test images for the OOD sets")
        })?;
        let q = &r.file.posterior;
        let seed = child_seed(run.seed, 8);
        let entropy = |d: &crate::data::Dataset| -> Result<Vec<f64>> {
            let p = crate::elbo::predictive(q, Likelihood::Softmax, d, run.pred_s, seed)?;
            Ok(p.calibration.map(|c| c.entropy).unwrap_or_default())
        };
        let inside = entropy(&test)?;
        let rotated = entropy(&crate::data::rotated_quarter(&test)?)?;
        let noised = entropy(&crate::data::noised(&test, OOD_NOISE_SD, OOD_NOISE_SEED)?)?;
        Some(Ood {
            rotated: crate::elbo::auroc(&inside, &rotated),
            noised: crate::elbo::auroc(&inside, &noised),
        })
    } else {
        None
    };
    Ok(Cell {
        accuracy: r.predictive.accuracy.unwrap_or(f64::NAN),
        nll: r.predictive.nll,
        ece: calibration.map_or(f64::NAN, |c| c.ece),
        brier: calibration.map_or(f64::NAN, |c| c.brier),
        ood,
        elbo: r.elbo.elbo_per_point,
        n_data: r.elbo.n_data as f64,
        ln_g: r.mi.ln_group_order,
        exact_mi,
        sandwich,
        annealed,
        train_wall: r.outcome.wall_s,
    })
}

/// One cell of the map as its runs give it: per MFVI run (in the table's order) I/ln|G|
/// and the bounds of its interval over ln|G|, the MFVI runs' mean test accuracy, and the
/// symmetrized objective's L^G/N gain paired by seed (one per symmetrized run that has
/// its MFVI twin).
struct MapCell {
    ratios: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
    accuracy: f64,
    gains: Vec<f64>,
}

impl MapCell {
    /// The overlap 1 − I/ln|G| from per-run ratios: one minus their mean.
    fn overlap(ratios: &[f64]) -> f64 {
        1.0 - ratios.iter().sum::<f64>() / ratios.len() as f64
    }
}

/// The map as the runs table gives it: the N and width axes (sorted), the (prior scale,
/// ρ0) pairs in the runs' order, and `cells[init][width][N]`, `None` where no MFVI run
/// was made. Read once for all the figures.
struct Map {
    ns: Vec<f64>,
    widths: Vec<f64>,
    inits: Vec<(f64, f64)>,
    cells: Vec<Vec<Vec<Option<MapCell>>>>,
}

impl Map {
    /// The map of the table `runs`.
    ///
    /// # Errors
    ///
    /// A column the map needs that the table lacks, named.
    fn of(t: &Table) -> Result<Self> {
        let (n_train, width, prior, rho) = (
            t.reals("n_train")?,
            t.reals("width")?,
            t.reals("prior_scale")?,
            t.reals("init_rho")?,
        );
        let (objective, seed, accuracy) = (
            t.texts("objective")?,
            t.reals("seed")?,
            t.reals("test_accuracy")?,
        );
        let (mi, lower, upper) = (
            t.reals("mi_nats")?,
            t.reals("mi_lower_nats")?,
            t.reals("mi_upper_nats")?,
        );
        let (ln_g, lg) = (t.reals("ln_group_order")?, t.reals("elbo_g_per_point")?);
        let sorted = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v
        };
        let (ns, widths) = (sorted(&n_train), sorted(&width));
        let mut inits: Vec<(f64, f64)> = Vec::new();
        for i in 0..prior.len() {
            if !inits.contains(&(prior[i], rho[i])) {
                inits.push((prior[i], rho[i]));
            }
        }
        let cells = inits
            .iter()
            .map(|&(p, r)| {
                widths
                    .iter()
                    .map(|&w| {
                        ns.iter()
                            .map(|&n| {
                                let rows = |sym: bool| -> Vec<usize> {
                                    (0..n_train.len())
                                        .filter(|&i| {
                                            (n_train[i], width[i], prior[i], rho[i]) == (n, w, p, r)
                                                && (objective[i] != "mfvi") == sym
                                        })
                                        .collect()
                                };
                                let mf = rows(false);
                                if mf.is_empty() {
                                    return None;
                                }
                                let over_ln_g =
                                    |v: &[f64]| mf.iter().map(|&i| v[i] / ln_g[i]).collect();
                                let gains = rows(true)
                                    .iter()
                                    .filter_map(|&i| {
                                        mf.iter()
                                            .find(|&&j| seed[j] == seed[i])
                                            .map(|&j| lg[i] - lg[j])
                                    })
                                    .collect();
                                Some(MapCell {
                                    ratios: over_ln_g(&mi),
                                    lower: over_ln_g(&lower),
                                    upper: over_ln_g(&upper),
                                    accuracy: mf.iter().map(|&i| accuracy[i]).sum::<f64>()
                                        / mf.len() as f64,
                                    gains,
                                })
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Ok(Map {
            ns,
            widths,
            inits,
            cells,
        })
    }
}

/// The figure of issue 31: per cell of the map (`min_accuracy`: only those whose MFVI nets
/// reach that test accuracy on average), symmetrizing's mean paired L^G/N gain ± its
/// standard error over seeds against the MFVI posteriors' mean overlap 1 − I/ln|G|, with
/// the overlap's interval (from the interval on I) as a segment; one series per prior
/// scale and ρ0. `None` if no cell qualifies.
fn overlap_figure(map: &Map, min_accuracy: Option<f64>) -> Option<Figure> {
    let mut overlap_plot = PlotSpec::new(
        &match min_accuracy {
            None => "overlap_gain".to_string(),
            Some(a) => format!("overlap_gain_accuracy_above_{a}"),
        },
        &match min_accuracy {
            None => "Symmetrizing's L^G/N gain against the MFVI posterior's overlap, every cell"
                .to_string(),
            Some(a) => format!(
                "The same, cells whose MFVI nets learn (test accuracy above {} %)",
                100.0 * a
            ),
        },
        "overlap 1 − I/ln|G| of the MFVI posterior",
        "L^G/N gain (nats per point)",
    );
    let mut intervals = Vec::new();
    // (overlap, gain, prior, ρ0, width, N) of every cell with both objectives.
    let mut points: Vec<(f64, f64, f64, f64, f64, f64)> = Vec::new();
    let mut seeds_per_cell: Vec<usize> = Vec::new();
    for (c, (&(p, r), by_width)) in map.inits.iter().zip(&map.cells).enumerate() {
        let (mut series, mut errors) = (Vec::new(), Vec::new());
        for (&w, by_n) in map.widths.iter().zip(by_width) {
            for (&n, cell) in map.ns.iter().zip(by_n) {
                let Some(cell) = cell else { continue };
                if cell.gains.is_empty() || min_accuracy.is_some_and(|a| cell.accuracy <= a) {
                    continue;
                }
                let (m, sd) = mean_sd(&cell.gains);
                let se = if cell.gains.len() > 1 {
                    sd / (cell.gains.len() as f64).sqrt()
                } else {
                    0.0
                };
                let x = MapCell::overlap(&cell.ratios);
                series.push((x, m));
                errors.push(se);
                intervals.push(vec![
                    (MapCell::overlap(&cell.upper), m),
                    (MapCell::overlap(&cell.lower), m),
                ]);
                points.push((x, m, p, r, w, n));
                seeds_per_cell.push(cell.gains.len());
            }
        }
        if series.is_empty() {
            continue;
        }
        overlap_plot
            .series
            .push((format!("prior scale {p}, ρ0 = {r}"), series));
        overlap_plot.errors.push(Some(errors));
        overlap_plot
            .styles
            .push(SeriesStyle::own(c).shaped(c % 4).points());
    }
    if points.is_empty() {
        return None;
    }
    overlap_plot.paths.push((
        "interval of the overlap (from the interval on I)".into(),
        intervals,
    ));
    let positive = points.iter().filter(|q| q.1 > 0.0).count();
    let sharp: Vec<&(f64, f64, f64, f64, f64, f64)> =
        points.iter().filter(|q| q.0 < 0.01).collect();
    let sharp_max = sharp.iter().map(|q| q.1.abs()).fold(0.0, f64::max);
    let best = points
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("not empty");
    Some(Figure {
        plot: overlap_plot,
        caption: format!(
            "One point per cell ({} cells): the mean paired gain ± its standard error over the seeds ({}–{} per cell), against the MFVI posteriors' mean overlap, with the overlap's interval where I is bounded rather than exact. The gain is positive in {positive} cells. In the {} cells with overlap below 0.01 (units far apart) it is at most {} nats per point in size. The largest, {} at overlap {}, is at prior scale {}, ρ0 = {}, width {}, N = {}.",
            points.len(),
            seeds_per_cell.iter().min().expect("not empty"),
            seeds_per_cell.iter().max().expect("not empty"),
            sharp.len(),
            number(sharp_max, 2),
            number(best.1, 2),
            number(best.0, 2),
            best.2,
            best.3,
            best.4,
            best.5
        ),
    })
}

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SymmetryRegime;

/// One heat map of the regime's figures: per width (rows) and N (columns) a value and
/// its spread over seeds (`None`: the cell was not run, or one seed).
type Grid = (Vec<Vec<Option<f64>>>, Vec<Vec<Option<f64>>>);

impl Study for SymmetryRegime {
    /// Per prior scale and ρ0 (tag `rho<ρ0>` for prior 1, else `prior<s>_rho<ρ0>`):
    /// `i_over_ln_g_<tag>`, I/ln|G| of the MFVI posteriors (mean ± sd over seeds, scale
    /// 0 to 1), and `gain_<tag>`, the symmetrized objective's L^G/N gain paired by seed
    /// (mean ± sd), on a diverging scale centred at 0.
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>> {
        let t = crate::study::table::find(tables, "runs")?;
        let map = Map::of(t)?;
        let (ns, widths) = (&map.ns, &map.widths);
        let mut figures = Vec::new();
        figures.extend(overlap_figure(&map, None));
        figures.extend(overlap_figure(&map, Some(0.2)));
        for (&(p, r), by_width) in map.inits.iter().zip(&map.cells) {
            let tag = if p == 1.0 {
                format!("rho{r}")
            } else {
                format!("prior{p}_rho{r}")
            };
            let (mut ratio, mut gain): (Grid, Grid) = Default::default();
            let mut cells = Vec::new();
            for (&w, by_n) in widths.iter().zip(by_width) {
                let (mut r_row, mut rs_row, mut g_row, mut gs_row) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for (&n, cell) in ns.iter().zip(by_n) {
                    let stat = |v: &[f64]| match v.len() {
                        0 => (None, None),
                        1 => (Some(v[0]), None),
                        _ => {
                            let (m, sd) = mean_sd(v);
                            (Some(m), Some(sd))
                        }
                    };
                    let ((rm, rs), (gm, gs)) = match cell {
                        Some(c) => (stat(&c.ratios), stat(&c.gains)),
                        None => ((None, None), (None, None)),
                    };
                    if let (Some(rm), Some(gm)) = (rm, gm) {
                        cells.push((w, n, rm, gm, gs));
                    }
                    r_row.push(rm);
                    rs_row.push(rs);
                    g_row.push(gm);
                    gs_row.push(gs);
                }
                ratio.0.push(r_row);
                ratio.1.push(rs_row);
                gain.0.push(g_row);
                gain.1.push(gs_row);
            }
            if cells.is_empty() {
                continue;
            }
            let columns: Vec<String> = ns.iter().map(|n| number(*n, 6)).collect();
            let rows: Vec<String> = widths.iter().map(|w| number(*w, 6)).collect();
            let heat = |(values, spread): Grid, label: &str, range, diverging| HeatMap {
                columns: columns.clone(),
                rows: rows.clone(),
                values,
                spread,
                value_label: label.into(),
                range,
                diverging,
            };
            let (r0, r1) = extent(cells.iter().map(|c| c.2));
            let overlap = cells.iter().filter(|c| c.2 < 0.9).count();
            let mut i_plot = PlotSpec::new(
                &format!("i_over_ln_g_{tag}"),
                &format!("I / ln|G| of the MFVI posterior, prior scale {p}, ρ0 = {r}"),
                "N (training images)",
                "hidden width",
            );
            i_plot.heat = Some(heat(ratio, "I / ln|G|", Some((0.0, 1.0)), false));
            figures.push(Figure {
                plot: i_plot,
                caption: format!(
                    "I/ln|G| of the trained MFVI posteriors runs from {} to {}; it is below 0.9 (units overlap) in {overlap} of {} cells.",
                    number(r0, 3),
                    number(r1, 3),
                    cells.len()
                ),
            });
            let best = cells
                .iter()
                .max_by(|a, b| a.3.total_cmp(&b.3))
                .expect("not empty");
            let positive = cells.iter().filter(|c| c.3 > 0.0).count();
            let mut g_plot = PlotSpec::new(
                &format!("gain_{tag}"),
                &format!("L^G/N gain of symmetrizing, prior scale {p}, ρ0 = {r}"),
                "N (training images)",
                "hidden width",
            );
            g_plot.heat = Some(heat(gain, "nats per point", None, true));
            figures.push(Figure {
                plot: g_plot,
                caption: format!(
                    "The gain is positive in {positive} of {} cells; the largest is {} ± {} nats per point (sd over seeds) at width {}, N = {}.",
                    cells.len(),
                    number(best.3, 2),
                    best.4.map_or("–".into(), |s| number(s, 2)),
                    best.0,
                    best.1
                ),
            });
        }
        Ok(figures)
    }

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
        let design = if o.quick {
            Design::quick()
        } else {
            Design::full()
        };
        let (epochs, pred_s, mi_s) = (design.epochs, design.pred_s, design.mi_s);
        let jobs = design.jobs();
        // Run the costliest jobs first (the executor starts from the end of its list),
        // then put the results back in the design's order.
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by(|&a, &b| cost(&jobs[a]).total_cmp(&cost(&jobs[b])));
        let by_cost: Vec<Job> = order.iter().map(|&i| jobs[i]).collect();
        let ran: Vec<Cell> = o.executor().map(
            &by_cost,
            Schedule::LongestLast,
            |_, &(n, w, (prior, rho), sym, s)| {
                format!("symmetry-regime/{n}/{w}/{prior}/{rho}/{sym}/{s}")
            },
            |_, &(n, w, (prior, rho), sym, s)| {
                train_and_measure(
                    o,
                    &RegimeRun {
                        n,
                        width: w,
                        prior,
                        rho,
                        symmetrized: sym,
                        seed: child_seed(o.seed, s),
                        epochs,
                        lr: 1e-3,
                        pred_s,
                        mi_s,
                        ood: false,
                    },
                )
            },
        )?;
        let mut cells: Vec<Option<Cell>> = (0..jobs.len()).map(|_| None).collect();
        for (&i, c) in order.iter().zip(ran) {
            cells[i] = Some(c);
        }
        let cells: Vec<Cell> = cells.into_iter().flatten().collect();
        let f64s = |f: &dyn Fn(&Cell) -> f64| Values::F64(cells.iter().map(f).collect());
        let raw = |f: &dyn Fn(&Cell) -> Option<f64>| Values::OptF64(cells.iter().map(f).collect());
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
            .with("test_accuracy", f64s(&|c| c.accuracy))
            .with("test_nll", f64s(&|c| c.nll))
            .with("test_ece", f64s(&|c| c.ece))
            .with("test_brier", f64s(&|c| c.brier))
            .with("elbo_per_point", f64s(&|c| c.elbo))
            .with("mi_nats", f64s(&|c| c.value()))
            .with("mi_lower_nats", f64s(&|c| c.interval().0))
            .with("mi_upper_nats", f64s(&|c| c.interval().1))
            .with(
                "mi_interval",
                Values::Str(cells.iter().map(|c| c.chosen().1.to_string()).collect()),
            )
            .with(
                "sandwich_lower_raw_nats",
                raw(&|c| c.sandwich.map(|b| b.lower)),
            )
            .with(
                "sandwich_upper_raw_nats",
                raw(&|c| c.sandwich.map(|b| b.upper)),
            )
            .with(
                "annealed_lower_raw_nats",
                raw(&|c| c.annealed.map(|b| b.lower)),
            )
            .with(
                "annealed_upper_raw_nats",
                raw(&|c| c.annealed.map(|b| b.upper)),
            )
            .with("ln_group_order", f64s(&|c| c.ln_g))
            .with("elbo_g_per_point", f64s(&Cell::elbo_g))
            .with("train_wall_s", f64s(&|c| c.train_wall));
        // Per cell: the I/ln|G| of both objectives' posteriors and the symmetrized
        // objective's gains (paired by seed).
        let pick = |key: CellKey, sym: bool| -> Vec<&Cell> {
            jobs.iter()
                .zip(&cells)
                .filter(|(j, _)| (j.0, j.1, j.2) == key && j.3 == sym)
                .map(|(_, c)| c)
                .collect()
        };
        let train_total: f64 = cells.iter().map(|c| c.train_wall).sum();
        let n_runs = cells.len();
        let used = MnistUsed::of(&o.mnist_dir, None, &o.limits)?;
        let n_test = used.n_test;
        let mut md = format!(
            "{used}; each run reads the first N training images and the first min(N, {n_test}) test images (the limit applies to both splits). 784-d-10 ReLU nets, prior N(0, s²) with s in the table, {epochs} epochs, batch 100, lr 1e-3; MFVI against the symmetrized objective (exact I up to width 12, the sandwich lower bound with K = 16 above). I of each trained posterior: exact (the permanent) where computable, else the midpoint of the narrower of two intervals from S = {mi_s} draws, each cut to [0, ln|G|] where I always lies: the sandwich's (K = 64) and the annealed bounds' (bidirectional Monte Carlo, T = {MI_TEMPERATURES} temperatures); `runs.parquet` keeps both raw and names the one used (`mi_interval`); the largest half-width over the seeds, relative to ln|G|, is in its own column. Training took {train_total:.0} s summed over the {n_runs} runs. Gains are symmetrized minus MFVI, paired by seed, mean ± sd over the seeds; accuracy and NLL on those test images. Cells not in the table were not run (the design is in the experiment's documentation and in REPRODUCTION.md).\n\n| prior s | ρ0 | width | N | seeds | MFVI accuracy (%) | I/ln\\|G\\| (MFVI) | half-width/ln\\|G\\| | I/ln\\|G\\| (sym.) | L^G/N gain | accuracy gain (points) | NLL gain | ECE gain | Brier gain |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        );
        for &(prior, rho) in &design.inits {
            for &w in &design.widths {
                for &n in &design.ns {
                    let key = (n, w, (prior, rho));
                    let Some(seeds) = design.seeds(key) else {
                        continue;
                    };
                    let (mf, sy) = (pick(key, false), pick(key, true));
                    let over = |v: &[&Cell], f: &dyn Fn(&Cell) -> f64| {
                        mean_sd(&v.iter().map(|c| f(c)).collect::<Vec<_>>())
                    };
                    let paired = |f: &dyn Fn(&Cell) -> f64| {
                        mean_sd(
                            &mf.iter()
                                .zip(&sy)
                                .map(|(a, b)| f(b) - f(a))
                                .collect::<Vec<_>>(),
                        )
                    };
                    let ratio_of = |c: &Cell| c.value() / c.ln_g;
                    let (rm, rs) = (over(&mf, &ratio_of), over(&sy, &ratio_of));
                    let half = mf
                        .iter()
                        .map(|c| (c.interval().1 - c.interval().0) / 2.0 / c.ln_g)
                        .fold(0.0, f64::max);
                    let accuracy = over(&mf, &|c| 100.0 * c.accuracy);
                    let g = paired(&Cell::elbo_g);
                    let acc = paired(&|c| 100.0 * c.accuracy);
                    let nll = paired(&|c| c.nll);
                    let (ece, brier) = (paired(&|c| c.ece), paired(&|c| c.brier));
                    md.push_str(&format!(
                        "| {prior} | {rho} | {w} | {n} | {seeds} | {:.1} ± {:.1} | {:.3} ± {:.3} | {half:.1e} | {:.3} ± {:.3} | {:+.2e} ± {:.1e} | {:+.2} ± {:.2} | {:+.4} ± {:.4} | {:+.4} ± {:.4} | {:+.4} ± {:.4} |\n",
                        accuracy.0, accuracy.1, rm.0, rm.1, rs.0, rs.1, g.0, g.1, acc.0, acc.1, nll.0, nll.1, ece.0, ece.1, brier.0, brier.1
                    ));
                }
            }
        }
        Ok(Reproduction {
            experiment: Experiment::SymmetryRegime,
            tables: vec![table],
            summary: md,
            samples: None,
            wall_s: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An interval that pokes above ln|G| (a loose upper bound, as measured on a width-30
    /// net trained on 60,000 images) is cut there, one below 0 at 0; of the two intervals
    /// the narrower after the cut is used; exact I is its own interval.
    #[test]
    fn the_interval_on_i_is_cut_to_zero_and_ln_g_and_the_narrower_used() {
        let b = |lower: f64, upper: f64| Some(Bounds { lower, upper });
        let cell = |sandwich: Option<Bounds>, annealed: Option<Bounds>| Cell {
            accuracy: 0.9,
            nll: 0.3,
            ece: 0.01,
            brier: 0.1,
            ood: None,
            elbo: -0.4,
            n_data: 60_000.0,
            ln_g: 74.66,
            exact_mi: None,
            sandwich,
            annealed,
            train_wall: 1.0,
        };
        // The sandwich's upper bound above ln|G|; the annealed interval wider.
        let loose = cell(b(73.23, 105.21), b(25.0, 280.0));
        assert_eq!(loose.chosen(), ((73.23, 74.66), "sandwich"));
        assert!((loose.value() - (73.23 + 74.66) / 2.0).abs() < 1e-9);
        // Overlapping units: the annealed interval is the narrower.
        assert_eq!(
            cell(b(30.0, 50.0), b(38.0, 42.0)).chosen(),
            ((38.0, 42.0), "annealed")
        );
        assert_eq!(cell(b(-0.5, 1.5), None).interval(), (0.0, 1.5));
        let mut exact = cell(None, None);
        exact.exact_mi = Some(3.0);
        assert_eq!((exact.value(), exact.chosen().1), (3.0, "exact"));
    }
}
