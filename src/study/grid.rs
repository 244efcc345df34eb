//! The `mi-est run` study: a grid of (posterior, estimator, K, repeat) estimates of
//! I(g; ω), summarized into a bias–variance table and a bound table (DESIGN §3
//! "Bias–variance study", §4). Everything here produces plain row structs; the
//! `report` module turns them into Parquet and plots.
//!
//! **Seeds and sharding.** Grid item `(posterior p, estimator e, K, repeat r)` draws with
//! the seed `child_seed(…child_seed(seed, p), hash(e), K, r)`, a function of the item
//! alone, so a sharded run (`item index mod n_shards = shard`) computes exactly the
//! rows of the unsharded run.

use rayon::prelude::*;
use std::path::{Path, PathBuf};

use crate::data::DataSpec;
use crate::elbo::{Likelihood, elbo};
use crate::error::{Error, Result};
use crate::estimators::{
    Estimate, EstimatorId, ExactLimits, InfoNce, MiEstimator, PairwiseBound, Sandwich,
    exact_estimator,
};
use crate::io::{PosteriorFile, load_with_bytes};
use crate::posterior::MeanFieldGaussian;
use crate::rng::child_seed;

/// Which estimator a grid row uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EstimatorKind {
    /// The paper's Î^K, one row per K.
    InfoNce,
    /// Exact I: the permanent for one hidden layer (width ≤ 24; wider layers by the pruned
    /// block permanent with its proven bracket), else enumeration.
    Exact,
    /// The proposal-based interval on I: lower and upper bound from the same draws, one
    /// row per K and repeat with both bounds and their paired width.
    Sandwich,
    /// The deterministic Bhattacharyya lower bound (one hidden layer).
    PairwiseLower,
    /// The deterministic KL upper bound (one hidden layer).
    PairwiseUpper,
}

impl EstimatorKind {
    /// The name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EstimatorKind::InfoNce => "infonce",
            EstimatorKind::Exact => "exact",
            EstimatorKind::Sandwich => "sandwich",
            EstimatorKind::PairwiseLower => "pairwise-lower",
            EstimatorKind::PairwiseUpper => "pairwise-upper",
        }
    }

    /// Whether the estimator has one row per K.
    pub fn uses_k(self) -> bool {
        matches!(self, EstimatorKind::InfoNce | EstimatorKind::Sandwich)
    }

    /// Parses a comma-separated list; `pairwise` stands for both pairwise bounds, and
    /// `sandwich`, `sandwich-lower` and `sandwich-upper` all name the one sandwich
    /// estimator (both of its bounds come from the same draws). Repeats are dropped.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming an unknown estimator.
    pub fn parse_list(items: &[String]) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        for s in items {
            let kinds = if s.trim().eq_ignore_ascii_case("pairwise") {
                vec![EstimatorKind::PairwiseLower, EstimatorKind::PairwiseUpper]
            } else {
                vec![Self::parse(s)?]
            };
            for kind in kinds {
                if !out.contains(&kind) {
                    out.push(kind);
                }
            }
        }
        Ok(out)
    }

    /// Parses one estimator name (`sandwich-lower` and `sandwich-upper` are the sandwich).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the unknown estimator.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "infonce" | "ik" => Ok(EstimatorKind::InfoNce),
            "exact" => Ok(EstimatorKind::Exact),
            "sandwich" | "sandwich-lower" | "sandwich-upper" => Ok(EstimatorKind::Sandwich),
            "pairwise-lower" => Ok(EstimatorKind::PairwiseLower),
            "pairwise-upper" => Ok(EstimatorKind::PairwiseUpper),
            _ => Err(Error::invalid(
                "estimator",
                s,
                "expected `infonce`, `exact`, `sandwich` (both bounds from the same draws), `pairwise` (both bounds), `pairwise-lower` or `pairwise-upper`",
            )),
        }
    }
}

/// Settings of a study.
#[derive(Clone, Debug)]
pub struct GridConfig {
    /// Posterior files.
    pub posteriors: Vec<PathBuf>,
    /// Estimators.
    pub estimators: Vec<EstimatorKind>,
    /// The K grid of the InfoNCE rows.
    pub ks: Vec<usize>,
    /// Weight draws per estimate.
    pub samples: usize,
    /// Repeats per grid cell.
    pub repeats: usize,
    /// Master seed.
    pub seed: u64,
    /// `(shard, n_shards)`: this process computes the items with index ≡ shard mod n.
    pub shard: (usize, usize),
}

impl GridConfig {
    /// Validates the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for no posteriors or estimators, an empty K list,
    /// K = 0, S = 0, R = 0, or a shard index outside `0..n`.
    pub fn check(self) -> Result<Self> {
        if self.posteriors.is_empty() {
            return Err(Error::invalid(
                "posterior",
                "none",
                "give at least one posterior file",
            ));
        }
        if self.estimators.is_empty() {
            return Err(Error::invalid(
                "estimators",
                "none",
                "give at least one estimator",
            ));
        }
        if self.estimators.iter().any(|e| e.uses_k()) && self.ks.is_empty() {
            return Err(Error::invalid("k", "[]", "the K list is empty"));
        }
        if self.ks.contains(&0) {
            return Err(Error::invalid("k", 0, "K counts the identity, so K >= 1"));
        }
        crate::estimators::check_samples(self.samples)?;
        if self.repeats == 0 {
            return Err(Error::invalid("repeats", 0, "need at least one repeat"));
        }
        let (i, n) = self.shard;
        if n == 0 || i >= n {
            return Err(Error::invalid(
                "shard-index",
                i,
                format!("must be in 0..{n} (num-shards {n})"),
            ));
        }
        Ok(self)
    }
}

/// One grid item: which posterior, estimator, K and repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridItem {
    /// Position of the item in the full grid.
    pub index: usize,
    /// Index into the posterior list.
    pub posterior: usize,
    /// The estimator.
    pub estimator: EstimatorKind,
    /// K (InfoNCE only).
    pub k: Option<usize>,
    /// Repeat number.
    pub repeat: usize,
}

impl GridItem {
    /// The item's seed: a function of the item alone.
    pub fn seed(&self, master: u64) -> u64 {
        let e = match self.estimator {
            EstimatorKind::InfoNce => 1,
            EstimatorKind::Exact => 2,
            EstimatorKind::Sandwich => 3,
            EstimatorKind::PairwiseLower | EstimatorKind::PairwiseUpper => 4,
        };
        child_seed(
            child_seed(
                child_seed(child_seed(master, self.posterior as u64), e),
                self.k.unwrap_or(0) as u64,
            ),
            self.repeat as u64,
        )
    }
}

/// The full grid in its fixed order (posterior, estimator, K, repeat).
pub fn grid_items(config: &GridConfig) -> Vec<GridItem> {
    let mut items = Vec::new();
    for p in 0..config.posteriors.len() {
        for &e in &config.estimators {
            let ks: Vec<Option<usize>> = match e {
                e if e.uses_k() => config.ks.iter().map(|&k| Some(k)).collect(),
                _ => vec![None],
            };
            for k in ks {
                for repeat in 0..config.repeats {
                    items.push(GridItem {
                        index: items.len(),
                        posterior: p,
                        estimator: e,
                        k,
                        repeat,
                    });
                }
            }
        }
    }
    items
}

/// One estimate of the grid.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RawRow {
    /// Position in the full grid.
    pub item: u64,
    /// Short id of the posterior (its file stem).
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
    /// Wall time, seconds.
    #[serde(with = "crate::journal::exact")]
    pub wall_s: f64,
}

/// The summary series of raw rows: each sandwich row becomes a `sandwich-lower` and a
/// `sandwich-upper` row (value and standard error of that bound); other rows stay.
pub fn bound_series(rows: &[RawRow]) -> Vec<RawRow> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        match r.upper_nats {
            Some(upper) => {
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
                out.push(side(EstimatorId::SandwichLower, r.mi_nats, r.std_err_nats));
                out.push(side(
                    EstimatorId::SandwichUpper,
                    upper,
                    r.upper_std_err_nats,
                ));
            }
            None => out.push(r.clone()),
        }
    }
    out
}

/// A loaded posterior with its id and file hash.
#[derive(Clone, Debug)]
pub struct LoadedPosterior {
    /// File stem.
    pub id: String,
    /// Path as given.
    pub path: PathBuf,
    /// sha256 of the bytes.
    pub sha256: String,
    /// The file's contents.
    pub file: PosteriorFile,
}

/// Loads every posterior, naming the first bad file.
///
/// # Errors
///
/// The errors of [`crate::io::load`].
pub fn load_posteriors(paths: &[PathBuf]) -> Result<Vec<LoadedPosterior>> {
    paths
        .iter()
        .map(|p| {
            let (file, bytes) = load_with_bytes(p)?;
            Ok(LoadedPosterior {
                id: p
                    .file_stem()
                    .map_or_else(|| "posterior".into(), |s| s.to_string_lossy().into_owned()),
                path: p.clone(),
                sha256: sha256_hex(&bytes),
                file,
            })
        })
        .collect()
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The items of this process's shard (`config.shard`), in grid order.
pub fn shard_items(config: &GridConfig) -> Vec<GridItem> {
    let (shard, n_shards) = config.shard;
    grid_items(config)
        .into_iter()
        .filter(|it| it.index % n_shards == shard)
        .collect()
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
        EstimatorKind::InfoNce => Box::new(
            InfoNce::new(item.k.expect("InfoNCE items have K"))
                .samples(config.samples)
                .seed(seed),
        ),
        EstimatorKind::PairwiseLower => Box::new(PairwiseBound::Bhattacharyya),
        EstimatorKind::PairwiseUpper => Box::new(PairwiseBound::Kl),
        // The lower side's estimate computes both bounds (its cost is the item's).
        EstimatorKind::Sandwich => Box::new(item_sandwich(item, config, seed).lower()),
        EstimatorKind::Exact => exact_estimator(q, config.samples, seed, ExactLimits::FULL).ok_or_else(|| {
            Error::invalid(
                format!("estimator exact for {id}"),
                format!("widths {:?}", q.arch().widths()),
                "exact I needs one hidden layer (pruned blocks of at most 24 units beyond width 24) or a group of at most 10^6 elements",
            )
        })?,
    })
}

fn item_sandwich(item: &GridItem, config: &GridConfig, seed: u64) -> Sandwich {
    Sandwich::new(item.k.expect("sandwich items have K"))
        .samples(config.samples)
        .seed(seed)
}

/// The estimated memory and time of a grid's items, refused up front when over the
/// limits ([`crate::resources`]): the sum of the items' times, the largest item's memory.
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
    let mut total = crate::resources::Cost::default();
    for item in items {
        let lp = &posteriors[item.posterior];
        let q = &lp.file.posterior;
        let est = item_estimator(item, config, q, item.seed(config.seed), &lp.id)?;
        total = total.then(est.cost(q));
    }
    crate::resources::check(&format!("the grid of {} estimates", items.len()), total)?;
    Ok(total)
}

/// Computes this shard's rows, in item order, calling `progress(done, total)` after each.
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
    observer: &dyn crate::observe::Observer,
    journal: Option<&crate::journal::Journal>,
) -> Result<Vec<RawRow>> {
    let items = shard_items(config);
    let total = items.len();
    grid_cost(config, posteriors, &items)?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    items
        .par_iter()
        .map(|item| {
            let key = item.index.to_string();
            if let Some(row) = journal.and_then(|j| j.get::<RawRow>(&key)) {
                let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                observer.progress(d, total);
                return Ok(row);
            }
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
            // The sandwich: both bounds from one set of draws, so the interval is paired.
            let (est, upper): (Estimate, Option<Estimate>) = match item.estimator {
                EstimatorKind::Sandwich => {
                    let (lower, upper) = item_sandwich(item, config, seed)
                        .estimate_both(q)
                        .map_err(named)?;
                    (lower, Some(upper))
                }
                _ => (
                    item_estimator(item, config, q, seed, &lp.id)?
                        .estimate(q)
                        .map_err(named)?,
                    None,
                ),
            };
            let width = upper.as_ref().map(|u| {
                let diffs: Vec<f64> = u.terms.iter().zip(&est.terms).map(|(u, l)| u - l).collect();
                crate::estimators::summarize(&diffs)
            });
            let row = RawRow {
                item: item.index as u64,
                posterior_id: lp.id.clone(),
                posterior_path: lp.path.display().to_string(),
                posterior_sha256: lp.sha256.clone(),
                estimator: match upper {
                    Some(_) => EstimatorKind::Sandwich.name().to_string(),
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
                upper_nats: upper.as_ref().map(|u| u.value),
                upper_std_err_nats: upper.as_ref().and_then(|u| u.std_err),
                width_nats: width.as_ref().map(|w| w.mean),
                width_std_err_nats: width.as_ref().and_then(|w| w.std_err),
                wall_s: est.wall_s,
            };
            if let Some(j) = journal {
                j.record(&key, &row)?;
            }
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            observer.progress(d, total);
            Ok(row)
        })
        .collect()
}

impl RawRow {
    /// The estimator of the row, or `None` for a sandwich row (both bounds, from
    /// [`EstimatorId::SandwichLower`] and [`EstimatorId::SandwichUpper`]).
    pub fn estimator_id(&self) -> Option<EstimatorId> {
        self.estimator.parse().ok()
    }
}

/// One cell of the bias–variance table.
#[derive(Clone, Debug, PartialEq)]
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
    /// Mean over repeats, nats.
    pub mean_nats: f64,
    /// The reference value the bias is measured against, nats.
    pub reference_nats: Option<f64>,
    /// `exact` or `largest-K infonce (lower bound)`.
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
    // Reference per posterior: the exact mean if present, else the largest-K InfoNCE mean.
    let reference = |pid: &str| -> Option<(f64, String)> {
        let exact: Vec<f64> = cells
            .iter()
            .filter(|c| {
                c[0].posterior_id == pid && c[0].estimator_id().is_some_and(EstimatorId::is_exact)
            })
            .flat_map(|c| c.iter().map(|r| r.mi_nats))
            .collect();
        if !exact.is_empty() {
            return Some((mean(&exact), "exact".into()));
        }
        cells
            .iter()
            .filter(|c| c[0].posterior_id == pid && c[0].k.is_some())
            .max_by_key(|c| c[0].k)
            .map(|c| {
                (
                    mean(&c.iter().map(|r| r.mi_nats).collect::<Vec<_>>()),
                    "largest-K infonce (lower bound)".into(),
                )
            })
    };
    cells
        .iter()
        .map(|c| {
            let values: Vec<f64> = c.iter().map(|r| r.mi_nats).collect();
            let m = mean(&values);
            let n = values.len();
            let variance = (n > 1)
                .then(|| values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64);
            let reference = reference(&c[0].posterior_id);
            let is_reference_itself = reference.as_ref().is_some_and(|(_, kind)| kind == "exact")
                && c[0].estimator_id().is_some_and(EstimatorId::is_exact);
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

/// One row of the bound table: per posterior and K (and one row for the exact I).
#[derive(Clone, Debug, PartialEq)]
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
    /// Mean Î over repeats, nats.
    pub mi_nats: f64,
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
/// training configuration, if that can be loaded.
pub fn data_for(lp: &LoadedPosterior, data: Option<&str>) -> Option<String> {
    if let Some(d) = data {
        return Some(d.to_string());
    }
    let cfg: serde_json::Value = serde_json::from_str(lp.file.train_config.as_deref()?).ok()?;
    cfg.get("data_spec")?.as_str().map(str::to_string)
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
) -> Result<Vec<BoundRow>> {
    let rows = &bound_series(rows);
    let bv = series_bias_variance(rows);
    let mut out = Vec::new();
    for lp in posteriors {
        let q = &lp.file.posterior;
        let kl = q.kl_to_prior(lp.file.prior_scale)?;
        let spec = data_for(lp, data);
        let likelihood = lp.file.likelihood.unwrap_or(Likelihood::Softmax);
        let l = match &spec {
            Some(s) => {
                let named = |e: Error| {
                    Error::invalid(format!("data for posterior {}", lp.id), s, e.to_string())
                };
                let parsed: DataSpec = s.parse().map_err(named)?;
                let (train, _) = parsed.load(likelihood, 0).map_err(named)?;
                Some(
                    elbo(
                        q,
                        likelihood,
                        &train,
                        lp.file.prior_scale,
                        elbo_samples,
                        child_seed(seed, 99),
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
            let (elbo_sym, elbo_sym_se) = match (&l, mi_se) {
                (Some(l), se) => {
                    let n = l.n_data as f64;
                    (
                        Some(l.elbo_per_point + cell.mean_nats / n),
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
                mi_nats: cell.mean_nats,
                mi_std_err_nats: mi_se,
                elbo_sym_per_point: elbo_sym,
                elbo_sym_per_point_std_err: elbo_sym_se,
                kl_sym_nats: kl - cell.mean_nats,
                ln_group_order_nats: cell_rows[0].ln_group_order_nats,
            });
        }
    }
    Ok(out)
}

/// Reads the shard settings from the arguments, falling back to
/// `SLURM_ARRAY_TASK_ID`/`SLURM_ARRAY_TASK_COUNT` or `JOB_COMPLETION_INDEX` (with the
/// count from `--num-shards`).
///
/// # Errors
///
/// [`Error::InvalidParameter`] for an environment value that is not a number.
pub fn shard_from_env(index: Option<usize>, count: Option<usize>) -> Result<(usize, usize)> {
    let env = |k: &str| -> Result<Option<usize>> {
        match std::env::var(k) {
            Ok(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid(k, v, "not a number")),
            Err(_) => Ok(None),
        }
    };
    let index = match index {
        Some(i) => Some(i),
        None => match env("SLURM_ARRAY_TASK_ID")? {
            Some(i) => Some(i),
            None => env("JOB_COMPLETION_INDEX")?,
        },
    };
    let count = match count {
        Some(c) => Some(c),
        None => env("SLURM_ARRAY_TASK_COUNT")?,
    };
    Ok(match (index, count) {
        (None, None) => (0, 1),
        (Some(i), Some(n)) => (i, n),
        (Some(i), None) => {
            return Err(Error::invalid(
                "num-shards",
                "missing",
                format!("shard index {i} given without a shard count"),
            ));
        }
        (None, Some(n)) => {
            return Err(Error::invalid(
                "shard-index",
                "missing",
                format!("{n} shards given without a shard index"),
            ));
        }
    })
}

/// The default posterior bundled with the project (relative to the working directory).
pub fn bundled_posterior() -> PathBuf {
    Path::new("data")
        .join("posteriors")
        .join("mnist-small-784-10-10-mfvi.safetensors")
}
