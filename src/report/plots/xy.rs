//! Scatter and line plots of a study's [`PlotSpec`], on linear or log axes.

use super::*;

/// A scatter/line plot of a [`PlotSpec`]: every series as points, joined by lines when
/// the spec asks for lines and the series' x values are sorted.
///
/// Returns whether it wrote the file (a plot with no value it can draw writes none).
///
/// # Errors
///
/// [`Error::Io`] naming a file that cannot be written.
pub fn xy_plot(path: &Path, spec: &PlotSpec) -> Result<bool> {
    if let Some(h) = &spec.heat {
        heat_map(path, spec, h)?;
        return Ok(true);
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
    // A value a log axis cannot show (0, say: an exact estimator's RMSE) is said in its
    // series' legend entry, not dropped unsaid.
    let series: Vec<(String, Vec<(f64, f64)>)> = spec
        .series
        .iter()
        .zip(&kept)
        .map(|((l, pts), k)| {
            let zeros = pts
                .iter()
                .filter(|p| drawable(p.0) && drawable(p.1) && !keep(p))
                .count();
            let label = match zeros {
                0 => l.clone(),
                n if n == pts.len() => format!("{l}: all {n} values ≤ 0, off the log axis"),
                n => format!("{l} ({n} values ≤ 0 not on the log axis)"),
            };
            (label, k.iter().map(|(p, _)| *p).collect())
        })
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
        return Ok(false);
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
    let svg = match (spec.log_x, spec.log_y) {
        (false, false) => xy_svg(path, spec, (&series, &errors, &paths), x0..x1, y0..y1),
        (true, false) => xy_svg(
            path,
            spec,
            (&series, &errors, &paths),
            (x0..x1).log_scale(),
            y0..y1,
        ),
        (false, true) => xy_svg(
            path,
            spec,
            (&series, &errors, &paths),
            x0..x1,
            (y0..y1).log_scale(),
        ),
        (true, true) => xy_svg(
            path,
            spec,
            (&series, &errors, &paths),
            (x0..x1).log_scale(),
            (y0..y1).log_scale(),
        ),
    }?;
    write_atomic(path, svg.as_bytes(), true)?;
    Ok(true)
}

/// The SVG of an [`xy_plot`] on the given axes (linear or log): the chart above, its
/// legend in a band below it, outside the data.
fn xy_svg<X, Y>(
    path: &Path,
    spec: &PlotSpec,
    (series, errors, paths): (&[Series], &[Vec<f64>], &[PathGroup]),
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
    let style_of = |i: usize| spec.styles.get(i).copied().unwrap_or_default();
    let colour_of = |i: usize| PALETTE[style_of(i).colour.unwrap_or(i) % PALETTE.len()];
    let mut entries: Vec<LegendEntry> = paths
        .iter()
        .enumerate()
        .filter(|(_, (_, lines))| lines.iter().any(|l| l.len() > 1))
        .map(|(g, (label, _))| LegendEntry {
            label: label.clone(),
            colour: PALETTE[(series.len() + g) % PALETTE.len()],
            mark: None,
            line: Some(false),
        })
        .collect();
    for (i, (label, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let style = style_of(i);
        entries.push(LegendEntry {
            label: label.clone(),
            colour: colour_of(i),
            mark: Some(if style.reference {
                4
            } else {
                style.shape.unwrap_or(i) % 4
            }),
            line: (joined(spec, points) && !style.points_only).then_some(style.reference),
        });
    }
    let mut svg = String::new();
    {
        let (root, legend) = canvas(&mut svg, &entries);
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&spec.title, (FONT, TITLE_SIZE))
            .margin(14)
            .x_label_area_size(56)
            .y_label_area_size(96)
            .build_cartesian_2d(x, y)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(215, 215, 215))
            .x_desc(axis(&spec.x_label, spec.log_x))
            .y_desc(axis(&spec.y_label, spec.log_y))
            .label_style((FONT, TICK_SIZE))
            .axis_desc_style((FONT, AXIS_SIZE))
            .x_label_formatter(if spec.log_x { &log_tick } else { &tick })
            .y_label_formatter(if spec.log_y { &log_tick } else { &tick })
            .draw()
            .map_err(|e| plot_err(path, e))?;
        // Paths first (contours, ellipses), under the points; one colour per group, after
        // the series' colours.
        for (g, (_, lines)) in paths.iter().enumerate() {
            let colour = PALETTE[(series.len() + g) % PALETTE.len()];
            for line in lines.iter().filter(|l| l.len() > 1) {
                chart
                    .draw_series(LineSeries::new(line.clone(), colour.stroke_width(1)))
                    .map_err(|e| plot_err(path, e))?;
            }
        }
        for (i, (_, points)) in series.iter().enumerate() {
            let colour = colour_of(i);
            let reference = style_of(i).reference;
            if let Some(errs) = errors.get(i).filter(|e| e.iter().any(|&e| e > 0.0)) {
                chart
                    .draw_series(points.iter().zip(errs).map(|(&(x, y), &e)| {
                        ErrorBar::new_vertical(x, y - e, y, y + e, colour.stroke_width(2), 8)
                    }))
                    .map_err(|e| plot_err(path, e))?;
            }
            if joined(spec, points) && !style_of(i).points_only {
                if reference {
                    chart
                        .draw_series(DashedLineSeries::new(
                            points.clone(),
                            8,
                            5,
                            colour.stroke_width(2),
                        ))
                        .map_err(|e| plot_err(path, e))?;
                } else {
                    chart
                        .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                        .map_err(|e| plot_err(path, e))?;
                }
            }
            let shape = if reference {
                4
            } else {
                style_of(i).shape.unwrap_or(i) % 4
            };
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| EmptyElement::at(p) + marker(shape, colour)),
                )
                .map_err(|e| plot_err(path, e))?;
        }
        draw_legend(&legend, &entries).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    Ok(svg)
}

/// Whether a series is drawn as a line: the spec asks for lines and its x values are
/// sorted (a scatter of unsorted points is not a curve).
fn joined(spec: &PlotSpec, points: &[(f64, f64)]) -> bool {
    spec.lines && points.len() > 1 && points.windows(2).all(|w| w[0].0 <= w[1].0)
}
