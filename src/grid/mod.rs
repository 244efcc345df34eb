//! The grid of `mi-est run` (and of the Python package's `grid`): (posterior, estimator,
//! K, repeat) estimates of I(g; ω) as raw rows (docs/reports.md). It is part of the lean
//! library; `study::grid` adds the summary tables and `report` the Parquet files and
//! plots.
//!
//! **Seeds and sharding.** Grid item `(posterior p, estimator e, K, repeat r)` draws with
//! the seed `child_seed(…child_seed(seed, p), hash(e), K, r)`, a function of the item
//! alone, so a sharded run (`item index mod n_shards = shard`) computes exactly the
//! rows of the unsharded run.

mod check;
mod config;
mod posteriors;

use crate::execute::Schedule;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::estimators::{
    Estimate, EstimatorId, EstimatorKind, ExactLimits, MiEstimator, exact_estimator,
};
use crate::io::{PosteriorFile, ReadOptions, load_with_bytes};
use crate::posterior::MeanFieldGaussian;
use crate::symmetry::spec::PermutationSpec;

pub use check::check_rows;
pub use config::{DEFAULT_TEMPERATURES, GridConfig, GridItem, grid_items, shard_items};
use posteriors::display_source;
pub use posteriors::{
    LoadedPosterior, LoadedSpec, default_estimators, load_posteriors, load_spec, posterior_ids,
    sha256_hex,
};

/// One estimate of the grid.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RawRow {
    /// Position in the full grid.
    pub item: u64,
    /// Short id of the posterior: its file stem, or the shortest suffix of its path
    /// that no other posterior of the run shares ([`posterior_ids`]).
    pub posterior_id: String,
    /// The posterior's path as given.
    pub posterior_path: String,
    /// sha256 of the posterior file.
    pub posterior_sha256: String,
    /// `infonce`, `exact-permanent` or `exact-enumeration`.
    pub estimator: String,
    /// K (InfoNCE rows).
    pub k: Option<u64>,
    /// Weight draws S.
    pub n_samples: u64,
    /// Repeat number.
    pub repeat: u64,
    /// The item's seed.
    pub seed: u64,
    /// The estimate, nats.
    #[serde(with = "crate::journal::exact")]
    pub mi_nats: f64,
    /// Its Monte Carlo standard error, nats.
    #[serde(with = "crate::journal::exact::option")]
    pub std_err_nats: Option<f64>,
    /// The largest value one term can take (ln K or ln|G|), nats.
    #[serde(with = "crate::journal::exact")]
    pub ln_cap_nats: f64,
    /// ln|G|, nats.
    #[serde(with = "crate::journal::exact")]
    pub ln_group_order_nats: f64,
    /// H(q), nats.
    #[serde(with = "crate::journal::exact")]
    pub entropy_q_nats: f64,
    /// The largest per-draw term's share of their sum.
    #[serde(with = "crate::journal::exact::option")]
    pub max_term_share: Option<f64>,
    /// Sandwich rows: the upper bound on I from the same draws as the lower bound
    /// (`mi_nats`), nats.
    #[serde(with = "crate::journal::exact::option")]
    pub upper_nats: Option<f64>,
    /// Sandwich rows: the upper bound's Monte Carlo standard error, nats.
    #[serde(with = "crate::journal::exact::option")]
    pub upper_std_err_nats: Option<f64>,
    /// Sandwich rows: the interval width, the mean over draws of upper − lower, nats.
    #[serde(with = "crate::journal::exact::option")]
    pub width_nats: Option<f64>,
    /// Sandwich rows: the standard error of the width from the paired per-draw
    /// differences, nats.
    #[serde(with = "crate::journal::exact::option")]
    pub width_std_err_nats: Option<f64>,
    /// `exact-pruned` rows: the proven bracket, the largest per-draw width of the
    /// interval around each term (the true mean lies within `[mi_nats − bracket,
    /// mi_nats]` up to Monte Carlo error), nats.
    #[serde(default, with = "crate::journal::exact::option")]
    pub bracket_nats: Option<f64>,
    /// Wall time, seconds.
    #[serde(with = "crate::journal::exact")]
    pub wall_s: f64,
}

crate::row::row!(RawRow {
    item: U64,
    posterior_id: Str,
    posterior_path: Str,
    posterior_sha256: Str,
    estimator: Str,
    k: OptU64,
    n_samples: U64,
    repeat: U64,
    seed: U64,
    mi_nats: F64,
    std_err_nats: OptF64,
    ln_cap_nats: F64,
    ln_group_order_nats: F64,
    entropy_q_nats: F64,
    max_term_share: OptF64,
    upper_nats: OptF64,
    upper_std_err_nats: OptF64,
    width_nats: OptF64,
    width_std_err_nats: OptF64,
    bracket_nats: OptF64,
    wall_s: F64,
});

impl RawRow {
    /// The estimator of the row, or `None` for an interval's row (`sandwich`,
    /// `annealed`: both bounds, of [`EstimatorKind::sides`]).
    pub fn estimator_id(&self) -> Option<EstimatorId> {
        self.estimator.parse().ok()
    }
}

/// The estimator of one grid item.
fn item_estimator(
    item: &GridItem,
    config: &GridConfig,
    q: &MeanFieldGaussian,
    seed: u64,
    id: &str,
) -> Result<Box<dyn MiEstimator>> {
    Ok(match item.estimator {
        EstimatorKind::Exact => exact_estimator(q, config.samples, seed, ExactLimits::FULL)?.ok_or_else(|| {
            Error::invalid(
                format!("estimator exact for {id}"),
                q.space().describe(),
                "exact I needs one hidden layer (pruned blocks of at most 24 units beyond width 24) or a group of at most 10^6 elements",
            )
        })?,
        // An interval's lower side: its estimate computes both bounds (its cost is the
        // item's).
        _ => item_spec(item, config, seed).build(q)?,
    })
}

/// The estimator and settings of one grid item, as one value.
fn item_spec(item: &GridItem, config: &GridConfig, seed: u64) -> crate::estimators::EstimatorSpec {
    let spec = crate::estimators::EstimatorSpec::new(item.estimator)
        .with_samples(config.samples)
        .with_seed(seed);
    match item.k {
        Some(k) => spec.with_k(k),
        None => spec,
    }
}

/// The estimated memory and time of a grid's items, refused up front when over the
/// limits ([`crate::resources`]): the sum of the items' times, and the largest item's
/// memory once per item that runs at the same time (one per thread).
///
/// # Errors
///
/// [`Error::ResourceLimit`] with the estimate; the errors of building an item's
/// estimator.
pub fn grid_cost(
    config: &GridConfig,
    posteriors: &[LoadedPosterior],
    items: &[GridItem],
) -> Result<crate::resources::Cost> {
    for (i, lp) in posteriors.iter().enumerate() {
        if let Some(j) = posteriors[..i].iter().position(|o| o.id == lp.id) {
            return Err(Error::invalid(
                "posterior id",
                &lp.id,
                format!(
                    "two posteriors ({} and {}) have this id; each posterior's rows must stay its own",
                    display_source(&posteriors[j]),
                    display_source(lp)
                ),
            ));
        }
    }
    let mut total = crate::resources::Cost::default();
    for item in items {
        let lp = &posteriors[item.posterior];
        let q = &lp.file.posterior;
        let est = item_estimator(item, config, q, item.seed(config.seed), &lp.id)?;
        total = total.then(est.cost(q));
    }
    // Items run in parallel, one per thread: as many of the largest at once.
    let parallel = rayon::current_num_threads().clamp(1, items.len().max(1));
    total.bytes *= parallel as f64;
    crate::resources::check(
        &format!("the grid of {} estimates", items.len()),
        total,
        &config.limits,
    )?;
    Ok(total)
}

/// A grid (this process's shard of it) whose cost was estimated once and found within
/// the limits: what [`run_grid`] runs. Only [`check_grid`] makes one.
#[derive(Clone, Debug)]
pub struct CheckedGrid {
    items: Vec<GridItem>,
    cost: crate::resources::Cost,
}

impl CheckedGrid {
    /// The items to compute, in order.
    pub fn items(&self) -> &[GridItem] {
        &self.items
    }

    /// Their estimated cost.
    pub fn cost(&self) -> crate::resources::Cost {
        self.cost
    }
}

/// This shard's items with their cost checked against the limits ([`grid_cost`]), to be
/// run by [`run_grid`].
///
/// # Errors
///
/// Those of [`grid_cost`].
pub fn check_grid(config: &GridConfig, posteriors: &[LoadedPosterior]) -> Result<CheckedGrid> {
    let items = shard_items(config);
    let cost = grid_cost(config, posteriors, &items)?;
    Ok(CheckedGrid { items, cost })
}

/// Computes the checked grid's rows, in item order, telling `observer` as each finishes.
///
/// # Errors
///
/// The estimators' errors (e.g. a group too large for the exact estimator is reported
/// with the posterior's id).
///
/// With a `journal`, items recorded there are taken from it instead of recomputed, and
/// every newly finished item is recorded (so a killed run resumes; [`crate::journal`]).
pub fn run_grid(
    config: &GridConfig,
    posteriors: &[LoadedPosterior],
    grid: &CheckedGrid,
    observer: &dyn crate::observe::Observer,
    journal: Option<&crate::journal::Journal>,
) -> Result<Vec<RawRow>> {
    crate::execute::Executor::new(Some(observer), journal).map(
        &grid.items,
        Schedule::InOrder,
        |_, item| item.index.to_string(),
        |_, item| {
            let lp = &posteriors[item.posterior];
            let q = &lp.file.posterior;
            let seed = item.seed(config.seed);
            let named = |e: Error| match item.estimator {
                EstimatorKind::InfoNce | EstimatorKind::Exact => e,
                _ => Error::invalid(
                    format!("estimator {} for {}", item.estimator.name(), lp.id),
                    item.k.map_or("—".to_string(), |k| k.to_string()),
                    e.to_string(),
                ),
            };
            // An interval (the sandwich, the annealed bounds): both bounds from one set of
            // draws, so their width is paired.
            let (est, interval): (Estimate, Option<crate::estimators::Interval>) =
                match item.estimator.sides() {
                    Some(_) => {
                        let lower = item_spec(item, config, seed)
                            .estimate(q, &config.limits)
                            .map_err(named)?;
                        let interval = lower.interval.clone();
                        (lower, interval)
                    }
                    _ => (
                        item_estimator(item, config, q, seed, &lp.id)?
                            .estimate_within(q, &config.limits)
                            .map_err(named)?,
                        None,
                    ),
                };
            let row = RawRow {
                item: item.index as u64,
                posterior_id: lp.id.clone(),
                posterior_path: lp.path.display().to_string(),
                posterior_sha256: lp.sha256.clone(),
                estimator: match &interval {
                    Some(_) => item.estimator.name().to_string(),
                    None => est.estimator.to_string(),
                },
                k: est.k.map(|k| k as u64),
                n_samples: est.n_samples as u64,
                repeat: item.repeat as u64,
                seed,
                mi_nats: est.value,
                std_err_nats: est.std_err,
                ln_cap_nats: est.ln_cap,
                ln_group_order_nats: est.ln_group_order,
                entropy_q_nats: est.entropy_q,
                max_term_share: est.max_term_share,
                upper_nats: interval.as_ref().map(|i| i.upper),
                upper_std_err_nats: interval.as_ref().and_then(|i| i.upper_std_err),
                width_nats: interval.as_ref().map(|i| i.width),
                width_std_err_nats: interval.as_ref().and_then(|i| i.width_std_err),
                bracket_nats: est.bracket,
                wall_s: est.wall_s,
            };
            // Never a number that cannot be right written as if it were.
            row.check_values().map_err(|e| {
                Error::invalid(
                    format!("estimate {} for {}", row.estimator, lp.id),
                    item.k.map_or("—".to_string(), |k| format!("K = {k}")),
                    e.to_string(),
                )
            })?;
            Ok(row)
        },
    )
}
