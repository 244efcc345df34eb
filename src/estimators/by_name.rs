//! The estimators a user names (Python's `estimate`, the docs): one list of names, and
//! the estimator each builds with its K, S and seed.

use super::*;

/// The names [`estimator_by_name`] takes: `infonce` (needs K), `sandwich` (needs K ≥ 2;
/// its lower side, whose estimate carries the upper bound from the same draws), `exact`
/// (whichever exact estimator applies), the three exact estimators by their own names,
/// and the two deterministic pairwise bounds.
pub const ESTIMATOR_NAMES: [&str; 8] = [
    "infonce",
    "sandwich",
    "exact",
    "exact-enumeration",
    "exact-permanent",
    "exact-pruned",
    "pairwise-lower",
    "pairwise-upper",
];

/// The estimator called `name` ([`ESTIMATOR_NAMES`]; `ik` is `infonce`) on `q`, with K
/// (for `infonce` and `sandwich`), S draws and `seed`.
///
/// # Errors
///
/// [`Error::InvalidParameter`] for an unknown name, a missing K, settings its
/// constructor refuses, or `exact` where no exact estimator applies to `q`.
pub fn estimator_by_name(
    q: &MeanFieldGaussian,
    name: &str,
    k: Option<usize>,
    samples: usize,
    seed: u64,
) -> Result<Box<dyn MiEstimator>> {
    let need_k =
        |what: &str| k.ok_or_else(|| Error::invalid("k", "None", format!("{what} needs K")));
    Ok(match name {
        "infonce" | "ik" => Box::new(InfoNce::new(need_k("infonce")?)?.samples(samples)?.seed(seed)),
        "sandwich" => Box::new(
            Sandwich::new(need_k("sandwich")?)?
                .samples(samples)?
                .seed(seed)
                .lower(),
        ),
        "exact" => exact_estimator(q, samples, seed, ExactLimits::FULL)?.ok_or_else(|| {
            Error::invalid(
                "estimator",
                "exact",
                format!(
                    "no exact estimator applies to {} (one hidden layer, or a group of at most 10^6 elements)",
                    q.space().describe()
                ),
            )
        })?,
        "exact-enumeration" => Box::new(ExactEnumeration::new().samples(samples)?.seed(seed)),
        "exact-permanent" => Box::new(ExactPermanent::new().samples(samples)?.seed(seed)),
        "exact-pruned" => Box::new(ExactPruned::new().samples(samples)?.seed(seed)),
        "pairwise-lower" => Box::new(PairwiseBound::Bhattacharyya),
        "pairwise-upper" => Box::new(PairwiseBound::Kl),
        other => {
            return Err(Error::invalid(
                "estimator",
                other,
                format!("expected one of {}", ESTIMATOR_NAMES.join(", ")),
            ));
        }
    })
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
        assert!(
            e.to_string().contains("expected one of infonce, sandwich"),
            "{e}"
        );
    }
}
