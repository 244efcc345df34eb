//! SVG plots of a study (plotters, SVG backend, no system fonts).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::study::experiment::{PathGroup, Series};
use crate::study::grid::{BiasVarianceRow, BoundRow};
use crate::study::reproduce::PlotSpec;

mod heat;
mod line;
mod run;
mod xy;

use heat::heat_map;
use line::densify;
#[cfg(test)]
use line::{Line, line_chart};
pub use run::write_plots;
pub use xy::xy_plot;

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

/// The corner (or middle of a side) of the plot with the fewest data points in it, for
/// the legend, so that it
/// does not cover data. `bounds` are the axes' (x0, x1, y0, y1).
pub(super) fn legend_corner(
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
