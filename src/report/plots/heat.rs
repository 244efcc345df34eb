//! Heat maps: a value per cell over two settings, written in each cell.

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
    let t = t.clamp(0.0, 1.0);
    let k = STOPS.iter().position(|s| s.0 >= t).unwrap_or(4).max(1);
    let ((t0, a), (t1, b)) = (STOPS[k - 1], STOPS[k]);
    let f = (t - t0) / (t1 - t0);
    let mix = |x: f64, y: f64| (x + f * (y - x)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A [`HeatMap`](crate::study::experiment::HeatMap): cells coloured on one scale
/// (its range in the caption), each with its value written in it.
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
