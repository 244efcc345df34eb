//! Line charts against K (log scale): the plots of a `run` report.

use super::*;

/// One line: label, colour, points, optional error bars.
pub(super) struct Line {
    pub(super) label: String,
    pub(super) colour: RGBColor,
    pub(super) points: Vec<(f64, f64)>,
    pub(super) errors: Option<Vec<f64>>,
}

/// The lines' points that can be drawn, with their error half-widths (an error bar that
/// cannot be drawn is dropped, its point kept), and the number of points left out.
pub(super) fn drawable_lines(lines: &[Line]) -> (Vec<Line>, usize) {
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

pub(super) fn line_chart(path: &Path, title: &str, y_label: &str, lines: &[Line]) -> Result<()> {
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
pub(super) fn densify(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
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
