//! The three plots of each posterior in a `run` report.

use super::line::{Line, line_chart};
use super::*;

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
    let label = |e: &str| {
        e.parse::<crate::estimators::EstimatorId>()
            .map_or_else(|_| e.to_string(), |id| id.label().to_string())
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
