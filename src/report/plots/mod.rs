//! SVG plots of a study (plotters, SVG backend, no system fonts).

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::study::experiment::{PathGroup, Series};
use crate::study::reproduce::PlotSpec;

mod heat;
mod xy;

use heat::heat_map;
pub use xy::xy_plot;

/// Draws each figure's plot as `dir/<name>.svg`; returns the files written (a plot with
/// nothing it can draw writes none).
///
/// # Errors
///
/// [`Error::Io`] or [`Error::Plot`] naming a file that cannot be written.
pub fn draw_figures(
    dir: &Path,
    figures: &[crate::study::experiment::Figure],
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for f in figures {
        let p = dir.join(format!("{}.svg", f.plot.name));
        if xy_plot(&p, &f.plot)? {
            files.push(p);
        }
    }
    Ok(files)
}

pub(super) fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    // plotters' errors borrow the backend; their message is what they carry.
    Error::Plot {
        path: path.to_path_buf(),
        source: e.to_string().into(),
    }
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
pub(super) fn titled(title: &str, left_out: usize) -> String {
    match left_out {
        0 => title.to_string(),
        1 => format!("{title} (1 value not drawn: not finite or beyond ±1e15)"),
        n => format!("{title} ({n} values not drawn: not finite or beyond ±1e15)"),
    }
}

pub(super) const PALETTE: [RGBColor; 10] = [
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

/// A heat-map cell's number: three decimals, or two significant digits in scientific
/// notation below 0.01 (a gain of 5e-5 nats must not print as 0.000).
pub(super) fn cell_number(v: f64) -> String {
    if v == 0.0 || v.abs() >= 0.01 || !v.is_finite() {
        format!("{v:.3}")
    } else {
        format!("{v:.1e}")
    }
}

/// A tick label on a log axis: only at 1, 2 and 5 times a power of ten, so that the
/// labels of a decade do not run into each other.
pub(super) fn log_tick(v: &f64) -> String {
    if *v <= 0.0 {
        return String::new();
    }
    let mantissa = v / 10f64.powf(v.log10().floor());
    if [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 1e-6 * m)
    {
        tick(v)
    } else {
        String::new()
    }
}

/// A tick label: plain for values of ordinary size, `1e-7` style for tiny and huge ones
/// (the default printed `1.0000000000000001e-7` across the axis title).
pub(super) fn tick(v: &f64) -> String {
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

/// The font of every plot.
pub(super) const FONT: &str = "sans-serif";
/// Text sizes (plotters' units; an SVG font size of about 0.8 times these): at the
/// page's column width (about 1,000 px, the plots are [`WIDTH`] wide and scale up) the
/// smallest, the ticks', reads at 15 px.
pub(super) const TITLE_SIZE: u32 = 22;
pub(super) const AXIS_SIZE: u32 = 19;
pub(super) const TICK_SIZE: u32 = 17;
pub(super) const LEGEND_SIZE: u32 = 17;
/// A plot's width and the height of its chart (the legend band comes below).
pub(super) const WIDTH: u32 = 800;
pub(super) const CHART_HEIGHT: u32 = 500;
const LEGEND_ROW: u32 = 26;
const LEGEND_COLUMNS: usize = 2;

/// One entry of a plot's legend: its text, colour, marker shape ([`marker`]) and line
/// (`Some(dashed)`, or none).
pub(super) struct LegendEntry {
    pub(super) label: String,
    pub(super) colour: RGBColor,
    pub(super) mark: Option<usize>,
    pub(super) line: Option<bool>,
}

pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// The drawing areas of a plot: the chart, and below it a band that holds the legend of
/// `entries`, outside the data.
pub(super) fn canvas<'a>(svg: &'a mut String, entries: &[LegendEntry]) -> (Area<'a>, Area<'a>) {
    let rows = entries.len().div_ceil(LEGEND_COLUMNS) as u32;
    let band = if rows == 0 { 0 } else { rows * LEGEND_ROW + 14 };
    let root = SVGBackend::with_string(svg, (WIDTH, CHART_HEIGHT + band)).into_drawing_area();
    root.split_vertically(CHART_HEIGHT)
}

/// A marker: 0 a filled dot, 1 a ring, 2 a triangle, 3 a cross, 4 a hollow square (a
/// reference value), so that series lying on each other stay told apart.
pub(super) fn marker<DB: DrawingBackend>(
    shape: usize,
    colour: RGBColor,
) -> DynElement<'static, DB, (i32, i32)> {
    match shape {
        0 => Circle::new((0, 0), 4, colour.filled()).into_dyn(),
        1 => Circle::new((0, 0), 7, colour.stroke_width(2)).into_dyn(),
        2 => TriangleMarker::new((0, 0), 6, colour.filled()).into_dyn(),
        3 => Cross::new((0, 0), 5, colour.stroke_width(2)).into_dyn(),
        _ => Rectangle::new([(-5, -5), (5, 5)], colour.stroke_width(2)).into_dyn(),
    }
}

/// Draws the legend of `entries` into its band, in [`LEGEND_COLUMNS`] columns.
pub(super) fn draw_legend(
    area: &Area<'_>,
    entries: &[LegendEntry],
) -> std::result::Result<(), DrawingAreaErrorKind<std::io::Error>> {
    if entries.is_empty() {
        return Ok(());
    }
    area.fill(&WHITE)?;
    let column = (WIDTH as i32 - 40) / LEGEND_COLUMNS as i32;
    for (i, e) in entries.iter().enumerate() {
        let x = 30 + column * (i % LEGEND_COLUMNS) as i32;
        let y = 14 + LEGEND_ROW as i32 * (i / LEGEND_COLUMNS) as i32;
        match e.line {
            Some(true) => area.draw(&DashedPathElement::new(
                vec![(x, y), (x + 32, y)],
                7,
                4,
                e.colour.stroke_width(2),
            ))?,
            Some(false) => area.draw(&PathElement::new(
                vec![(x, y), (x + 32, y)],
                e.colour.stroke_width(2),
            ))?,
            None => {}
        }
        if let Some(shape) = e.mark {
            area.draw(&(EmptyElement::at((x + 16, y)) + marker(shape, e.colour)))?;
        }
        area.draw(&Text::new(
            e.label.clone(),
            (x + 42, y),
            (FONT, LEGEND_SIZE)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
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
        let spec = |name: &str, series: Vec<Series>, errors: Vec<Option<Vec<f64>>>| PlotSpec {
            series,
            errors,
            log_x: true,
            lines: true,
            ..PlotSpec::new(name, "estimates", "K", "nats")
        };
        let path = dir.join("line.svg");
        let wrote = xy_plot(
            &path,
            &spec(
                "line",
                vec![
                    (
                        "l".into(),
                        vec![
                            (2.0, 0.5),
                            (4.0, f64::NAN),
                            (8.0, f64::INFINITY),
                            (16.0, 1e300),
                        ],
                    ),
                    ("m".into(), vec![(2.0, 0.6), (4.0, 0.7)]),
                ],
                vec![Some(vec![0.1; 4]), Some(vec![f64::INFINITY, 1e300])],
            ),
        )
        .unwrap();
        assert!(wrote);
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.contains("(3 values not drawn: not finite or beyond ±1e15)"),
            "{svg}"
        );
        // Nothing drawable at all: no file, no loop.
        let none = dir.join("none.svg");
        let nan = spec("none", vec![("l".into(), vec![(2.0, f64::NAN)])], vec![]);
        assert!(!xy_plot(&none, &nan).unwrap());
        assert!(!none.exists());
        // Equal huge values: a window the axis can resolve.
        let flat = spec(
            "flat",
            vec![("l".into(), vec![(2.0, 1e14), (4.0, 1e14)])],
            vec![],
        );
        assert!(xy_plot(&dir.join("flat.svg"), &flat).unwrap());
        let spec = PlotSpec {
            errors: vec![Some(vec![0.1, f64::NAN, 0.1])],
            lines: true,
            series: vec![(
                "a".into(),
                vec![(1.0, 1.0), (2.0, f64::NEG_INFINITY), (3.0, 2.0)],
            )],
            ..PlotSpec::new("xy", "xy", "x", "y")
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
                log_x,
                log_y,
                lines: true,
                series: vec![
                    ("a".into(), vec![(1.0, 50.0), (16.0, 5.0), (4096.0, 0.5)]),
                    ("b".into(), vec![(0.0, 0.1), (2.0, 0.0), (4.0, 0.05)]),
                ],
                ..PlotSpec::new("p", "t", "K", "RMSE")
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
            // What a log axis cannot show is said in the legend.
            assert_eq!(svg.contains("not on the log axis"), dropped > 0);
        }
        let empty = PlotSpec {
            log_y: true,
            series: vec![("a".into(), vec![(1.0, 0.0), (2.0, -1.0)])],
            ..PlotSpec::new("e", "t", "x", "y")
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
                diverging: true,
            }),
            ..PlotSpec::new("h", "t", "N", "width")
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
        // The legend sits in a band below the chart, outside the data.
        let dir = std::env::temp_dir().join(format!("mi-est-legend-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = PlotSpec {
            lines: true,
            series: vec![("the series".into(), vec![(1.0, 1.0), (9.0, 9.0)])],
            ..PlotSpec::new("l", "t", "x", "y")
        };
        xy_plot(&dir.join("l.svg"), &spec).unwrap();
        let svg = std::fs::read_to_string(dir.join("l.svg")).unwrap();
        let at = svg
            .find(">\nthe series")
            .or_else(|| svg.find(">the series"))
            .expect("legend text");
        let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
        let y: f64 = tag
            .split("y=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(y > CHART_HEIGHT as f64, "legend at y = {y}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
