//! What every experiment shares: its name ([`Experiment`]), its settings
//! ([`ReproduceOptions`], with the journal that lets a killed run resume), its result
//! ([`Reproduction`]: tables, plot requests, a summary) and the [`Study`] trait each
//! experiment's file implements.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::observe::Observer;
use crate::study::table::Table;

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
    /// Issue 18: the tractable BNN's unstated settings swept, and a rerun at the closest.
    TractableSweep,
    /// Issue 18: where I(g; ω) < ln|G| after training and where symmetrizing helps.
    SymmetryRegime,
}

impl std::str::FromStr for Experiment {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Experiment::parse(s)
    }
}

impl std::fmt::Display for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
            "tractable-sweep" => Ok(Experiment::TractableSweep),
            "symmetry-regime" => Ok(Experiment::SymmetryRegime),
            _ => Err(Error::invalid(
                "experiment",
                s,
                "expected mode-interpolation, tractable-bnn, mnist, mode-proximity, estimator-cost, mnist-objectives, tractable-sweep or symmetry-regime",
            )),
        }
    }

    /// Every experiment, in the order `reproduce` lists them.
    pub const ALL: [Experiment; 8] = [
        Experiment::ModeInterpolation,
        Experiment::TractableBnn,
        Experiment::Mnist,
        Experiment::ModeProximity,
        Experiment::EstimatorCost,
        Experiment::MnistObjectives,
        Experiment::TractableSweep,
        Experiment::SymmetryRegime,
    ];

    /// The experiment's name (its report folder).
    pub fn name(self) -> &'static str {
        match self {
            Experiment::ModeInterpolation => "mode-interpolation",
            Experiment::TractableBnn => "tractable-bnn",
            Experiment::Mnist => "mnist",
            Experiment::ModeProximity => "mode-proximity",
            Experiment::EstimatorCost => "estimator-cost",
            Experiment::MnistObjectives => "mnist-objectives",
            Experiment::TractableSweep => "tractable-sweep",
            Experiment::SymmetryRegime => "symmetry-regime",
        }
    }

    /// Whether the experiment reads MNIST.
    pub fn needs_mnist(self) -> bool {
        self.study().needs_mnist()
    }

    /// The experiment's [`Study`]: its file under [`crate::study::experiments`].
    pub fn study(self) -> &'static dyn Study {
        use crate::study::experiments::*;
        match self {
            Experiment::ModeInterpolation => &mode_interpolation::ModeInterpolation,
            Experiment::TractableBnn => &tractable_bnn::TractableBnn,
            Experiment::Mnist => &mnist::Mnist,
            Experiment::ModeProximity => &mode_proximity::ModeProximity,
            Experiment::EstimatorCost => &estimator_cost::EstimatorCost,
            Experiment::MnistObjectives => &mnist_objectives::MnistObjectives,
            Experiment::TractableSweep => &tractable_sweep::TractableSweep,
            Experiment::SymmetryRegime => &symmetry_regime::SymmetryRegime,
        }
    }
}

/// One experiment of `reproduce`: one file under [`crate::study::experiments`] each,
/// with a unit struct that implements this. The experiment says what its jobs are and
/// what it reports; [`ReproduceOptions::executor`] runs the jobs (parallel loop, journal,
/// progress).
pub trait Study: Sync {
    /// Which experiment this is.
    fn experiment(&self) -> Experiment;

    /// Whether it reads MNIST (from [`ReproduceOptions::mnist_dir`]).
    fn needs_mnist(&self) -> bool;

    /// Runs the experiment.
    ///
    /// # Errors
    ///
    /// Missing data, training divergence, journal I/O, each named.
    fn run(&self, options: &ReproduceOptions) -> Result<Reproduction>;
}

/// A line of a plot: label and points.
pub type Series = (String, Vec<(f64, f64)>);

/// A labelled group of polylines of a plot (contours, ellipses).
pub type PathGroup = (String, Vec<Vec<(f64, f64)>>);

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
    /// Log-scale x axis (points with x ≤ 0 are left out).
    pub log_x: bool,
    /// Log-scale y axis (points with y ≤ 0 are left out).
    pub log_y: bool,
    /// Join each series' points with lines (for curves; off for scatter plots).
    pub lines: bool,
    /// Lines.
    pub series: Vec<Series>,
    /// Per series (by position; missing or `None`: none), the ± half-widths of error bars
    /// at its points (a seed standard deviation or a standard error).
    pub errors: Vec<Option<Vec<f64>>>,
    /// Labelled groups of polylines drawn as given, one colour per group (contours,
    /// ellipses).
    pub paths: Vec<PathGroup>,
    /// Draw this heat map instead of the series (which are then ignored).
    pub heat: Option<HeatMap>,
}

/// A heat map: one coloured cell per (column, row) with its value written in it.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMap {
    /// Column labels (x), left to right.
    pub columns: Vec<String>,
    /// Row labels (y), bottom to top.
    pub rows: Vec<String>,
    /// `values[row][column]`; `None`: no value (drawn grey).
    pub values: Vec<Vec<Option<f64>>>,
    /// The spread of each value (e.g. its seed sd), printed under it as `± s`; shaped as
    /// `values`, or empty for none.
    pub spread: Vec<Vec<Option<f64>>>,
    /// What the colour shows.
    pub value_label: String,
    /// The values the colour scale spans (`None`: the data's range).
    pub range: Option<(f64, f64)>,
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

/// Settings shared by the experiments.
#[derive(Clone)]
pub struct ReproduceOptions {
    /// Small, fast variant that checks the qualitative claims.
    pub quick: bool,
    /// Master seed.
    pub seed: u64,
    /// Folder of the MNIST IDX files (mnist and mode-proximity).
    pub mnist_dir: PathBuf,
    /// Told as runs finish (and when a journal lets the experiment resume).
    pub observer: Option<std::sync::Arc<dyn Observer>>,
    /// Where finished runs are recorded so an interrupted experiment resumes
    /// ([`crate::journal`]); `None` computes everything.
    pub journal: Option<std::sync::Arc<crate::journal::Journal>>,
    /// `estimator-cost` only: the S of each timed estimate (keys `posterior/probe`, as
    /// [`crate::study::experiments::estimator_cost::samples_of_rows`] keys them) instead
    /// of S chosen from timed pilots, so that the values do not depend on the
    /// machine's speed; `None` times the pilots.
    pub samples: Option<std::collections::BTreeMap<String, usize>>,
}

impl std::fmt::Debug for ReproduceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReproduceOptions")
            .field("quick", &self.quick)
            .field("seed", &self.seed)
            .field("mnist_dir", &self.mnist_dir)
            .field("observer", &self.observer.as_ref().map(|_| "…"))
            .field("journal", &self.journal)
            .field("samples", &self.samples)
            .finish()
    }
}

impl ReproduceOptions {
    /// The executor of this run's jobs: its observer and journal.
    pub fn executor(&self) -> crate::execute::Executor<'_> {
        crate::execute::Executor::new(self.observer.as_deref(), self.journal.as_deref())
    }
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

/// The level-`level` contour of `z` on the grid `xs × ys` (`z[i * ys.len() + j]` at
/// `(xs[i], ys[j])`) as line segments, by marching squares with linear interpolation
/// along the cells' edges (a saddle cell is split along one fixed diagonal).
pub(crate) fn contour_segments(
    xs: &[f64],
    ys: &[f64],
    z: &[f64],
    level: f64,
) -> Vec<Vec<(f64, f64)>> {
    let (nx, ny) = (xs.len(), ys.len());
    let at = |i: usize, j: usize| z[i * ny + j];
    let mut out = Vec::new();
    for i in 0..nx.saturating_sub(1) {
        for j in 0..ny.saturating_sub(1) {
            // Corners counter-clockwise from (i, j).
            let c = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
            let mut crossings = Vec::new();
            for e in 0..4 {
                let (a, b) = (c[e], c[(e + 1) % 4]);
                let (za, zb) = (at(a.0, a.1), at(b.0, b.1));
                if (za >= level) != (zb >= level) {
                    let t = (level - za) / (zb - za);
                    let (xa, ya) = (xs[a.0], ys[a.1]);
                    let (xb, yb) = (xs[b.0], ys[b.1]);
                    crossings.push((xa + t * (xb - xa), ya + t * (yb - ya)));
                }
            }
            for pair in crossings.chunks_exact(2) {
                out.push(vec![pair[0], pair[1]]);
            }
        }
    }
    out
}

/// The ellipse `{center + k·(σ₁ cos t, σ₂ sin t)}` of an axis-aligned Gaussian, closed,
/// in 64 steps.
pub(crate) fn ellipse(center: (f64, f64), sigma: (f64, f64), k: f64) -> Vec<(f64, f64)> {
    (0..=64)
        .map(|s| {
            let t = std::f64::consts::TAU * s as f64 / 64.0;
            (
                center.0 + k * sigma.0 * t.cos(),
                center.1 + k * sigma.1 * t.sin(),
            )
        })
        .collect()
}

/// Which MNIST images a study used, for its summary, and whether they are the standard
/// full set (60,000 training and 10,000 test images), the only data a comparison with the
/// paper's numbers holds for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MnistUsed {
    /// Training images read (after any limit).
    pub n_train: usize,
    /// Test images read (after any limit).
    pub n_test: usize,
}

impl MnistUsed {
    /// Counts the images of `dir` that a study reading the first `limit` of each split
    /// uses.
    ///
    /// # Errors
    ///
    /// Those of [`crate::data::load_mnist`].
    pub fn of(dir: &std::path::Path, limit: Option<usize>) -> Result<Self> {
        use crate::data::{MnistSplit, load_mnist};
        Ok(MnistUsed {
            n_train: load_mnist(dir, MnistSplit::Train, limit)?.len(),
            n_test: load_mnist(dir, MnistSplit::Test, limit)?.len(),
        })
    }

    /// The standard full set.
    pub fn is_full(&self) -> bool {
        self.n_train == 60_000 && self.n_test == 10_000
    }
}

impl std::fmt::Display for MnistUsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |v: usize| {
            let s = v.to_string();
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        };
        write!(
            f,
            "MNIST, {} training / {} test images{}",
            n(self.n_train),
            n(self.n_test),
            if self.is_full() {
                " (the full set)"
            } else {
                " (not the full set: no comparison with the paper's numbers holds)"
            }
        )
    }
}
