//! The registry of estimators a user names (`--estimators`, Python's `estimate` and
//! `grid`): one list of names, their parsing, and the estimator each builds with its K,
//! S and seed.

use super::*;

/// An estimator as a user names it (`--estimators`, Python's `estimate` and `grid`):
/// the one registry of names, their parsing, and the estimator each builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EstimatorKind {
    /// The paper's Î^K, one row per K.
    InfoNce,
    /// Exact I: the permanent for one hidden layer (width ≤ 24; wider layers by the pruned
    /// block permanent with its proven bracket), else enumeration.
    Exact,
    /// Exact I by enumerating the group.
    ExactEnumeration,
    /// Exact I by the permanent (one hidden layer of width ≤ 24).
    ExactPermanent,
    /// Exact I by the pruned block permanent, within its proven bracket.
    ExactPruned,
    /// The proposal-based interval on I: lower and upper bound from the same draws, one
    /// row per K and repeat with both bounds and their paired width.
    Sandwich,
    /// The deterministic Bhattacharyya lower bound (one hidden layer).
    PairwiseLower,
    /// The deterministic KL upper bound (one hidden layer).
    PairwiseUpper,
}

impl EstimatorKind {
    /// Every estimator a user can name, in the order of [`ESTIMATOR_NAMES`].
    pub const ALL: [EstimatorKind; 8] = [
        EstimatorKind::InfoNce,
        EstimatorKind::Sandwich,
        EstimatorKind::Exact,
        EstimatorKind::ExactEnumeration,
        EstimatorKind::ExactPermanent,
        EstimatorKind::ExactPruned,
        EstimatorKind::PairwiseLower,
        EstimatorKind::PairwiseUpper,
    ];

    /// The name in reports and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            EstimatorKind::InfoNce => "infonce",
            EstimatorKind::Exact => "exact",
            EstimatorKind::ExactEnumeration => "exact-enumeration",
            EstimatorKind::ExactPermanent => "exact-permanent",
            EstimatorKind::ExactPruned => "exact-pruned",
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
            "exact-enumeration" => Ok(EstimatorKind::ExactEnumeration),
            "exact-permanent" => Ok(EstimatorKind::ExactPermanent),
            "exact-pruned" => Ok(EstimatorKind::ExactPruned),
            "sandwich" | "sandwich-lower" | "sandwich-upper" => Ok(EstimatorKind::Sandwich),
            "pairwise-lower" => Ok(EstimatorKind::PairwiseLower),
            "pairwise-upper" => Ok(EstimatorKind::PairwiseUpper),
            _ => Err(Error::invalid(
                "estimator",
                s,
                "expected `infonce`, `exact` (or one exact estimator: `exact-enumeration`, `exact-permanent`, `exact-pruned`), `sandwich` (both bounds from the same draws), `pairwise` (both bounds), `pairwise-lower` or `pairwise-upper`",
            )),
        }
    }
}

/// The names of [`EstimatorKind::ALL`]: what `estimate` takes (`ik` also means
/// `infonce`).
pub const ESTIMATOR_NAMES: [&str; 8] = {
    let mut names = [""; 8];
    let mut i = 0;
    while i < 8 {
        names[i] = EstimatorKind::ALL[i].name();
        i += 1;
    }
    names
};

impl EstimatorKind {
    /// The estimator on `q`, with K (for `infonce` and `sandwich`, whose lower side's
    /// estimate carries the upper bound from the same draws), S draws and `seed`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for a missing K, settings its constructor refuses, or
    /// `exact` where no exact estimator applies to `q`.
    pub fn build(
        self,
        q: &MeanFieldGaussian,
        k: Option<usize>,
        samples: usize,
        seed: u64,
    ) -> Result<Box<dyn MiEstimator>> {
        let need_k =
            |what: &str| k.ok_or_else(|| Error::invalid("k", "None", format!("{what} needs K")));
        Ok(match self {
            EstimatorKind::InfoNce => {
                Box::new(InfoNce::new(need_k("infonce")?)?.samples(samples)?.seed(seed))
            }
            EstimatorKind::Sandwich => Box::new(
                Sandwich::new(need_k("sandwich")?)?
                    .samples(samples)?
                    .seed(seed)
                    .lower(),
            ),
            EstimatorKind::Exact => {
                exact_estimator(q, samples, seed, ExactLimits::FULL)?.ok_or_else(|| {
                    Error::invalid(
                        "estimator",
                        "exact",
                        format!(
                            "no exact estimator applies to {} (one hidden layer, pruned blocks of at most 24 units beyond width 24, or a group of at most 10^6 elements)",
                            q.space().describe()
                        ),
                    )
                })?
            }
            EstimatorKind::ExactEnumeration => {
                Box::new(ExactEnumeration::new().samples(samples)?.seed(seed))
            }
            EstimatorKind::ExactPermanent => {
                Box::new(ExactPermanent::new().samples(samples)?.seed(seed))
            }
            EstimatorKind::ExactPruned => Box::new(ExactPruned::new().samples(samples)?.seed(seed)),
            EstimatorKind::PairwiseLower => Box::new(PairwiseBound::Bhattacharyya),
            EstimatorKind::PairwiseUpper => Box::new(PairwiseBound::Kl),
        })
    }
}

/// The estimator called `name` ([`ESTIMATOR_NAMES`]) on `q`: [`EstimatorKind::parse`] then
/// [`EstimatorKind::build`].
///
/// # Errors
///
/// Those of both.
pub fn estimator_by_name(
    q: &MeanFieldGaussian,
    name: &str,
    k: Option<usize>,
    samples: usize,
    seed: u64,
) -> Result<Box<dyn MiEstimator>> {
    EstimatorKind::parse(name)?.build(q, k, samples, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::Arch;

    /// Every listed name builds an estimator on a one-hidden-layer posterior, whose own
    /// id agrees with the name; a missing K and an unknown name are named errors.
    #[test]
    fn every_listed_name_builds_its_estimator() {
        let arch = Arch::builder(vec![2, 3, 1]).check().unwrap();
        let p = arch.n_params();
        let q = MeanFieldGaussian::from_mu_sigma(
            arch,
            (0..p).map(|i| 0.1 * i as f64).collect(),
            vec![0.5; p],
        )
        .unwrap();
        for name in ESTIMATOR_NAMES {
            let e = estimator_by_name(&q, name, Some(4), 10, 1).unwrap();
            let id = e.id().name();
            let agrees = match name {
                "sandwich" => id == "sandwich-lower",
                "exact" => id.starts_with("exact"),
                "pairwise-lower" => id == "pairwise-bhattacharyya-lower",
                "pairwise-upper" => id == "pairwise-kl-upper",
                n => id == n,
            };
            assert!(agrees, "{name} built {id}");
        }
        let e = estimator_by_name(&q, "infonce", None, 10, 1).err().unwrap();
        assert!(e.to_string().contains("infonce needs K"), "{e}");
        let e = estimator_by_name(&q, "magic", Some(4), 10, 1)
            .err()
            .unwrap();
        assert!(e.to_string().contains("expected `infonce`, `exact`"), "{e}");
    }
}
