//! Scatter and line plots of a study's [`PlotSpec`], on linear or log axes.

use super::*;

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
