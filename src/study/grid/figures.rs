//! The figures of a `run` report, drawn from its tables (`bias_variance`, `bounds`):
//! three per posterior, each with a caption that reads the data.

use crate::error::Result;
use crate::study::experiment::{Figure, PlotSpec, SeriesStyle};
use crate::study::table::{Table, find};

/// An estimator's label for people (`I^K`, `sandwich (upper)`, …), or its name.
fn label(e: &str) -> String {
    e.parse::<crate::estimators::EstimatorId>()
        .map_or_else(|_| e.to_string(), |id| id.label().to_string())
}

/// A value in nats for a caption: three significant digits, no exponent above 1e-3.
pub(crate) fn nats(v: f64) -> String {
    crate::study::format::number(v, 3)
}

/// The rows of `posterior` with a K, grouped by estimator in the order they come.
fn by_estimator(
    ids: &[String],
    estimators: &[String],
    ks: &[f64],
    posterior: &str,
) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for i in (0..ids.len()).filter(|&i| ids[i] == posterior && ks[i].is_finite()) {
        match out.iter_mut().find(|(e, _)| *e == estimators[i]) {
            Some((_, v)) => v.push(i),
            None => out.push((estimators[i].clone(), vec![i])),
        }
    }
    out
}

/// Three figures per posterior of a `run` report: `<id>-estimates` (each estimator's
/// mean ± standard error against K, with exact I and ln K), `<id>-bias-sd` (bias with
/// the spread over repeats as bars, against zero) and `<id>-bounds` (L/N and the
/// symmetrized bounds against K, with the exact L^G/N), the last where the ELBO is known.
///
/// # Errors
///
/// A missing table or column (a report of another version), named.
pub fn run_figures(tables: &[Table]) -> Result<Vec<Figure>> {
    let bv = find(tables, "bias_variance")?;
    let (ids, est, ks) = (
        bv.texts("posterior_id")?,
        bv.texts("estimator")?,
        bv.reals("k")?,
    );
    let (mean, se, reps) = (
        bv.reals("mean_nats")?,
        bv.reals("mean_std_err_nats")?,
        bv.reals("n_repeats")?,
    );
    let (bias, var, kind) = (
        bv.reals("bias_nats")?,
        bv.reals("variance_nats2")?,
        bv.texts("reference_kind")?,
    );
    let bd = find(tables, "bounds")?;
    let (b_ids, b_est, b_ks) = (
        bd.texts("posterior_id")?,
        bd.texts("estimator")?,
        bd.reals("k")?,
    );
    let (elbo, sym, sym_se) = (
        bd.reals("elbo_per_point")?,
        bd.reals("elbo_sym_per_point")?,
        bd.reals("elbo_sym_per_point_std_err")?,
    );
    let mut posteriors: Vec<&String> = ids.iter().collect();
    posteriors.dedup();
    let mut figures = Vec::new();
    for id in posteriors {
        let groups = by_estimator(&ids, &est, &ks, id);
        if groups.is_empty() {
            continue;
        }
        let mut all_k: Vec<f64> = groups
            .iter()
            .flat_map(|(_, r)| r.iter().map(|&i| ks[i]))
            .collect();
        all_k.sort_by(f64::total_cmp);
        all_k.dedup();
        let span = |v: f64| all_k.iter().map(|&k| (k, v)).collect::<Vec<_>>();
        let k_max = all_k.last().copied().unwrap_or(1.0);
        let exact = (0..ids.len()).find(|&i| ids[i] == *id && !ks[i].is_finite());
        let reference = SeriesStyle::reference(5);
        let mut plot = PlotSpec::new(
            &format!("{id}-estimates"),
            &format!("{id}: I(g; ω) estimates"),
            "K",
            "nats",
        );
        plot.log_x = true;
        plot.lines = true;
        let mut at_max = Vec::new();
        for (i, (e, rows)) in groups.iter().enumerate() {
            let points = rows.iter().map(|&r| (ks[r], mean[r])).collect();
            let errors = rows
                .iter()
                .map(|&r| {
                    if se[r].is_finite() {
                        se[r] / reps[r].max(1.0).sqrt()
                    } else {
                        0.0
                    }
                })
                .collect();
            plot = plot.series(
                &format!("{} (mean ± SE)", label(e)),
                points,
                Some(errors),
                SeriesStyle::own(i),
            );
            if let Some(&r) = rows.iter().rev().find(|&&r| ks[r] == k_max) {
                at_max.push(format!("{} {}", label(e), nats(mean[r])));
            }
        }
        plot = plot.series(
            "ln K",
            all_k.iter().map(|&k| (k, k.ln())).collect(),
            None,
            reference,
        );
        let mut caption = format!("At K = {}: {} nats", k_max, at_max.join(", "));
        if let Some(x) = exact {
            plot = plot.series(
                &format!("exact I ({})", est[x]),
                span(mean[x]),
                None,
                SeriesStyle::reference(1),
            );
            caption.push_str(&format!(", against the exact I = {} nats", nats(mean[x])));
        }
        caption.push_str(&format!(" (ln K = {}).", nats(k_max.ln())));
        figures.push(Figure { plot, caption });

        let mut plot = PlotSpec::new(
            &format!("{id}-bias-sd"),
            &format!("{id}: bias, with the sd over repeats as bars"),
            "K",
            "nats",
        );
        plot.log_x = true;
        plot.lines = true;
        plot = plot.series("zero", span(0.0), None, reference);
        let mut worst: Option<(String, f64, f64)> = None;
        for (i, (e, rows)) in groups.iter().enumerate() {
            let rows: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&r| bias[r].is_finite())
                .collect();
            if rows.is_empty() {
                continue;
            }
            let sd: Vec<f64> = rows
                .iter()
                .map(|&r| {
                    if var[r].is_finite() {
                        var[r].sqrt()
                    } else {
                        0.0
                    }
                })
                .collect();
            plot = plot.series(
                &format!("{}: bias vs {} ± sd", label(e), kind[rows[0]]),
                rows.iter().map(|&r| (ks[r], bias[r])).collect(),
                Some(sd.clone()),
                SeriesStyle::own(i),
            );
            let last = *rows.last().expect("not empty");
            if worst.as_ref().is_none_or(|w| bias[last].abs() > w.1.abs()) {
                worst = Some((label(e), bias[last], sd[rows.len() - 1]));
            }
        }
        if let Some((e, b, sd)) = worst {
            figures.push(Figure {
                plot,
                caption: format!(
                    "The largest bias at the largest K is {e}'s: {} nats, with an sd over repeats of {} nats.",
                    nats(b),
                    nats(sd)
                ),
            });
        }

        let rows: Vec<usize> = (0..b_ids.len())
            .filter(|&i| b_ids[i] == *id && b_ks[i].is_finite())
            .collect();
        if rows.is_empty() || rows.iter().any(|&i| !elbo[i].is_finite()) {
            continue;
        }
        let mut plot = PlotSpec::new(
            &format!("{id}-bounds"),
            &format!("{id}: ELBO and symmetrized bound per data point"),
            "K",
            "nats / data point",
        );
        plot.log_x = true;
        plot.lines = true;
        plot = plot.series("L / N", span(elbo[rows[0]]), None, SeriesStyle::own(5));
        let groups = by_estimator(&b_ids, &b_est, &b_ks, id);
        let mut best = f64::NEG_INFINITY;
        for (i, (e, rows)) in groups.iter().enumerate() {
            plot = plot.series(
                &format!("(L + {}) / N ± SE", label(e)),
                rows.iter().map(|&r| (b_ks[r], sym[r])).collect(),
                Some(
                    rows.iter()
                        .map(|&r| {
                            if sym_se[r].is_finite() {
                                sym_se[r]
                            } else {
                                0.0
                            }
                        })
                        .collect(),
                ),
                SeriesStyle::own(i),
            );
            best = rows
                .iter()
                .map(|&r| sym[r])
                .filter(|v| v.is_finite())
                .fold(best, f64::max);
        }
        let mut caption = format!(
            "The ELBO is {} nats per point; the symmetrized bound reaches {} (+{} per point).",
            nats(elbo[rows[0]]),
            nats(best),
            nats(best - elbo[rows[0]])
        );
        if let Some(e) = (0..b_ids.len())
            .find(|&i| b_ids[i] == *id && !b_ks[i].is_finite())
            .map(|i| sym[i])
            .filter(|v| v.is_finite())
        {
            plot = plot.series("exact L^G / N", span(e), None, SeriesStyle::reference(1));
            caption.push_str(&format!(" The exact L^G is {} per point.", nats(e)));
        }
        figures.push(Figure { plot, caption });
    }
    Ok(figures)
}
