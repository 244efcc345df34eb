//! SVG plots of a study (plotters, SVG backend, no system fonts).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::study::experiment::{PathGroup, Series};
use crate::study::grid::{BiasVarianceRow, BoundRow};
use crate::study::reproduce::PlotSpec;

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    // plotters' errors borrow the backend; their message is what they carry.
    Error::Plot {
        path: path.to_path_buf(),
        source: e.to_string().into(),
    }
}

/// One line: label, colour, points, optional error bars.
struct Line {
    label: String,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
    errors: Option<Vec<f64>>,
}

/// The largest magnitude a plot draws. Beyond it (and for NaN and ±∞) a value is left
/// out and counted in the title: plotters' tick search does not end on a range that is not
/// finite, and a value of 1e15 nats is already a failed estimate, not a point to read.
pub const LARGEST_DRAWN: f64 = 1e15;

/// Whether a plot can draw `v` (see [`LARGEST_DRAWN`]).
pub fn drawable(v: f64) -> bool {
    v.is_finite() && v.abs() <= LARGEST_DRAWN
}

/// `title` with the number of points left out, if any.
fn titled(title: &str, left_out: usize) -> String {
    match left_out {
        0 => title.to_string(),
        1 => format!("{title} (1 value not drawn: not finite or beyond ±1e15)"),
        n => format!("{title} ({n} values not drawn: not finite or beyond ±1e15)"),
    }
}

/// The lines' points that can be drawn, with their error half-widths (an error bar that
/// cannot be drawn is dropped, its point kept), and the number of points left out.
fn drawable_lines(lines: &[Line]) -> (Vec<Line>, usize) {
    let mut left_out = 0;
    let kept = lines
        .iter()
        .map(|l| {
            let mut points = Vec::new();
            let mut errors = Vec::new();
            for (i, &(x, y)) in l.points.iter().enumerate() {
                if !(drawable(x) && x > 0.0 && drawable(y)) {
                    left_out += 1;
                    continue;
                }
                points.push((x, y));
                let e = l
                    .errors
                    .as_ref()
                    .and_then(|e| e.get(i))
                    .copied()
                    .unwrap_or(0.0);
                errors.push(if drawable(y - e) && drawable(y + e) {
                    e.abs()
                } else {
                    0.0
                });
            }
            Line {
                label: l.label.clone(),
                colour: l.colour,
                errors: l.errors.as_ref().map(|_| errors),
                points,
            }
        })
        .collect();
    (kept, left_out)
}

fn line_chart(path: &Path, title: &str, y_label: &str, lines: &[Line]) -> Result<()> {
    let (lines, left_out) = drawable_lines(lines);
    let title = titled(title, left_out);
    let pts: Vec<(f64, f64)> = lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .collect();
    if pts.is_empty() {
        return Ok(());
    }
    let x_max = pts.iter().map(|p| p.0).fold(1.0, f64::max).max(2.0);
    let (mut y_min, mut y_max) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    for l in &lines {
        if let Some(e) = &l.errors {
            for (p, e) in l.points.iter().zip(e) {
                y_min = y_min.min(p.1 - e);
                y_max = y_max.max(p.1 + e);
            }
        }
    }
    // A pad the axis can resolve: relative to the values' size when they are all equal.
    let pad = ((y_max - y_min) * 0.08).max(1e-6 * y_max.abs().max(y_min.abs()).max(1.0));
    let dense: Vec<(String, Vec<(f64, f64)>)> = lines
        .iter()
        .map(|l| (l.label.clone(), densify(&l.points)))
        .collect();
    let corner = legend_corner(
        &dense,
        (1.0, x_max * 1.2, y_min - pad, y_max + pad),
        true,
        false,
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(
                (1f64..x_max * 1.2).log_scale(),
                (y_min - pad)..(y_max + pad),
            )
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(215, 215, 215))
            .x_desc("K (log scale)")
            .y_desc(y_label)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        for l in &lines {
            let colour = l.colour;
            chart
                .draw_series(LineSeries::new(l.points.clone(), colour.stroke_width(2)))
                .map_err(|e| plot_err(path, e))?
                .label(l.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            if let Some(errs) = &l.errors {
                chart
                    .draw_series(l.points.iter().zip(errs).map(|(&(x, y), &e)| {
                        ErrorBar::new_vertical(x, y - e, y, y + e, colour.filled(), 6)
                    }))
                    .map_err(|e| plot_err(path, e))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(corner)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    write_atomic(path, svg.as_bytes(), true)
}

/// The points of a polyline with 8 steps inserted per segment (geometric in x), so that
/// [`legend_corner`] sees the lines and not only their vertices.
fn densify(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        for t in 0..8 {
            let f = t as f64 / 8.0;
            let x = if x0 > 0.0 && x1 > 0.0 {
                (x0.ln() + f * (x1.ln() - x0.ln())).exp()
            } else {
                x0 + f * (x1 - x0)
            };
            out.push((x, y0 + f * (y1 - y0)));
        }
    }
    out.extend(points.last().copied());
    out
}

/// Writes three plots per posterior: `<id>-estimates.svg` (Î^K ± SE against K with the
/// exact I and ln K), `<id>-bias-sd.svg` (bias and standard deviation against K),
/// `<id>-bounds.svg` (L/N and (L + Î^K)/N against K, with the exact L^G/N).
///
/// # Errors
///
/// [`Error::Io`] naming a file that cannot be written.
pub fn write_plots(out: &Path, bv: &[BiasVarianceRow], bd: &[BoundRow]) -> Result<Vec<PathBuf>> {
    let mut ids: Vec<&str> = bv.iter().map(|r| r.posterior_id.as_str()).collect();
    ids.dedup();
    let mut files = Vec::new();
    // One series per estimator with a K (I^K, the sandwich's two bounds, …), each in its
    // own colour, in the order the rows come.
    fn by_estimator<'a, T>(rows: &[&'a T], name: impl Fn(&T) -> &str) -> Vec<(String, Vec<&'a T>)> {
        let mut out: Vec<(String, Vec<&T>)> = Vec::new();
        for &r in rows {
            match out.iter_mut().find(|(e, _)| e == name(r)) {
                Some((_, v)) => v.push(r),
                None => out.push((name(r).to_string(), vec![r])),
            }
        }
        out
    }
    let label = |e: &str| match e {
        "infonce" => "I^K".to_string(),
        "sandwich-lower" => "sandwich lower bound".to_string(),
        "sandwich-upper" => "sandwich upper bound".to_string(),
        other => other.to_string(),
    };
    let colour = |i: usize| PALETTE[[0, 4, 3, 2, 5][i % 5]];
    let k_of = |k: Option<u64>| k.unwrap_or(1) as f64;
    for id in ids {
        let ik: Vec<&BiasVarianceRow> = bv
            .iter()
            .filter(|r| r.posterior_id == id && r.k.is_some())
            .collect();
        if ik.is_empty() {
            continue;
        }
        let groups = by_estimator(&ik, |r| r.estimator.as_str());
        let mut ks: Vec<f64> = ik.iter().map(|r| k_of(r.k)).collect();
        ks.sort_by(f64::total_cmp);
        ks.dedup();
        let span = |v: f64| ks.iter().map(|&k| (k, v)).collect::<Vec<_>>();
        let exact = bv.iter().find(|r| r.posterior_id == id && r.k.is_none());
        let mut lines: Vec<Line> = groups
            .iter()
            .enumerate()
            .map(|(i, (e, rows))| Line {
                label: format!("{} (mean ± SE)", label(e)),
                colour: colour(i),
                points: rows.iter().map(|r| (k_of(r.k), r.mean_nats)).collect(),
                errors: Some(
                    rows.iter()
                        .map(|r| r.mean_std_err_nats.unwrap_or(0.0) / (r.n_repeats as f64).sqrt())
                        .collect(),
                ),
            })
            .collect();
        lines.push(Line {
            label: "ln K".into(),
            colour: RGBColor(150, 150, 150),
            points: ks.iter().map(|&k| (k, k.ln())).collect(),
            errors: None,
        });
        if let Some(e) = exact {
            lines.push(Line {
                label: format!("exact I ({})", e.estimator),
                colour: RED,
                points: span(e.mean_nats),
                errors: None,
            });
        }
        let p = out.join(format!("{id}-estimates.svg"));
        line_chart(&p, &format!("{id}: I(g; w) estimates"), "nats", &lines)?;
        files.push(p);

        let mut lines = Vec::new();
        for (i, (e, rows)) in groups.iter().enumerate() {
            let sd: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|r| r.variance_nats2.map(|v| (k_of(r.k), v.sqrt())))
                .collect();
            if !sd.is_empty() {
                let c = colour(i);
                let light = |v: u8| ((v as u16 + 255) / 2) as u8;
                lines.push(Line {
                    label: format!("{}: sd over repeats (light)", label(e)),
                    colour: RGBColor(light(c.0), light(c.1), light(c.2)),
                    points: sd,
                    errors: None,
                });
            }
            let bias: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|r| r.bias_nats.map(|b| (k_of(r.k), b)))
                .collect();
            if !bias.is_empty() {
                let kind = rows[0].reference_kind.clone().unwrap_or_default();
                lines.push(Line {
                    label: format!("{}: bias vs {kind}", label(e)),
                    colour: colour(i),
                    points: bias,
                    errors: None,
                });
            }
        }
        lines.push(Line {
            label: "zero".into(),
            colour: RGBColor(150, 150, 150),
            points: span(0.0),
            errors: None,
        });
        let p = out.join(format!("{id}-bias-sd.svg"));
        line_chart(
            &p,
            &format!("{id}: bias and spread per estimator"),
            "nats",
            &lines,
        )?;
        files.push(p);

        let rows: Vec<&BoundRow> = bd
            .iter()
            .filter(|r| r.posterior_id == id && r.k.is_some())
            .collect();
        if rows.iter().all(|r| r.elbo_per_point.is_some()) && !rows.is_empty() {
            let elbo = rows[0].elbo_per_point.unwrap_or(0.0);
            let mut lines = vec![Line {
                label: "L / N".into(),
                colour: BLACK,
                points: span(elbo),
                errors: None,
            }];
            for (i, (e, rows)) in by_estimator(&rows, |r| r.estimator.as_str())
                .iter()
                .enumerate()
            {
                lines.push(Line {
                    label: format!("(L + {}) / N", label(e)),
                    colour: colour(i),
                    points: rows
                        .iter()
                        .map(|r| (k_of(r.k), r.elbo_sym_per_point.unwrap_or(0.0)))
                        .collect(),
                    errors: Some(
                        rows.iter()
                            .map(|r| r.elbo_sym_per_point_std_err.unwrap_or(0.0))
                            .collect(),
                    ),
                });
            }
            if let Some(e) = bd
                .iter()
                .find(|r| r.posterior_id == id && r.k.is_none())
                .and_then(|r| r.elbo_sym_per_point)
            {
                lines.push(Line {
                    label: "exact L^G / N".into(),
                    colour: RED,
                    points: span(e),
                    errors: None,
                });
            }
            let p = out.join(format!("{id}-bounds.svg"));
            line_chart(
                &p,
                &format!("{id}: ELBO and symmetrized bound per data point"),
                "nats / data point",
                &lines,
            )?;
            files.push(p);
        }
    }
    Ok(files)
}

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(90, 90, 90),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
];

/// A scatter/line plot of a [`PlotSpec`]: every series as points, joined by lines when
/// the spec asks for lines and the series' x values are sorted.
///
/// # Errors
///
/// [`Error::Io`] naming a file that cannot be written.
pub fn xy_plot(path: &Path, spec: &PlotSpec) -> Result<()> {
    if let Some(h) = &spec.heat {
        return heat_map(path, spec, h);
    }
    // A log axis shows only positive values; nothing shows a value that is not drawable.
    let keep = |p: &(f64, f64)| {
        drawable(p.0) && drawable(p.1) && (!spec.log_x || p.0 > 0.0) && (!spec.log_y || p.1 > 0.0)
    };
    let left_out = spec
        .series
        .iter()
        .flat_map(|(_, pts)| pts)
        .filter(|p| !(drawable(p.0) && drawable(p.1)))
        .count();
    // Each series' kept points with their error half-widths (0 without error bars).
    let kept: Vec<Vec<((f64, f64), f64)>> = spec
        .series
        .iter()
        .enumerate()
        .map(|(i, (_, pts))| {
            let errs = spec.errors.get(i).and_then(|e| e.as_ref());
            pts.iter()
                .enumerate()
                .map(|(k, &p)| {
                    let e = errs.and_then(|e| e.get(k)).copied().unwrap_or(0.0);
                    (
                        p,
                        if drawable(p.1 - e) && drawable(p.1 + e) {
                            e.abs()
                        } else {
                            0.0
                        },
                    )
                })
                .filter(|(p, _)| keep(p))
                .collect()
        })
        .collect();
    let series: Vec<(String, Vec<(f64, f64)>)> = spec
        .series
        .iter()
        .zip(&kept)
        .map(|((l, _), k)| (l.clone(), k.iter().map(|(p, _)| *p).collect()))
        .collect();
    let errors: Vec<Vec<f64>> = kept
        .iter()
        .map(|k| k.iter().map(|(_, e)| *e).collect())
        .collect();
    let paths: Vec<PathGroup> = spec
        .paths
        .iter()
        .map(|(l, lines)| {
            (
                l.clone(),
                lines
                    .iter()
                    .map(|line| line.iter().copied().filter(keep).collect())
                    .collect(),
            )
        })
        .collect();
    let mut pts: Vec<(f64, f64)> = kept
        .iter()
        .flatten()
        .flat_map(|&((x, y), e)| [(x, y - e), (x, y + e)])
        .filter(keep)
        .collect();
    pts.extend(paths.iter().flat_map(|(_, l)| l.iter().flatten().copied()));
    if pts.is_empty() {
        return Ok(());
    }
    let range = |v: &mut dyn Iterator<Item = f64>, log: bool| {
        let (lo, hi) = v.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        if log {
            (lo / 1.3, hi * 1.3)
        } else {
            // A single value (one width, say) gets a window of ±5 % around it.
            let pad = if hi - lo > 1e-9 * hi.abs().max(lo.abs()) {
                (hi - lo) * 0.06
            } else {
                (0.05 * hi.abs().max(lo.abs())).max(1e-9)
            };
            (lo - pad, hi + pad)
        }
    };
    let titled_spec;
    let spec = if left_out > 0 {
        titled_spec = PlotSpec {
            title: titled(&spec.title, left_out),
            ..spec.clone()
        };
        &titled_spec
    } else {
        spec
    };
    let (x0, x1) = range(&mut pts.iter().map(|p| p.0), spec.log_x);
    let (y0, y1) = range(&mut pts.iter().map(|p| p.1), spec.log_y);
    let b = (x0, x1, y0, y1);
    let svg = match (spec.log_x, spec.log_y) {
        (false, false) => xy_svg(path, spec, (&series, &errors, &paths), b, x0..x1, y0..y1),
        (true, false) => xy_svg(
            path,
            spec,
            (&series, &errors, &paths),
            b,
            (x0..x1).log_scale(),
            y0..y1,
        ),
        (false, true) => xy_svg(
            path,
            spec,
            (&series, &errors, &paths),
            b,
            x0..x1,
            (y0..y1).log_scale(),
        ),
        (true, true) => xy_svg(
            path,
            spec,
            (&series, &errors, &paths),
            b,
            (x0..x1).log_scale(),
            (y0..y1).log_scale(),
        ),
    }?;
    write_atomic(path, svg.as_bytes(), true)
}

/// The SVG of an [`xy_plot`] on the given axes (linear or log).
fn xy_svg<X, Y>(
    path: &Path,
    spec: &PlotSpec,
    (series, errors, paths): (&[Series], &[Vec<f64>], &[PathGroup]),
    bounds: (f64, f64, f64, f64),
    x: X,
    y: Y,
) -> Result<String>
where
    X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let axis = |label: &str, log: bool| {
        if log {
            format!("{label} (log scale)")
        } else {
            label.to_string()
        }
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&spec.title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(x, y)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(215, 215, 215))
            .x_desc(axis(&spec.x_label, spec.log_x))
            .y_desc(axis(&spec.y_label, spec.log_y))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(|e| plot_err(path, e))?;
        // Paths first (contours, ellipses), under the points; one colour per group, after
        // the series' colours.
        for (g, (label, lines)) in paths.iter().enumerate() {
            let colour = PALETTE[(series.len() + g) % PALETTE.len()];
            let mut first = true;
            for line in lines.iter().filter(|l| l.len() > 1) {
                let drawn = chart
                    .draw_series(LineSeries::new(line.clone(), colour.stroke_width(1)))
                    .map_err(|e| plot_err(path, e))?;
                if std::mem::take(&mut first) {
                    drawn.label(label.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                    });
                }
            }
        }
        for (i, (label, points)) in series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            if let Some(errs) = errors.get(i).filter(|e| e.iter().any(|&e| e > 0.0)) {
                chart
                    .draw_series(points.iter().zip(errs).map(|(&(x, y), &e)| {
                        ErrorBar::new_vertical(x, y - e, y, y + e, colour.filled(), 6)
                    }))
                    .map_err(|e| plot_err(path, e))?;
            }
            let sorted = points.windows(2).all(|w| w[0].0 <= w[1].0);
            if spec.lines && sorted && points.len() > 1 {
                chart
                    .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                    .map_err(|e| plot_err(path, e))?;
            }
            // One marker shape per series, so that series lying on each other (a sandwich
            // whose bounds meet) stay visible: a filled dot, a ring around it, a triangle,
            // a cross.
            let shape = i % 4;
            let drawn = match shape {
                0 => chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled()))),
                1 => chart.draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, 6, colour.stroke_width(2))),
                ),
                2 => chart.draw_series(
                    points
                        .iter()
                        .map(|&p| TriangleMarker::new(p, 5, colour.filled())),
                ),
                _ => chart.draw_series(
                    points
                        .iter()
                        .map(|&p| Cross::new(p, 5, colour.stroke_width(2))),
                ),
            }
            .map_err(|e| plot_err(path, e))?;
            drawn.label(label.clone()).legend(move |(x, y)| {
                let at = (x + 8, y);
                match shape {
                    0 => Circle::new(at, 4, colour.filled()).into_dyn(),
                    1 => Circle::new(at, 5, colour.stroke_width(2)).into_dyn(),
                    2 => TriangleMarker::new(at, 5, colour.filled()).into_dyn(),
                    _ => Cross::new(at, 5, colour.stroke_width(2)).into_dyn(),
                }
            });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(legend_corner(
                &series
                    .iter()
                    .map(|(l, pts)| {
                        let joined = spec.lines && pts.windows(2).all(|w| w[0].0 <= w[1].0);
                        (l.clone(), if joined { densify(pts) } else { pts.clone() })
                    })
                    .chain(paths.iter().map(|(l, lines)| (l.clone(), lines.concat())))
                    .collect::<Vec<_>>(),
                bounds,
                spec.log_x,
                spec.log_y,
            ))
            .draw()
            .map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    Ok(svg)
}

/// A heat-map cell's number: three decimals, or two significant digits in scientific
/// notation below 0.01 (a gain of 5e-5 nats must not print as 0.000).
fn cell_number(v: f64) -> String {
    if v == 0.0 || v.abs() >= 0.01 || !v.is_finite() {
        format!("{v:.3}")
    } else {
        format!("{v:.1e}")
    }
}

/// A tick label: plain for values of ordinary size, `1e-7` style for tiny and huge ones
/// (the default printed `1.0000000000000001e-7` across the axis title).
fn tick(v: &f64) -> String {
    let a = v.abs();
    // A tick at zero computed as ±1e-17 is zero.
    if a < 1e-12 {
        return "0".into();
    }
    if (1e-3..1e5).contains(&a) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// The corner (or middle of a side) of the plot with the fewest data points in it, for
/// the legend, so that it
/// does not cover data. `bounds` are the axes' (x0, x1, y0, y1).
fn legend_corner(
    series: &[(String, Vec<(f64, f64)>)],
    bounds: (f64, f64, f64, f64),
    log_x: bool,
    log_y: bool,
) -> SeriesLabelPosition {
    let unit = |v: f64, lo: f64, hi: f64, log: bool| {
        if log {
            (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (v - lo) / (hi - lo)
        }
    };
    let (x0, x1, y0, y1) = bounds;
    // Vertical bands: 2 upper, 1 middle, 0 lower.
    let count = |right: bool, band: u8| {
        series
            .iter()
            .flat_map(|s| s.1.iter())
            .filter(|&&(x, y)| {
                let (u, w) = (unit(x, x0, x1, log_x), unit(y, y0, y1, log_y));
                let across = if right { u > 0.6 } else { u < 0.4 };
                let up = match band {
                    2 => w > 0.65,
                    1 => (0.3..0.7).contains(&w),
                    _ => w < 0.35,
                };
                across && up
            })
            .count()
    };
    [
        (SeriesLabelPosition::UpperRight, true, 2),
        (SeriesLabelPosition::UpperLeft, false, 2),
        (SeriesLabelPosition::LowerRight, true, 0),
        (SeriesLabelPosition::LowerLeft, false, 0),
        (SeriesLabelPosition::MiddleRight, true, 1),
        (SeriesLabelPosition::MiddleLeft, false, 1),
    ]
    .into_iter()
    .min_by_key(|&(_, r, b)| count(r, b))
    .map(|(p, _, _)| p)
    .expect("six places")
}

/// A colour on a blue–yellow scale (viridis-like) for `t` in [0, 1].
fn scale_colour(t: f64) -> RGBColor {
    const STOPS: [(f64, (f64, f64, f64)); 5] = [
        (0.0, (68.0, 1.0, 84.0)),
        (0.25, (59.0, 82.0, 139.0)),
        (0.5, (33.0, 145.0, 140.0)),
        (0.75, (94.0, 201.0, 98.0)),
        (1.0, (253.0, 231.0, 37.0)),
    ];
    let t = t.clamp(0.0, 1.0);
    let k = STOPS.iter().position(|s| s.0 >= t).unwrap_or(4).max(1);
    let ((t0, a), (t1, b)) = (STOPS[k - 1], STOPS[k]);
    let f = (t - t0) / (t1 - t0);
    let mix = |x: f64, y: f64| (x + f * (y - x)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A [`HeatMap`](crate::study::experiment::HeatMap): cells coloured on one scale
/// (its range in the caption), each with its value written in it.
fn heat_map(path: &Path, spec: &PlotSpec, h: &crate::study::experiment::HeatMap) -> Result<()> {
    let (nx, ny) = (h.columns.len(), h.rows.len());
    let vals: Vec<f64> = h
        .values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|&v| drawable(v))
        .collect();
    let (lo, hi) = h.range.unwrap_or_else(|| {
        vals.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            })
    });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let caption = if vals.is_empty() {
            spec.title.clone()
        } else {
            format!(
                "{} (colour: {} from {} to {})",
                spec.title,
                h.value_label,
                tick(&lo),
                tick(&hi)
            )
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..nx.max(1) as f64, 0f64..ny.max(1) as f64)
            .map_err(|e| plot_err(path, e))?;
        let label = |labels: &[String], v: f64| {
            let i = (v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(2 * nx + 1)
            .y_labels(2 * ny + 1)
            .x_label_formatter(&|v| label(&h.columns, *v))
            .y_label_formatter(&|v| label(&h.rows, *v))
            .x_desc(spec.x_label.clone())
            .y_desc(spec.y_label.clone())
            .draw()
            .map_err(|e| plot_err(path, e))?;
        for (r, row) in h.values.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let (x, y) = (c as f64, r as f64);
                let fill = match v {
                    Some(v) if v.is_finite() => scale_colour((v - lo) / span),
                    _ => RGBColor(220, 220, 220),
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        fill.filled(),
                    )))
                    .map_err(|e| plot_err(path, e))?;
                let t = v.map_or(1.0, |v| (v - lo) / span);
                let ink = if t > 0.6 { BLACK } else { WHITE };
                let spread = h
                    .spread
                    .get(r)
                    .and_then(|row| row.get(c))
                    .copied()
                    .flatten();
                let lines = match (v, spread) {
                    (Some(v), Some(s)) => vec![cell_number(*v), format!("± {}", cell_number(s))],
                    (Some(v), None) => vec![cell_number(*v)],
                    (None, _) => vec!["not run".to_string()],
                };
                let step = 0.16;
                let top = y + 0.5 + step * (lines.len() - 1) as f64 / 2.0;
                for (i, line) in lines.into_iter().enumerate() {
                    let style = ("sans-serif", 13)
                        .into_font()
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    chart
                        .draw_series(std::iter::once(Text::new(
                            line,
                            (x + 0.5, top - step * i as f64),
                            style,
                        )))
                        .map_err(|e| plot_err(path, e))?;
                }
            }
        }
        root.present().map_err(|e| plot_err(path, e))?;
    }
    write_atomic(path, svg.as_bytes(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values a plot cannot draw (NaN, ±∞, beyond ±1e15) are left out and counted in the
    /// title; the plot is drawn from the rest and the call returns (plotters' tick search
    /// never ended on such a range: issue 27). Error bars that cannot be drawn are dropped.
    #[test]
    fn values_that_cannot_be_drawn_are_left_out_and_counted() {
        let dir = std::env::temp_dir().join(format!("mi-est-plots-nf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = |points: Vec<(f64, f64)>, errors: Option<Vec<f64>>| Line {
            label: "l".into(),
            colour: BLACK,
            points,
            errors,
        };
        let path = dir.join("line.svg");
        line_chart(
            &path,
            "estimates",
            "nats",
            &[
                line(
                    vec![
                        (2.0, 0.5),
                        (4.0, f64::NAN),
                        (8.0, f64::INFINITY),
                        (16.0, 1e300),
                    ],
                    Some(vec![0.1, 0.1, 0.1, 0.1]),
                ),
                line(
                    vec![(2.0, 0.6), (4.0, 0.7)],
                    Some(vec![f64::INFINITY, 1e300]),
                ),
            ],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.contains("(3 values not drawn: not finite or beyond ±1e15)"),
            "{svg}"
        );
        // Nothing drawable at all: no file, no loop.
        let none = dir.join("none.svg");
        line_chart(&none, "t", "y", &[line(vec![(2.0, f64::NAN)], None)]).unwrap();
        assert!(!none.exists());
        // Equal huge values: a window the axis can resolve.
        line_chart(
            &dir.join("flat.svg"),
            "t",
            "y",
            &[line(vec![(2.0, 1e14), (4.0, 1e14)], None)],
        )
        .unwrap();
        let spec = PlotSpec {
            heat: None,
            errors: vec![Some(vec![0.1, f64::NAN, 0.1])],
            paths: Vec::new(),
            name: "xy".into(),
            title: "xy".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: false,
            log_y: false,
            lines: true,
            series: vec![(
                "a".into(),
                vec![(1.0, 1.0), (2.0, f64::NEG_INFINITY), (3.0, 2.0)],
            )],
        };
        xy_plot(&dir.join("xy.svg"), &spec).unwrap();
        let svg = std::fs::read_to_string(dir.join("xy.svg")).unwrap();
        assert!(svg.contains("(1 value not drawn"), "{svg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Log axes: labelled so, points they cannot show (≤ 0) left out, every
    /// combination drawn; a plot with nothing to show writes no file.
    #[test]
    fn log_axes_are_labelled_and_drop_what_they_cannot_show() {
        let dir = std::env::temp_dir().join(format!("mi-est-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (log_x, log_y) in [(false, false), (true, false), (false, true), (true, true)] {
            let spec = PlotSpec {
                heat: None,
                errors: Vec::new(),
                paths: Vec::new(),
                name: "p".into(),
                title: "t".into(),
                x_label: "K".into(),
                y_label: "RMSE".into(),
                log_x,
                log_y,
                lines: true,
                series: vec![
                    ("a".into(), vec![(1.0, 50.0), (16.0, 5.0), (4096.0, 0.5)]),
                    ("b".into(), vec![(0.0, 0.1), (2.0, 0.0), (4.0, 0.05)]),
                ],
            };
            let path = dir.join(format!("p-{log_x}-{log_y}.svg"));
            xy_plot(&path, &spec).unwrap();
            let svg = std::fs::read_to_string(&path).unwrap();
            assert_eq!(svg.contains("K (log scale)"), log_x);
            assert_eq!(svg.contains("RMSE (log scale)"), log_y);
            // Circles drawn: 6 points, less those at x = 0 (log x) or y = 0 (log y).
            let dropped = usize::from(log_x) + usize::from(log_y);
            assert_eq!(
                svg.matches("<circle").count(),
                6 - dropped + 2,
                "{log_x} {log_y}"
            );
        }
        let empty = PlotSpec {
            heat: None,
            errors: Vec::new(),
            paths: Vec::new(),
            name: "e".into(),
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: false,
            log_y: true,
            lines: false,
            series: vec![("a".into(), vec![(1.0, 0.0), (2.0, -1.0)])],
        };
        xy_plot(&dir.join("e.svg"), &empty).unwrap();
        assert!(!dir.join("e.svg").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A heat map prints each cell's value with its spread, small values in scientific
    /// notation, and a cell without a value as "not run"; series markers differ.
    #[test]
    fn heat_maps_print_values_spreads_and_gaps() {
        for (v, want) in [
            (0.0491, "0.049"),
            (-0.2341, "-0.234"),
            (5.13e-5, "5.1e-5"),
            (-2.6e-3, "-2.6e-3"),
            (0.0, "0.000"),
        ] {
            assert_eq!(cell_number(v), want);
        }
        let dir = std::env::temp_dir().join(format!("mi-est-heat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = PlotSpec {
            heat: Some(crate::study::experiment::HeatMap {
                columns: vec!["500".into(), "60000".into()],
                rows: vec!["5".into()],
                values: vec![vec![Some(5.13e-5), None]],
                spread: vec![vec![Some(0.0123), None]],
                value_label: "gain".into(),
                range: Some((-1e-4, 1e-4)),
            }),
            errors: Vec::new(),
            paths: Vec::new(),
            name: "h".into(),
            title: "t".into(),
            x_label: "N".into(),
            y_label: "width".into(),
            log_x: false,
            log_y: false,
            lines: false,
            series: Vec::new(),
        };
        let path = dir.join("h.svg");
        xy_plot(&path, &spec).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["5.1e-5", "± 0.012", "not run", "60000"] {
            assert!(svg.contains(text), "{text} missing");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ticks_read_plainly_and_the_legend_avoids_the_data() {
        for (v, want) in [
            (1e-7, "1e-7"),
            (0.1, "0.1"),
            (10.0, "10"),
            (1000.0, "1000"),
            (2.5, "2.5"),
            (0.0, "0"),
            (3e5, "3e5"),
        ] {
            assert_eq!(tick(&v), want);
        }
        // Points in the upper right and lower left: the legend goes to another corner.
        let series = vec![("a".to_string(), vec![(9.0, 9.0), (1.0, 1.0)])];
        let corner = legend_corner(&series, (0.0, 10.0, 0.0, 10.0), false, false);
        assert!(
            matches!(corner, SeriesLabelPosition::UpperLeft),
            "{corner:?}"
        );
        // On log axes the same test runs in log units.
        let series = vec![("a".to_string(), vec![(1000.0, 50.0), (4.0, 1e-12)])];
        let corner = legend_corner(&series, (3.0, 5000.0, 1e-13, 100.0), true, true);
        assert!(
            matches!(corner, SeriesLabelPosition::UpperLeft),
            "{corner:?}"
        );
    }
}
