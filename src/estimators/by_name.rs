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
    /// The annealed (bidirectional Monte Carlo) interval on I for MLPs of any depth:
    /// lower and upper bound from the same draws, one row per number of temperatures T
    /// (its K) and repeat.
    Annealed,
    /// The deterministic Bhattacharyya lower bound (one hidden layer).
    PairwiseLower,
    /// The deterministic KL upper bound (one hidden layer).
    PairwiseUpper,
}

impl EstimatorKind {
    /// Every estimator a user can name, in the order of [`ESTIMATOR_NAMES`].
    pub const ALL: [EstimatorKind; 9] = [
        EstimatorKind::InfoNce,
        EstimatorKind::Sandwich,
        EstimatorKind::Annealed,
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
            EstimatorKind::Annealed => "annealed",
            EstimatorKind::PairwiseLower => "pairwise-lower",
            EstimatorKind::PairwiseUpper => "pairwise-upper",
        }
    }

    /// Whether the estimator has one row per K (for the annealed bounds, K is the number
    /// of temperatures T).
    pub fn uses_k(self) -> bool {
        matches!(
            self,
            EstimatorKind::InfoNce | EstimatorKind::Sandwich | EstimatorKind::Annealed
        )
    }

    /// The smallest K it takes: 2 for the sandwich (the identity and a proposal draw),
    /// else 1.
    pub fn min_k(self) -> usize {
        match self {
            EstimatorKind::Sandwich => 2,
            _ => 1,
        }
    }

    /// Its lower and upper side, for an estimator whose two bounds come from the same
    /// draws (one row of a report carries both).
    pub const fn sides(self) -> Option<(EstimatorId, EstimatorId)> {
        match self {
            EstimatorKind::Sandwich => {
                Some((EstimatorId::SandwichLower, EstimatorId::SandwichUpper))
            }
            EstimatorKind::Annealed => {
                Some((EstimatorId::AnnealedLower, EstimatorId::AnnealedUpper))
            }
            _ => None,
        }
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
            "annealed" | "annealed-lower" | "annealed-upper" => Ok(EstimatorKind::Annealed),
            "pairwise-lower" => Ok(EstimatorKind::PairwiseLower),
            "pairwise-upper" => Ok(EstimatorKind::PairwiseUpper),
            _ => Err(Error::invalid(
                "estimator",
                s,
                "expected `infonce`, `exact` (or one exact estimator: `exact-enumeration`, `exact-permanent`, `exact-pruned`), `sandwich` or `annealed` (both bounds from the same draws), `pairwise` (both bounds), `pairwise-lower` or `pairwise-upper`",
            )),
        }
    }
}

/// The names of [`EstimatorKind::ALL`]: what `estimate` takes (`ik` also means
/// `infonce`).
pub const ESTIMATOR_NAMES: [&str; 9] = {
    let mut names = [""; 9];
    let mut i = 0;
    while i < 9 {
        names[i] = EstimatorKind::ALL[i].name();
        i += 1;
    }
    names
};

impl EstimatorKind {
    /// The estimator on `q`, with K (for `infonce`; for `sandwich`, and for `annealed`
    /// whose K is its number of temperatures T, the lower side, whose estimate carries
    /// the upper bound from the same draws), S draws and `seed`.
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
            EstimatorKind::Annealed => Box::new(
                Annealed::new(need_k("annealed")?)?
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

/// An estimator with its settings, as one value: what a user names, in text
/// `infonce(k=64, samples=500, seed=3)` (`Display` and `FromStr`, and so serde, use that
/// form; a bare name takes the defaults: S = 1000, seed 0). The setters never fail;
/// [`check`](Self::check) refuses, once and naming the setting, what is not valid
/// (linfa's parameter guard), and [`build`](Self::build) and
/// [`estimate`](Self::estimate) check first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EstimatorSpec {
    kind: EstimatorKind,
    k: Option<usize>,
    samples: usize,
    seed: u64,
}

impl EstimatorSpec {
    /// The draws S of a spec that names none.
    pub const DEFAULT_SAMPLES: usize = 1000;

    /// `kind` with no K, S = [`DEFAULT_SAMPLES`](Self::DEFAULT_SAMPLES) and seed 0.
    pub fn new(kind: EstimatorKind) -> Self {
        EstimatorSpec {
            kind,
            k: None,
            samples: Self::DEFAULT_SAMPLES,
            seed: 0,
        }
    }

    /// With contrast size K (checked by [`check`](Self::check)).
    pub fn with_k(mut self, k: usize) -> Self {
        self.k = Some(k);
        self
    }

    /// With `samples` weight draws S.
    pub fn with_samples(mut self, samples: usize) -> Self {
        self.samples = samples;
        self
    }

    /// With the seed of the draws.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Which estimator.
    pub fn kind(&self) -> EstimatorKind {
        self.kind
    }

    /// K, where it has one.
    pub fn k(&self) -> Option<usize> {
        self.k
    }

    /// The weight draws S.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Refuses settings that are not valid, naming the first: a missing K where the
    /// estimator has one, a K where it has none, a K its constructor refuses (InfoNCE
    /// needs K ≥ 1, the sandwich K ≥ 2, the annealed bounds T ≥ 1), or S = 0.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `k` or `samples`.
    pub fn check(&self) -> Result<()> {
        let name = self.kind.name();
        match (self.kind.uses_k(), self.k) {
            (true, None) => return Err(Error::invalid("k", "None", format!("{name} needs K"))),
            (false, Some(k)) => {
                return Err(Error::invalid(
                    "k",
                    k,
                    format!("{name} has no K (only infonce, sandwich and annealed do)"),
                ));
            }
            _ => {}
        }
        check_samples(self.samples)?;
        match (self.kind, self.k) {
            (EstimatorKind::InfoNce, Some(k)) => InfoNce::new(k).map(drop),
            (EstimatorKind::Sandwich, Some(k)) => Sandwich::new(k).map(drop),
            (EstimatorKind::Annealed, Some(k)) => Annealed::new(k).map(drop),
            _ => Ok(()),
        }
    }

    /// The estimator on `q` ([`EstimatorKind::build`]), after [`check`](Self::check).
    ///
    /// # Errors
    ///
    /// Those of [`check`](Self::check) and [`EstimatorKind::build`].
    pub fn build(&self, q: &MeanFieldGaussian) -> Result<Box<dyn MiEstimator>> {
        self.check()?;
        self.kind.build(q, self.k, self.samples, self.seed)
    }

    /// The estimate of `I(g; ω)` for `q` within `limits`. An interval's (the sandwich's,
    /// the annealed bounds') is its lower bound carrying the [`Interval`] of both bounds
    /// from the same draws, as its lower side's estimate always does.
    ///
    /// # Errors
    ///
    /// Those of [`build`](Self::build) and of the estimate.
    pub fn estimate(&self, q: &MeanFieldGaussian, limits: &Limits) -> Result<Estimate> {
        // `build` checks.
        self.build(q)?.estimate_within(q, limits)
    }
}

impl std::fmt::Display for EstimatorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind.name())?;
        let mut parts = Vec::new();
        if let Some(k) = self.k {
            parts.push(format!("k={k}"));
        }
        if !matches!(
            self.kind,
            EstimatorKind::PairwiseLower | EstimatorKind::PairwiseUpper
        ) {
            parts.push(format!("samples={}", self.samples));
            parts.push(format!("seed={}", self.seed));
        }
        if !parts.is_empty() {
            write!(f, "({})", parts.join(", "))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for EstimatorSpec {
    type Err = Error;

    /// `name` or `name(key=value, …)` with the keys `k`, `samples` and `seed`, each at
    /// most once; then [`check`](EstimatorSpec::check).
    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        let (name, args) = match text.split_once('(') {
            Some((name, rest)) => {
                let Some(args) = rest.trim_end().strip_suffix(')') else {
                    return Err(Error::invalid(
                        "estimator",
                        text,
                        "expected name(key=value, …) with a closing parenthesis",
                    ));
                };
                (name, args)
            }
            None => (text, ""),
        };
        let mut spec = EstimatorSpec::new(EstimatorKind::parse(name)?);
        let mut seen: Vec<&str> = Vec::new();
        for part in args.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(Error::invalid(
                    "estimator",
                    text,
                    format!("`{part}` is not key=value"),
                ));
            };
            let key = key.trim();
            if seen.contains(&key) {
                return Err(Error::invalid(
                    "estimator",
                    text,
                    format!("`{key}` is given twice"),
                ));
            }
            seen.push(key);
            let number = |v: &str| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| Error::invalid(key, v.trim(), "expected a whole number ≥ 0"))
            };
            match key {
                "k" => spec.k = Some(number(value)? as usize),
                "samples" => spec.samples = number(value)? as usize,
                "seed" => spec.seed = number(value)?,
                other => {
                    return Err(Error::invalid(
                        "estimator",
                        text,
                        format!("unknown setting `{other}` (expected k, samples, seed)"),
                    ));
                }
            }
        }
        spec.check()?;
        Ok(spec)
    }
}

impl serde::Serialize for EstimatorSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EstimatorSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
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
    let mut spec = EstimatorSpec::new(EstimatorKind::parse(name)?)
        .with_samples(samples)
        .with_seed(seed);
    spec.k = k;
    spec.build(q)
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
            let k = EstimatorKind::parse(name).unwrap().uses_k().then_some(4);
            let e = estimator_by_name(&q, name, k, 10, 1).unwrap();
            let id = e.id().name();
            let agrees = match name {
                "sandwich" => id == "sandwich-lower",
                "annealed" => id == "annealed-lower",
                "exact" => id.starts_with("exact"),
                "pairwise-lower" => id == "pairwise-bhattacharyya-lower",
                "pairwise-upper" => id == "pairwise-kl-upper",
                n => id == n,
            };
            assert!(agrees, "{name} built {id}");
        }
        let e = estimator_by_name(&q, "infonce", None, 10, 1).err().unwrap();
        assert!(e.to_string().contains("infonce needs K"), "{e}");
        let e = estimator_by_name(&q, "exact", Some(4), 10, 1)
            .err()
            .unwrap();
        assert!(e.to_string().contains("exact has no K"), "{e}");
        let e = estimator_by_name(&q, "magic", Some(4), 10, 1)
            .err()
            .unwrap();
        assert!(e.to_string().contains("expected `infonce`, `exact`"), "{e}");
    }

    /// A spec reads back from its text and from serde as itself; the setters never
    /// fail and `check` names what is wrong; a bare name takes the defaults.
    #[test]
    fn specs_read_back_and_check_once() {
        let spec = EstimatorSpec::new(EstimatorKind::Sandwich)
            .with_k(16)
            .with_samples(200)
            .with_seed(3);
        assert_eq!(spec.to_string(), "sandwich(k=16, samples=200, seed=3)");
        assert_eq!(spec.to_string().parse::<EstimatorSpec>().unwrap(), spec);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(json, "\"sandwich(k=16, samples=200, seed=3)\"");
        assert_eq!(serde_json::from_str::<EstimatorSpec>(&json).unwrap(), spec);
        let exact: EstimatorSpec = "exact-permanent".parse().unwrap();
        assert_eq!((exact.samples(), exact.seed(), exact.k()), (1000, 0, None));
        assert_eq!(
            "pairwise-lower"
                .parse::<EstimatorSpec>()
                .unwrap()
                .to_string(),
            "pairwise-lower"
        );
        for (text, words) in [
            ("infonce", "infonce needs K"),
            ("exact(k=4)", "exact has no K"),
            ("sandwich(k=1)", "K >= 2"),
            ("infonce(k=4, samples=0)", "samples"),
            ("infonce(k=4, k=5)", "given twice"),
            (
                "infonce(k=4, temperature=2)",
                "unknown setting `temperature`",
            ),
            ("infonce(k=four)", "whole number"),
            ("infonce(k=4", "closing parenthesis"),
            ("magic(k=4)", "expected `infonce`"),
        ] {
            let e = text.parse::<EstimatorSpec>().unwrap_err().to_string();
            assert!(e.contains(words), "{text}: {e}");
        }
        // Setters never fail: the same bad K is refused by check, build and estimate.
        let bad = EstimatorSpec::new(EstimatorKind::InfoNce).with_k(0);
        assert!(bad.check().is_err());
        let arch = Arch::builder(vec![2, 3, 1]).check().unwrap();
        let p = arch.n_params();
        let q = MeanFieldGaussian::from_mu_sigma(arch, vec![0.1; p], vec![0.5; p]).unwrap();
        assert!(bad.build(&q).is_err());
        assert!(bad.estimate(&q, &Limits::default()).is_err());
        // The sandwich's estimate carries both bounds from the same draws.
        let e = spec.estimate(&q, &Limits::default()).unwrap();
        let i = e.interval.clone().expect("an interval");
        assert_eq!(i.lower.to_bits(), e.value.to_bits());
        assert!(i.upper >= i.lower - 1e-9 && i.width_std_err.is_some());
        let (lo, up) = i.cut();
        assert!(0.0 <= lo && lo <= up && up <= i.ln_group_order);
    }
}
