//! What a `mi-est run` grid is: its estimators, settings and items, and which items a
//! shard computes.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::estimators::{Annealed, EstimatorKind, InfoNce, Sandwich};

/// The temperatures of the annealed bounds where a grid names none: T = 1000 (on the
/// 784-256-256-10 posterior of docs/estimators.md, a width of about 5 % of I; more
/// temperatures narrow it as 1/T).
pub const DEFAULT_TEMPERATURES: [usize; 1] = [1000];
use crate::rng::child_seed;

/// Settings of a study.
#[derive(Clone, Debug)]
pub struct GridConfig {
    /// Posterior files.
    pub posteriors: Vec<PathBuf>,
    /// A permutation spec file under which every posterior is read (docs/specs.md);
    /// `None`: each file's own `permutation_spec` metadata, else an MLP.
    pub spec: Option<PathBuf>,
    /// The forward order of every posterior's layers, by name (`--layers`); `None`: from
    /// the files ([`crate::io::order`]).
    pub layers: Option<Vec<String>>,
    /// The prior scale of posteriors whose files record none (`--prior-scale`); `None`:
    /// N(0, 1).
    pub prior_scale: Option<f64>,
    /// Estimators.
    pub estimators: Vec<EstimatorKind>,
    /// The K grid of the InfoNCE rows (and of the sandwich, which takes its K >= 2).
    pub ks: Vec<usize>,
    /// The numbers of temperatures T of the annealed bounds' rows (their `k` column);
    /// unused without the annealed estimator ([`DEFAULT_TEMPERATURES`]).
    pub temperatures: Vec<usize>,
    /// Weight draws per estimate.
    pub samples: usize,
    /// Repeats per grid cell.
    pub repeats: usize,
    /// Master seed.
    pub seed: u64,
    /// `(shard, n_shards)`: this process computes the items with index ≡ shard mod n.
    pub shard: (usize, usize),
    /// The memory and time the grid may take ([`crate::resources::Limits::default`]:
    /// the machine's); checked for the whole grid before any item runs, and by each
    /// estimate.
    pub limits: crate::resources::Limits,
}

impl GridConfig {
    /// Validates the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for no posteriors or estimators, an empty K list
    /// (or temperature list, with the annealed bounds), K = 0, T = 0, S = 0, R = 0, or a
    /// shard index outside `0..n`.
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
        let annealed = self.estimators.contains(&EstimatorKind::Annealed);
        if self
            .estimators
            .iter()
            .any(|&e| e.uses_k() && e != EstimatorKind::Annealed)
            && self.ks.is_empty()
        {
            return Err(Error::invalid("k", "[]", "the K list is empty"));
        }
        if annealed {
            if self.temperatures.is_empty() {
                return Err(Error::invalid(
                    "temperatures",
                    "[]",
                    "the annealed bounds need at least one number of temperatures",
                ));
            }
            for &t in &self.temperatures {
                Annealed::new(t)?.samples(self.samples)?;
            }
        }
        // The estimators' own constructors, before any work: K counts the identity for
        // every estimator that takes one; the sandwich (which needs K >= 2, one proposal
        // draw beside the identity) takes the K >= 2 of the list.
        for &k in &self.ks {
            InfoNce::new(k)?.samples(self.samples)?;
            if self.estimators.contains(&EstimatorKind::Sandwich) && k >= 2 {
                Sandwich::new(k)?.samples(self.samples)?;
            }
        }
        if self.estimators.contains(&EstimatorKind::Sandwich) && self.ks.iter().all(|&k| k < 2) {
            return Err(Error::invalid(
                "k",
                format!("{:?}", self.ks),
                "the sandwich needs K >= 2 (the identity and K − 1 >= 1 proposal draws), and the K list has none",
            ));
        }
        crate::estimators::check_samples(self.samples)?;
        if self.repeats == 0 {
            return Err(Error::invalid("repeats", 0, "need at least one repeat"));
        }
        // The grid's size, counted before it is listed.
        let per_posterior: u128 = self
            .estimators
            .iter()
            .map(|&e| match e {
                EstimatorKind::Annealed => self.temperatures.len() as u128,
                e if e.uses_k() => self.ks.iter().filter(|&&k| k >= e.min_k()).count() as u128,
                _ => 1,
            })
            .sum();
        let items = per_posterior * self.repeats as u128 * self.posteriors.len() as u128;
        if items > MAX_GRID_ITEMS as u128 {
            return Err(Error::invalid(
                "grid",
                format!("{items} items"),
                format!(
                    "a grid has at most {MAX_GRID_ITEMS} items (posteriors × estimator cells × repeats); ask for fewer repeats or K"
                ),
            ));
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

/// The most items a grid lists (each becomes a row of a few hundred bytes; the
/// estimates' own cost is checked after, item by item).
pub const MAX_GRID_ITEMS: usize = 10_000_000;

/// One grid item: which posterior, estimator, K and repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridItem {
    /// Position of the item in the full grid.
    pub index: usize,
    /// Index into the posterior list.
    pub posterior: usize,
    /// The estimator.
    pub estimator: EstimatorKind,
    /// K (InfoNCE, sandwich), or T (the annealed bounds).
    pub k: Option<usize>,
    /// Repeat number.
    pub repeat: usize,
}

impl GridItem {
    /// The item's seed: a function of the item alone.
    pub fn seed(&self, master: u64) -> u64 {
        let e = match self.estimator {
            EstimatorKind::InfoNce => 1,
            EstimatorKind::Exact
            | EstimatorKind::ExactEnumeration
            | EstimatorKind::ExactPermanent
            | EstimatorKind::ExactPruned => 2,
            EstimatorKind::Sandwich => 3,
            EstimatorKind::Annealed => 5,
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
                EstimatorKind::Annealed => config.temperatures.iter().map(|&t| Some(t)).collect(),
                e if e.uses_k() => config
                    .ks
                    .iter()
                    .filter(|&&k| k >= e.min_k())
                    .map(|&k| Some(k))
                    .collect(),
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

/// The items of this process's shard (`config.shard`), in grid order.
pub fn shard_items(config: &GridConfig) -> Vec<GridItem> {
    let (shard, n_shards) = config.shard;
    grid_items(config)
        .into_iter()
        .filter(|it| it.index % n_shards == shard)
        .collect()
}
