//! What a report's figures are, apart from drawing them: a plot request ([`PlotSpec`],
//! series with their styles, heat maps) with its caption ([`Figure`]), and the helpers
//! the experiments' figures share (means ± SE by group, contours, ellipses).

use crate::study::experiment::mean_sd;

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

/// The smallest and the largest of `values` ((∞, −∞) for none).
pub(crate) fn extent(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    values
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        })
}

/// Where series `i` of `n` sits along x, offset by `step` per rank about the middle, so
/// that series at the same x do not hide each other.
pub(crate) fn dodge(x: f64, i: usize, n: usize, step: f64) -> f64 {
    x + step * (i as f64 - (n as f64 - 1.0) / 2.0)
}

/// A plot of y against x with one series per label, each point the mean ± SE of its
/// rows ([`mean_se_by`]), the series offset along x by `step` ([`dodge`]) so that none
/// hides another; with the groups it drew.
pub(crate) fn grouped_plot(
    mut plot: PlotSpec,
    labels: &[String],
    x: &[f64],
    y: &[f64],
    step: f64,
) -> (PlotSpec, Vec<Group>) {
    let groups = mean_se_by(labels, x, y);
    let n = groups.len();
    plot.lines = true;
    for (i, (label, pts, se)) in groups.iter().enumerate() {
        let pts = pts
            .iter()
            .map(|&(x, y)| (dodge(x, i, n, step), y))
            .collect();
        plot = plot.series(label, pts, Some(se.clone()), SeriesStyle::own(i));
    }
    (plot, groups)
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
