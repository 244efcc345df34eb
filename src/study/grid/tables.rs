//! The grid's summaries: the bias–variance table per (posterior, estimator, K) and the
//! bound table (ELBO, KL, Î and the symmetrized bounds) per posterior.

use crate::data::DataSpec;
use crate::elbo::elbo;
use crate::error::{Error, Result};
use crate::estimators::{EstimatorId, EstimatorKind};
use crate::grid::{LoadedPosterior, RawRow};
use crate::rng::child_seed;
use crate::weights::Likelihood;

/// The summary series of raw rows: each interval's row (`sandwich`, `annealed`) becomes a
/// row of its lower and one of its upper side (`sandwich-lower`, `sandwich-upper`, …:
/// value and standard error of that bound); other rows stay.
pub fn bound_series(rows: &[RawRow]) -> Vec<RawRow> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let sides = EstimatorKind::parse(&r.estimator)
            .ok()
            .and_then(EstimatorKind::sides);
        match (r.upper_nats, sides) {
            (Some(upper), Some((lower_id, upper_id))) => {
                let side = |id: EstimatorId, value: f64, se: Option<f64>| RawRow {
                    estimator: id.to_string(),
                    mi_nats: value,
                    std_err_nats: se,
                    upper_nats: None,
                    upper_std_err_nats: None,
                    width_nats: None,
                    width_std_err_nats: None,
                    ..r.clone()
                };
                out.push(side(lower_id, r.mi_nats, r.std_err_nats));
                out.push(side(upper_id, upper, r.upper_std_err_nats));
            }
            _ => out.push(r.clone()),
        }
    }
    out
}

/// One cell of the bias–variance table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BiasVarianceRow {
    /// Posterior id.
    pub posterior_id: String,
    /// Estimator.
    pub estimator: String,
    /// K (InfoNCE rows).
    pub k: Option<u64>,
    /// Repeats R.
    pub n_repeats: u64,
    /// Weight draws per repeat.
    pub n_samples: u64,
    /// Mean over repeats, nats; for an upper bound, of the values cut to ln|G|
    /// (I ≤ ln|G| always, so min(upper, ln|G|) is an upper bound too).
    pub mean_nats: f64,
    /// Mean over repeats of the values as estimated (before any cut), nats.
    pub mean_raw_nats: f64,
    /// How many repeats' values were cut to ln|G|.
    pub n_cut: u64,
    /// The reference value the bias is measured against, nats.
    pub reference_nats: Option<f64>,
    /// Which estimate the reference is: the exact estimator by name, the sandwich
    /// interval's midpoint at its K, or the largest-K I^K (a lower bound).
    pub reference_kind: Option<String>,
    /// mean − reference, nats.
    pub bias_nats: Option<f64>,
    /// Variance over repeats, nats².
    pub variance_nats2: Option<f64>,
    /// sqrt(mean over repeats of (value − reference)²), nats.
    pub rmse_nats: Option<f64>,
    /// Mean within-repeat Monte Carlo standard error, nats.
    pub mean_std_err_nats: Option<f64>,
    /// Mean wall time per estimate, seconds.
    pub mean_wall_s: f64,
    /// The cap ln K (or ln|G|), nats.
    pub ln_cap_nats: f64,
    /// Whether the mean is within 10⁻³ of the cap.
    pub saturated: bool,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Summarizes raw rows (from any number of shards, in any order) into the
/// bias–variance table, sorted by (posterior, estimator, K).
pub fn bias_variance(rows: &[RawRow]) -> Vec<BiasVarianceRow> {
    series_bias_variance(&bound_series(rows))
}

/// [`bias_variance`] of rows already expanded by [`bound_series`].
fn series_bias_variance(series: &[RawRow]) -> Vec<BiasVarianceRow> {
    let mut rows: Vec<&RawRow> = series.iter().collect();
    rows.sort_by(|a, b| {
        (&a.posterior_id, &a.estimator, a.k, a.repeat).cmp(&(
            &b.posterior_id,
            &b.estimator,
            b.k,
            b.repeat,
        ))
    });
    let mut cells: Vec<Vec<&RawRow>> = Vec::new();
    for r in rows {
        match cells.last_mut() {
            Some(c)
                if c[0].posterior_id == r.posterior_id
                    && c[0].estimator == r.estimator
                    && c[0].k == r.k =>
            {
                c.push(r)
            }
            _ => cells.push(vec![r]),
        }
    }
    let reference = |pid: &str| reference(&cells, pid);
    cells
        .iter()
        .map(|c| {
            let raw: Vec<f64> = c.iter().map(|r| r.mi_nats).collect();
            let values: Vec<f64> = c.iter().map(|r| cut_value(r)).collect();
            let n_cut = raw.iter().zip(&values).filter(|(r, v)| r != v).count();
            let m = mean(&values);
            let n = values.len();
            let variance = (n > 1)
                .then(|| values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64);
            let reference = reference(&c[0].posterior_id);
            // An exact cell is its own reference ([`reference`] prefers exact ones).
            let is_reference_itself = c[0].estimator_id().is_some_and(EstimatorId::is_exact);
            let (reference_nats, reference_kind, bias, rmse) = match reference {
                Some((rv, kind)) if !is_reference_itself => (
                    Some(rv),
                    Some(kind),
                    Some(m - rv),
                    Some(
                        mean(
                            &values
                                .iter()
                                .map(|v| (v - rv) * (v - rv))
                                .collect::<Vec<_>>(),
                        )
                        .sqrt(),
                    ),
                ),
                Some((rv, kind)) => (Some(rv), Some(kind), None, None),
                None => (None, None, None, None),
            };
            let ses: Vec<f64> = c.iter().filter_map(|r| r.std_err_nats).collect();
            BiasVarianceRow {
                posterior_id: c[0].posterior_id.clone(),
                estimator: c[0].estimator.clone(),
                k: c[0].k,
                n_repeats: n as u64,
                n_samples: c[0].n_samples,
                mean_nats: m,
                mean_raw_nats: mean(&raw),
                n_cut: n_cut as u64,
                reference_nats,
                reference_kind,
                bias_nats: bias,
                variance_nats2: variance,
                rmse_nats: rmse,
                mean_std_err_nats: (!ses.is_empty()).then(|| mean(&ses)),
                mean_wall_s: mean(&c.iter().map(|r| r.wall_s).collect::<Vec<_>>()),
                ln_cap_nats: c[0].ln_cap_nats,
                saturated: (m - c[0].ln_cap_nats).abs() < 1e-3,
            }
        })
        .collect()
}

/// A row's value as quoted: a bound cut to [0, ln|G|] ([`EstimatorId::cut`]).
fn cut_value(r: &RawRow) -> f64 {
    match r.estimator_id() {
        Some(e) => e.cut(r.mi_nats, r.ln_group_order_nats),
        None => r.mi_nats,
    }
}

/// The reference of a posterior's bias: the exact estimate if there is one; else the
/// midpoint of the narrowest interval (the sandwich's or the annealed bounds', each at its
/// largest K or T; ends cut to [0, ln|G|]); else the largest-K I^K, a lower bound. With
/// words that name which one it is.
fn reference(cells: &[Vec<&RawRow>], pid: &str) -> Option<(f64, String)> {
    let of = |id: EstimatorId| {
        cells
            .iter()
            .filter(move |c| c[0].posterior_id == pid && c[0].estimator == id.name())
    };
    let cell_mean = |c: &Vec<&RawRow>| mean(&c.iter().map(|r| cut_value(r)).collect::<Vec<_>>());
    for id in [
        EstimatorId::ExactPermanent,
        EstimatorId::ExactPruned,
        EstimatorId::ExactEnumeration,
    ] {
        if let Some(c) = of(id).next() {
            return Some((cell_mean(c), format!("exact ({id})")));
        }
    }
    // (width, midpoint, words) of each interval estimator at its largest K or T.
    let narrowest = [EstimatorKind::Sandwich, EstimatorKind::Annealed]
        .into_iter()
        .filter_map(|kind| {
            let (lower, upper) = kind.sides()?;
            let k = of(lower)
                .filter_map(|c| c[0].k)
                .filter(|&k| of(upper).any(|u| u[0].k == Some(k)))
                .max()?;
            let side = |id| of(id).find(|c| c[0].k == Some(k)).map(cell_mean);
            let (lo, hi) = (side(lower)?, side(upper)?);
            let k_name = if kind == EstimatorKind::Annealed {
                "T"
            } else {
                "K"
            };
            Some((
                hi - lo,
                0.5 * (lo + hi),
                format!(
                    "{} interval midpoint, {k_name} = {k} (ends cut to [0, ln|G|])",
                    kind.name()
                ),
            ))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, mid, words)) = narrowest {
        return Some((mid, words));
    }
    of(EstimatorId::InfoNce).max_by_key(|c| c[0].k).map(|c| {
        (
            cell_mean(c),
            format!(
                "largest-K infonce, K = {} (a lower bound)",
                c[0].k.unwrap_or(0)
            ),
        )
    })
}

/// One row of the bound table: per posterior and K (and one row for the exact I).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BoundRow {
    /// Posterior id.
    pub posterior_id: String,
    /// The data the ELBO was evaluated on (`None` if no data were available).
    pub data: Option<String>,
    /// Number of data points N.
    pub n_data: Option<u64>,
    /// Estimator of the I term.
    pub estimator: String,
    /// K (InfoNCE rows).
    pub k: Option<u64>,
    /// L / N.
    pub elbo_per_point: Option<f64>,
    /// Standard error of L / N.
    pub elbo_per_point_std_err: Option<f64>,
    /// KL(q ‖ p), nats.
    pub kl_nats: f64,
    /// Mean Î over repeats, nats; an upper bound's values cut to ln|G| first.
    pub mi_nats: f64,
    /// Mean Î over repeats as estimated (before any cut), nats.
    pub mi_raw_nats: f64,
    /// How many repeats' values were cut to ln|G|.
    pub n_cut: u64,
    /// Whether the (upper-bound) mean was cut to KL(q ‖ p): I ≤ KL for a
    /// permutation-invariant prior, since KL(q^G ‖ p) = KL − I ≥ 0.
    pub cut_at_kl: bool,
    /// The prior scale s of N(0, s²I) that KL(q ‖ p) uses.
    pub prior_scale: f64,
    /// Its standard error (from the repeats' pooled within-repeat errors), nats.
    pub mi_std_err_nats: Option<f64>,
    /// (L + Î) / N: L^K per point for InfoNCE rows, the exact L^G per point for the exact row.
    pub elbo_sym_per_point: Option<f64>,
    /// Its standard error.
    pub elbo_sym_per_point_std_err: Option<f64>,
    /// KL(q^G ‖ p) = KL(q ‖ p) − Î, nats.
    pub kl_sym_nats: f64,
    /// ln|G|, nats.
    pub ln_group_order_nats: f64,
}

/// Where a posterior's ELBO is evaluated: `data` if given, else the data recorded in its
/// training configuration, if that can be loaded and the posterior is an MLP (the forward
/// pass needs one), read from the current folder ([`crate::data::recorded_data`]).
///
/// # Errors
///
/// A recorded relative path that names two different things.
pub fn data_for(lp: &LoadedPosterior, data: Option<&str>) -> Result<Option<String>> {
    if let Some(d) = data {
        return Ok(Some(d.to_string()));
    }
    // The forward pass needs an MLP: a posterior read under a spec has no ELBO unless
    // data are asked for (which then fails, naming why).
    if lp.file.posterior.arch().is_none() {
        return Ok(None);
    }
    let Some(cfg) = lp
        .file
        .train_config
        .as_deref()
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
    else {
        return Ok(None);
    };
    let Some(spec) = cfg.get("data_spec").and_then(|s| s.as_str()) else {
        return Ok(None);
    };
    let relative_to = cfg.get("data_relative_to").and_then(|s| s.as_str());
    crate::data::recorded_data(spec, relative_to, &lp.path)
        .map(|d| Some(d.to_string()))
        .map_err(|e| Error::Context {
            what: format!("the training data recorded in posterior {}", lp.id),
            source: Box::new(e),
        })
}

/// Checks, before any estimate, that every posterior's ELBO data (`data`, else its
/// recorded training data) load and fit it: the input and output widths, the labels or
/// targets its likelihood needs, and a forward pass (an MLP); and that the ELBO of
/// `elbo_samples` draws is within the resource limits.
///
/// # Errors
///
/// [`Error::Context`] naming the data and the posterior, around the first misfit.
pub fn check_data(
    posteriors: &[LoadedPosterior],
    data: Option<&str>,
    elbo_samples: usize,
    limits: &crate::resources::Limits,
) -> Result<()> {
    for lp in posteriors {
        let Some(s) = data_for(lp, data)? else {
            continue;
        };
        let named = |e: Error| Error::Context {
            what: format!("data `{s}` for posterior {}", lp.id),
            source: Box::new(e),
        };
        let likelihood = lp.file.likelihood.unwrap_or(Likelihood::Softmax);
        let parsed: DataSpec = s.parse().map_err(named)?;
        let (train, _) = parsed.load(likelihood, 0, limits).map_err(named)?;
        let arch = lp.file.posterior.mlp().map_err(named)?;
        train.check_fits(arch, likelihood).map_err(named)?;
        crate::estimators::check_samples(elbo_samples)?;
        crate::resources::check(
            &format!(
                "the ELBO of posterior {} ({elbo_samples} draws on {} rows)",
                lp.id,
                train.len()
            ),
            crate::elbo::elbo_cost(arch, train.len(), elbo_samples),
            limits,
        )?;
    }
    Ok(())
}

/// The bound table: for each posterior, L and KL once, then one row per InfoNCE K and
/// one for the exact I (the exact L^G), from the raw rows.
///
/// # Errors
///
/// Data that cannot be loaded or do not fit the posterior, named.
pub fn bounds(
    rows: &[RawRow],
    posteriors: &[LoadedPosterior],
    data: Option<&str>,
    elbo_samples: usize,
    seed: u64,
    limits: &crate::resources::Limits,
) -> Result<Vec<BoundRow>> {
    let rows = &bound_series(rows);
    let bv = series_bias_variance(rows);
    let mut out = Vec::new();
    for lp in posteriors {
        let q = &lp.file.posterior;
        let kl = q.kl_to_prior(lp.file.prior_scale)?;
        let spec = data_for(lp, data)?;
        let likelihood = lp.file.likelihood.unwrap_or(Likelihood::Softmax);
        let l = match &spec {
            Some(s) => {
                let named = |e: Error| Error::Context {
                    what: format!("data `{s}` for posterior {}", lp.id),
                    source: Box::new(e),
                };
                let parsed: DataSpec = s.parse().map_err(named)?;
                let (train, _) = parsed.load(likelihood, 0, limits).map_err(named)?;
                Some(
                    elbo(
                        q,
                        likelihood,
                        &train,
                        lp.file.prior_scale,
                        elbo_samples,
                        child_seed(seed, 99),
                        limits,
                    )
                    .map_err(named)?,
                )
            }
            None => None,
        };
        for cell in bv.iter().filter(|c| c.posterior_id == lp.id) {
            let cell_rows: Vec<&RawRow> = rows
                .iter()
                .filter(|r| {
                    r.posterior_id == lp.id && r.estimator == cell.estimator && r.k == cell.k
                })
                .collect();
            let r = cell_rows.len() as f64;
            let ses: Vec<f64> = cell_rows.iter().filter_map(|r| r.std_err_nats).collect();
            // SE of the mean over R independent repeats: sqrt(Σ se²) / R.
            let mi_se = (ses.len() == cell_rows.len())
                .then(|| ses.iter().map(|s| s * s).sum::<f64>().sqrt() / r);
            // I ≤ KL(q‖p) too (KL(q^G‖p) = KL − I ≥ 0 for the permutation-invariant
            // prior): an upper bound above KL is cut there as well.
            let upper = cell
                .estimator
                .parse::<EstimatorId>()
                .is_ok_and(EstimatorId::is_upper);
            let cut_at_kl = upper && cell.mean_nats > kl;
            let mi = if cut_at_kl { kl } else { cell.mean_nats };
            let (elbo_sym, elbo_sym_se) = match (&l, mi_se) {
                (Some(l), se) => {
                    let n = l.n_data as f64;
                    (
                        Some(l.elbo_per_point + mi / n),
                        Some(
                            (l.elbo_per_point_std_err.powi(2)
                                + se.unwrap_or(0.0).powi(2) / (n * n))
                                .sqrt(),
                        ),
                    )
                }
                (None, _) => (None, None),
            };
            out.push(BoundRow {
                posterior_id: lp.id.clone(),
                data: spec.clone(),
                n_data: l.as_ref().map(|l| l.n_data as u64),
                estimator: cell.estimator.clone(),
                k: cell.k,
                elbo_per_point: l.as_ref().map(|l| l.elbo_per_point),
                elbo_per_point_std_err: l.as_ref().map(|l| l.elbo_per_point_std_err),
                kl_nats: kl,
                mi_nats: mi,
                mi_raw_nats: cell.mean_raw_nats,
                n_cut: cell.n_cut,
                cut_at_kl,
                prior_scale: lp.file.prior_scale,
                mi_std_err_nats: mi_se,
                elbo_sym_per_point: elbo_sym,
                elbo_sym_per_point_std_err: elbo_sym_se,
                kl_sym_nats: kl - mi,
                ln_group_order_nats: cell_rows[0].ln_group_order_nats,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
