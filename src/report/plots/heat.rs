//! Heat maps: a value per cell over two settings, written in each cell, with a colour
//! bar.

use super::*;

/// A colour on a blue–yellow scale (viridis-like) for `t` in [0, 1].
pub(super) fn scale_colour(t: f64) -> RGBColor {
    const STOPS: [(f64, (f64, f64, f64)); 5] = [
        (0.0, (68.0, 1.0, 84.0)),
        (0.25, (59.0, 82.0, 139.0)),
        (0.5, (33.0, 145.0, 140.0)),
        (0.75, (94.0, 201.0, 98.0)),
        (1.0, (253.0, 231.0, 37.0)),
    ];
    stops(&STOPS, t)
}

/// A colour on a diverging blue–white–red scale for `t` in [0, 1], white at ½.
pub(super) fn diverging_colour(t: f64) -> RGBColor {
    const STOPS: [(f64, (f64, f64, f64)); 5] = [
        (0.0, (33.0, 102.0, 172.0)),
        (0.25, (146.0, 197.0, 222.0)),
        (0.5, (247.0, 247.0, 247.0)),
        (0.75, (244.0, 165.0, 130.0)),
        (1.0, (178.0, 24.0, 43.0)),
    ];
    stops(&STOPS, t)
}

fn stops(stops: &[(f64, (f64, f64, f64)); 5], t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let k = stops.iter().position(|s| s.0 >= t).unwrap_or(4).max(1);
    let ((t0, a), (t1, b)) = (stops[k - 1], stops[k]);
    let f = (t - t0) / (t1 - t0);
    let mix = |x: f64, y: f64| (x + f * (y - x)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A [`HeatMap`](crate::study::experiment::HeatMap): cells coloured on one scale, each
/// with its value written in it, and the scale as a bar at the right.
pub(super) fn heat_map(
    path: &Path,
    spec: &PlotSpec,
    h: &crate::study::experiment::HeatMap,
) -> Result<()> {
    let (nx, ny) = (h.columns.len(), h.rows.len());
    let vals: Vec<f64> = h
        .values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|&v| drawable(v))
        .collect();
    let (mut lo, mut hi) = h
        .range
        .unwrap_or_else(|| crate::study::figure::extent(vals.iter().copied()));
    if h.diverging {
        let m = lo.abs().max(hi.abs());
        (lo, hi) = (-m, m);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        (lo, hi) = (0.0, 1.0);
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let colour = |t: f64| {
        if h.diverging {
            diverging_colour(t)
        } else {
            scale_colour(t)
        }
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, CHART_HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let (cells, bar) = root.split_horizontally(WIDTH - 120);
        let mut chart = ChartBuilder::on(&cells)
            .caption(&spec.title, (FONT, TITLE_SIZE))
            .margin(14)
            .x_label_area_size(56)
            .y_label_area_size(96)
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
            .label_style((FONT, TICK_SIZE))
            .axis_desc_style((FONT, AXIS_SIZE))
            .x_label_formatter(&|v| label(&h.columns, *v))
            .y_label_formatter(&|v| label(&h.rows, *v))
            .x_desc(spec.x_label.clone())
            .y_desc(spec.y_label.clone())
            .draw()
            .map_err(|e| plot_err(path, e))?;
        for (r, row) in h.values.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let (x, y) = (c as f64, r as f64);
                let t = v.filter(|v| drawable(*v)).map(|v| (v - lo) / span);
                let fill = t.map_or(RGBColor(220, 220, 220), colour);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        fill.filled(),
                    )))
                    .map_err(|e| plot_err(path, e))?;
                // Dark ink on light cells.
                let light = 0.299 * fill.0 as f64 + 0.587 * fill.1 as f64 + 0.114 * fill.2 as f64;
                let ink = if light > 140.0 { BLACK } else { WHITE };
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
                let step = 0.18;
                let top = y + 0.5 + step * (lines.len() - 1) as f64 / 2.0;
                for (i, line) in lines.into_iter().enumerate() {
                    let style = (FONT, TICK_SIZE)
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
        colour_bar(&bar, (lo, hi), &h.value_label, &colour).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    write_atomic(path, svg.as_bytes(), true)
}

/// The colour scale from `lo` (bottom) to `hi` (top), its ends and middle written beside
/// it, and what it shows above it.
fn colour_bar(
    area: &Area<'_>,
    (lo, hi): (f64, f64),
    label: &str,
    colour: &dyn Fn(f64) -> RGBColor,
) -> std::result::Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let (top, bottom, x) = (70, CHART_HEIGHT as i32 - 80, 12);
    let steps = 64;
    for s in 0..steps {
        let t = s as f64 / (steps - 1) as f64;
        let y1 = bottom - (bottom - top) * s / steps;
        let y0 = bottom - (bottom - top) * (s + 1) / steps;
        area.draw(&Rectangle::new([(x, y0), (x + 22, y1)], colour(t).filled()))?;
    }
    area.draw(&Rectangle::new(
        [(x, top), (x + 22, bottom)],
        BLACK.stroke_width(1),
    ))?;
    let text = |s: String, y: i32| {
        Text::new(
            s,
            (x + 28, y),
            (FONT, TICK_SIZE)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )
    };
    area.draw(&text(cell_number(hi), top))?;
    area.draw(&text(cell_number(0.5 * (lo + hi)), (top + bottom) / 2))?;
    area.draw(&text(cell_number(lo), bottom))?;
    area.draw(&Text::new(
        label.to_string(),
        (x, top - 30),
        (FONT, TICK_SIZE)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center)),
    ))?;
    Ok(())
}
