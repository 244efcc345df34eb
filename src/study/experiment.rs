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

/// Every experiment with its name (its report folder and what `reproduce` takes) and
/// its [`Study`] (its file under [`crate::study::experiments`]), in the order `reproduce`
/// lists them: the one table that [`Experiment::ALL`], [`Experiment::name`],
/// [`Experiment::parse`] and [`Experiment::study`] read.
const REGISTRY: [(Experiment, &str, &dyn Study); 8] = {
    use crate::study::experiments::*;
    [
        (
            Experiment::ModeInterpolation,
            "mode-interpolation",
            &mode_interpolation::ModeInterpolation,
        ),
        (
            Experiment::TractableBnn,
            "tractable-bnn",
            &tractable_bnn::TractableBnn,
        ),
        (Experiment::Mnist, "mnist", &mnist::Mnist),
        (
            Experiment::ModeProximity,
            "mode-proximity",
            &mode_proximity::ModeProximity,
        ),
        (
            Experiment::EstimatorCost,
            "estimator-cost",
            &estimator_cost::EstimatorCost,
        ),
        (
            Experiment::MnistObjectives,
            "mnist-objectives",
            &mnist_objectives::MnistObjectives,
        ),
        (
            Experiment::TractableSweep,
            "tractable-sweep",
            &tractable_sweep::TractableSweep,
        ),
        (
            Experiment::SymmetryRegime,
            "symmetry-regime",
            &symmetry_regime::SymmetryRegime,
        ),
    ]
};

impl Experiment {
    /// Parses an experiment name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the unknown experiment and the known ones.
    pub fn parse(s: &str) -> Result<Self> {
        REGISTRY
            .iter()
            .find(|(_, name, _)| *name == s)
            .map(|(e, _, _)| *e)
            .ok_or_else(|| {
                let names: Vec<&str> = REGISTRY.iter().map(|(_, n, _)| *n).collect();
                Error::invalid(
                    "experiment",
                    s,
                    format!("expected one of {}", names.join(", ")),
                )
            })
    }

    /// Every experiment, in the order `reproduce` lists them.
    pub const ALL: [Experiment; 8] = {
        let mut all = [Experiment::ModeInterpolation; 8];
        let mut i = 0;
        while i < 8 {
            all[i] = REGISTRY[i].0;
            i += 1;
        }
        all
    };

    fn entry(self) -> &'static (Experiment, &'static str, &'static dyn Study) {
        REGISTRY
            .iter()
            .find(|(e, _, _)| *e == self)
            .expect("every experiment is in the registry (a test checks it)")
    }

    /// The experiment's name (its report folder).
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Whether the experiment reads MNIST.
    pub fn needs_mnist(self) -> bool {
        self.study().needs_mnist()
    }

    /// The experiment's [`Study`]: its file under [`crate::study::experiments`].
    pub fn study(self) -> &'static dyn Study {
        self.entry().2
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

    /// The figures of the experiment's report, drawn from its tables alone (those of
    /// [`Study::run`], or the same read back from the report's Parquet files), so that a
    /// report's page can be drawn again without running anything.
    ///
    /// # Errors
    ///
    /// A table or column missing from `tables` (a report of another version), named.
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>>;
}

/// A figure of a report: what to draw, and one sentence, with the numbers filled in
/// from the data, that says what to read from it.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The plot (its `name` is the SVG file's stem).
    pub plot: PlotSpec,
    /// What to read from it.
    pub caption: String,
}

/// How a series is drawn, beyond its place in the list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeriesStyle {
    /// The palette colour (default: the series' position), so that a series and its
    /// reference share a colour.
    pub colour: Option<usize>,
    /// A reference value (the paper's, a theorem's bound): hollow squares and a dashed
    /// line, told apart from what was measured.
    pub reference: bool,
    /// Markers alone, never joined (marks at single points, a scatter).
    pub points_only: bool,
    /// The marker (0 dot, 1 ring, 2 triangle, 3 cross; default: the series' position),
    /// so that a second grouping can show by shape.
    pub shape: Option<usize>,
}

impl SeriesStyle {
    /// A measured series in palette colour `c`.
    pub fn own(c: usize) -> Self {
        SeriesStyle {
            colour: Some(c),
            ..SeriesStyle::default()
        }
    }

    /// A reference series (the paper's, a bound) in palette colour `c`.
    pub fn reference(c: usize) -> Self {
        SeriesStyle {
            colour: Some(c),
            reference: true,
            ..SeriesStyle::default()
        }
    }

    /// The same with marker `shape`.
    pub fn shaped(mut self, shape: usize) -> Self {
        self.shape = Some(shape);
        self
    }

    /// The same, its markers not joined.
    pub fn points(mut self) -> Self {
        self.points_only = true;
        self
    }
}

/// A line of a plot: label and points.
pub type Series = (String, Vec<(f64, f64)>);

/// A labelled group of polylines of a plot (contours, ellipses).
pub type PathGroup = (String, Vec<Vec<(f64, f64)>>);

/// A plot request: file stem, title, axis labels, series.
#[derive(Clone, Debug, Default)]
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
    /// Per series (by position; missing: the default), how it is drawn.
    pub styles: Vec<SeriesStyle>,
}

impl PlotSpec {
    /// A plot called `name` with its title and axis labels, no series yet.
    pub fn new(name: &str, title: &str, x_label: &str, y_label: &str) -> Self {
        PlotSpec {
            name: name.into(),
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..PlotSpec::default()
        }
    }

    /// Adds a series with its error half-widths (if any) and style.
    pub fn series(
        mut self,
        label: &str,
        points: Vec<(f64, f64)>,
        errors: Option<Vec<f64>>,
        style: SeriesStyle,
    ) -> Self {
        self.series.push((label.into(), points));
        self.errors.resize(self.series.len() - 1, None);
        self.errors.push(errors);
        self.styles
            .resize(self.series.len() - 1, SeriesStyle::default());
        self.styles.push(style);
        self
    }
}

/// A heat map: one coloured cell per (column, row) with its value written in it.
#[derive(Clone, Debug, Default, PartialEq)]
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
    /// A quantity with a sign (a gain): a diverging scale, white at 0, symmetric about
    /// it (blue below, red above), instead of a sequential one.
    pub diverging: bool,
}

/// What an experiment produced.
#[derive(Clone, Debug)]
pub struct Reproduction {
    /// The experiment.
    pub experiment: Experiment,
    /// Tables to write as Parquet (the figures are drawn from them:
    /// [`Study::figures`]).
    pub tables: Vec<Table>,
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
    /// The memory and time each step (a data set, a training run, an estimate) may take.
    pub limits: crate::resources::Limits,
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
            .field("limits", &self.limits)
            .finish()
    }
}

impl ReproduceOptions {
    /// The executor of this run's jobs: its observer and journal.
    pub fn executor(&self) -> crate::execute::Executor<'_> {
        crate::execute::Executor::new(self.observer.as_deref(), self.journal.as_deref())
    }
}

/// A group of rows as [`mean_se_by`] gives it: its label, its points (x, mean y) and
/// the standard errors of those means.
pub(crate) type Group = (String, Vec<(f64, f64)>, Vec<f64>);

/// The y values of the rows at one x.
type Cell = (f64, Vec<f64>);

/// Rows grouped by `label` (in order of first appearance) and, within a group, by x
/// (ascending): for each group its points (x, mean of y) and the standard errors of
/// those means over the group's rows (seeds, say; 0 for a single row). Rows whose y is
/// not finite are left out.
pub(crate) fn mean_se_by(labels: &[String], x: &[f64], y: &[f64]) -> Vec<Group> {
    let mut groups: Vec<(String, Vec<Cell>)> = Vec::new();
    for i in (0..labels.len()).filter(|&i| y[i].is_finite()) {
        let g = match groups.iter().position(|(l, _)| *l == labels[i]) {
            Some(g) => g,
            None => {
                groups.push((labels[i].clone(), Vec::new()));
                groups.len() - 1
            }
        };
        match groups[g].1.iter_mut().find(|(v, _)| *v == x[i]) {
            Some((_, ys)) => ys.push(y[i]),
            None => groups[g].1.push((x[i], vec![y[i]])),
        }
    }
    groups
        .into_iter()
        .map(|(label, mut cells)| {
            cells.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (points, ses) = cells
                .iter()
                .map(|(x, ys)| {
                    let (m, sd) = mean_sd(ys);
                    ((*x, m), sd / (ys.len() as f64).sqrt())
                })
                .unzip();
            (label, points, ses)
        })
        .collect()
}

/// A plot of y against x with one series per label, each point the mean ± SE of its
/// rows ([`mean_se_by`]), the series offset along x by `dodge` × their rank about the
/// middle so that none hides another; with the groups it drew.
pub(crate) fn grouped_plot(
    mut plot: PlotSpec,
    labels: &[String],
    x: &[f64],
    y: &[f64],
    dodge: f64,
) -> (PlotSpec, Vec<Group>) {
    let groups = mean_se_by(labels, x, y);
    let mid = (groups.len() as f64 - 1.0) / 2.0;
    plot.lines = true;
    for (i, (label, pts, se)) in groups.iter().enumerate() {
        let pts = pts
            .iter()
            .map(|&(x, y)| (x + dodge * (i as f64 - mid), y))
            .collect();
        plot = plot.series(label, pts, Some(se.clone()), SeriesStyle::own(i));
    }
    (plot, groups)
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
    pub fn of(
        dir: &std::path::Path,
        limit: Option<usize>,
        limits: &crate::resources::Limits,
    ) -> Result<Self> {
        use crate::data::{MnistSplit, load_mnist};
        Ok(MnistUsed {
            n_train: load_mnist(dir, MnistSplit::Train, limit, limits)?.len(),
            n_test: load_mnist(dir, MnistSplit::Test, limit, limits)?.len(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry holds each experiment once, by a name of its own that parses back
    /// to it, with the study that says it is that experiment.
    #[test]
    fn the_registry_names_each_experiment_once() {
        for (i, e) in Experiment::ALL.into_iter().enumerate() {
            assert!(!Experiment::ALL[..i].contains(&e), "{e:?} twice");
            assert_eq!(Experiment::parse(e.name()).unwrap(), e);
            assert_eq!(e.study().experiment(), e);
            assert_eq!(e.to_string(), e.name());
        }
        // Every variant is registered: a new variant fails to compile here until it is
        // listed, and fails this test until it is in the registry.
        use Experiment::*;
        for e in [
            ModeInterpolation,
            TractableBnn,
            Mnist,
            ModeProximity,
            EstimatorCost,
            MnistObjectives,
            TractableSweep,
            SymmetryRegime,
        ] {
            match e {
                ModeInterpolation | TractableBnn | Mnist | ModeProximity | EstimatorCost
                | MnistObjectives | TractableSweep | SymmetryRegime => {
                    assert!(Experiment::ALL.contains(&e), "{e:?} is not in the registry")
                }
            }
        }
        let e = Experiment::parse("mnst").unwrap_err().to_string();
        assert!(
            e.contains("mode-interpolation") && e.contains("symmetry-regime"),
            "{e}"
        );
    }
}
