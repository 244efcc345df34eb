//! The figures of a `run` report, drawn from its tables (`bias_variance`, `bounds`):
//! three per posterior, each with a caption that reads the data.

use crate::error::Result;
use crate::study::experiment::{Figure, PlotSpec, SeriesStyle};
use crate::study::table::{Table, find};

use crate::estimators::EstimatorId;

/// An estimator's label for people (`I^K`, `sandwich lower bound`, …), or its name.
fn label(e: &str) -> String {
    EstimatorId::label_of(e)
}

/// A value in nats for a caption: three significant digits, no exponent above 1e-3.
pub(crate) fn nats(v: f64) -> String {
    crate::study::format::number(v, 3)
}

/// A standard error or spread for an error bar: 0 (no bar) where it is missing.
fn bar(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
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

/// The columns of the bias–variance table the figures read.
struct BiasVariance {
    ids: Vec<String>,
    estimator: Vec<String>,
    k: Vec<f64>,
    mean: Vec<f64>,
    std_err: Vec<f64>,
    repeats: Vec<f64>,
    bias: Vec<f64>,
    variance: Vec<f64>,
    reference_kind: Vec<String>,
}

/// The columns of the bound table the figures read.
struct Bounds {
    ids: Vec<String>,
    estimator: Vec<String>,
    k: Vec<f64>,
    elbo: Vec<f64>,
    sym: Vec<f64>,
    sym_std_err: Vec<f64>,
}

/// One posterior's estimators (rows grouped) and the K they were run at.
struct Posterior<'a> {
    id: &'a str,
    groups: Vec<(String, Vec<usize>)>,
    ks: Vec<f64>,
}

impl Posterior<'_> {
    /// `v` at every K of the posterior: a level across the plot.
    fn level(&self, v: f64) -> Vec<(f64, f64)> {
        self.ks.iter().map(|&k| (k, v)).collect()
    }

    fn k_max(&self) -> f64 {
        self.ks.last().copied().unwrap_or(1.0)
    }

    /// A plot against K (log scale) called `<id>-<stem>`.
    fn plot(&self, stem: &str, title: &str, y_label: &str) -> PlotSpec {
        let mut plot = PlotSpec::new(
            &format!("{}-{stem}", self.id),
            &format!("{}: {title}", self.id),
            "K",
            y_label,
        );
        plot.log_x = true;
        plot.lines = true;
        plot
    }
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
    let t = find(tables, "bias_variance")?;
    let bv = BiasVariance {
        ids: t.texts("posterior_id")?,
        estimator: t.texts("estimator")?,
        k: t.reals("k")?,
        mean: t.reals("mean_nats")?,
        std_err: t.reals("mean_std_err_nats")?,
        repeats: t.reals("n_repeats")?,
        bias: t.reals("bias_nats")?,
        variance: t.reals("variance_nats2")?,
        reference_kind: t.texts("reference_kind")?,
    };
    let t = find(tables, "bounds")?;
    let bd = Bounds {
        ids: t.texts("posterior_id")?,
        estimator: t.texts("estimator")?,
        k: t.reals("k")?,
        elbo: t.reals("elbo_per_point")?,
        sym: t.reals("elbo_sym_per_point")?,
        sym_std_err: t.reals("elbo_sym_per_point_std_err")?,
    };
    let mut ids: Vec<&String> = bv.ids.iter().collect();
    ids.dedup();
    let mut figures = Vec::new();
    for id in ids {
        let groups = by_estimator(&bv.ids, &bv.estimator, &bv.k, id);
        if groups.is_empty() {
            continue;
        }
        let mut ks: Vec<f64> = groups
            .iter()
            .flat_map(|(_, r)| r.iter().map(|&i| bv.k[i]))
            .collect();
        ks.sort_by(f64::total_cmp);
        ks.dedup();
        let p = Posterior { id, groups, ks };
        figures.push(estimates_figure(&bv, &p));
        figures.extend(bias_figure(&bv, &p));
        figures.extend(bounds_figure(&bd, &p));
    }
    Ok(figures)
}

/// `<id>-estimates`: each estimator's mean ± SE against K, ln K and the exact I.
fn estimates_figure(bv: &BiasVariance, p: &Posterior<'_>) -> Figure {
    let k_max = p.k_max();
    let mut plot = p.plot("estimates", "I(g; ω) estimates", "nats");
    let mut at_max = Vec::new();
    for (i, (e, rows)) in p.groups.iter().enumerate() {
        let points = rows.iter().map(|&r| (bv.k[r], bv.mean[r])).collect();
        let errors = rows
            .iter()
            .map(|&r| bar(bv.std_err[r]) / bv.repeats[r].max(1.0).sqrt())
            .collect();
        plot = plot.series(
            &format!("{} (mean ± SE)", label(e)),
            points,
            Some(errors),
            SeriesStyle::own(i),
        );
        if let Some(&r) = rows.iter().rev().find(|&&r| bv.k[r] == k_max) {
            at_max.push(format!("{} {}", label(e), nats(bv.mean[r])));
        }
    }
    plot = plot.series(
        "ln K",
        p.ks.iter().map(|&k| (k, k.ln())).collect(),
        None,
        SeriesStyle::reference(5),
    );
    let mut caption = format!("At K = {k_max}: {} nats", at_max.join(", "));
    let exact = (0..bv.ids.len()).find(|&i| bv.ids[i] == p.id && !bv.k[i].is_finite());
    if let Some(x) = exact {
        plot = plot.series(
            &format!("exact I ({})", bv.estimator[x]),
            p.level(bv.mean[x]),
            None,
            SeriesStyle::reference(1),
        );
        caption.push_str(&format!(
            ", against the exact I = {} nats",
            nats(bv.mean[x])
        ));
    }
    caption.push_str(&format!(" (ln K = {}).", nats(k_max.ln())));
    Figure { plot, caption }
}

/// `<id>-bias-sd`: each estimator's bias against its reference, with the sd over
/// repeats as bars, against zero; none where no estimator has a reference.
fn bias_figure(bv: &BiasVariance, p: &Posterior<'_>) -> Option<Figure> {
    let mut plot = p.plot("bias-sd", "bias, with the sd over repeats as bars", "nats");
    plot = plot.series("zero", p.level(0.0), None, SeriesStyle::reference(5));
    let mut worst: Option<(String, f64, f64)> = None;
    for (i, (e, rows)) in p.groups.iter().enumerate() {
        let rows: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&r| bv.bias[r].is_finite())
            .collect();
        let Some(&last) = rows.last() else {
            continue;
        };
        let sd: Vec<f64> = rows.iter().map(|&r| bar(bv.variance[r].sqrt())).collect();
        plot = plot.series(
            &format!("{}: bias vs {} ± sd", label(e), bv.reference_kind[rows[0]]),
            rows.iter().map(|&r| (bv.k[r], bv.bias[r])).collect(),
            Some(sd.clone()),
            SeriesStyle::own(i),
        );
        if worst
            .as_ref()
            .is_none_or(|w| bv.bias[last].abs() > w.1.abs())
        {
            worst = Some((label(e), bv.bias[last], sd[rows.len() - 1]));
        }
    }
    let (e, b, sd) = worst?;
    Some(Figure {
        plot,
        caption: format!(
            "The largest bias at the largest K is {e}'s: {} nats, with an sd over repeats of {} nats.",
            nats(b),
            nats(sd)
        ),
    })
}

/// `<id>-bounds`: L/N and each (L + Î)/N ± SE against K, with the exact L^G/N; none
/// where the ELBO is not known.
fn bounds_figure(bd: &Bounds, p: &Posterior<'_>) -> Option<Figure> {
    let rows: Vec<usize> = (0..bd.ids.len())
        .filter(|&i| bd.ids[i] == p.id && bd.k[i].is_finite())
        .collect();
    let elbo = bd.elbo[*rows.first()?];
    if rows.iter().any(|&i| !bd.elbo[i].is_finite()) {
        return None;
    }
    let mut plot = p.plot(
        "bounds",
        "ELBO and symmetrized bound per data point",
        "nats / data point",
    );
    plot = plot.series("L / N", p.level(elbo), None, SeriesStyle::own(5));
    let mut best = f64::NEG_INFINITY;
    for (i, (e, rows)) in by_estimator(&bd.ids, &bd.estimator, &bd.k, p.id)
        .iter()
        .enumerate()
    {
        plot = plot.series(
            &format!("(L + {}) / N ± SE", label(e)),
            rows.iter().map(|&r| (bd.k[r], bd.sym[r])).collect(),
            Some(rows.iter().map(|&r| bar(bd.sym_std_err[r])).collect()),
            SeriesStyle::own(i),
        );
        best = rows
            .iter()
            .map(|&r| bd.sym[r])
            .filter(|v| v.is_finite())
            .fold(best, f64::max);
    }
    let mut caption = format!(
        "The ELBO is {} nats per point; the symmetrized bound reaches {} (+{} per point).",
        nats(elbo),
        nats(best),
        nats(best - elbo)
    );
    if let Some(e) = (0..bd.ids.len())
        .find(|&i| bd.ids[i] == p.id && !bd.k[i].is_finite())
        .map(|i| bd.sym[i])
        .filter(|v| v.is_finite())
    {
        plot = plot.series("exact L^G / N", p.level(e), None, SeriesStyle::reference(1));
        caption.push_str(&format!(" The exact L^G is {} per point.", nats(e)));
    }
    Some(Figure { plot, caption })
}
