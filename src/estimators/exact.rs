//! The one answer to "can exact I be computed for this posterior, and by which
//! estimator": the permanent of the unit cost matrix for one hidden layer, the pruned
//! permanent (within its proven bracket) for wider single layers, enumeration of the
//! group for deeper nets with a small group. [`ExactLimits`] says how far each may go.

use crate::error::{Error, Result};
use crate::estimators::{
    Estimate, ExactEnumeration, ExactPermanent, ExactPruned, MAX_PERMANENT_WIDTH, MiEstimator,
};
use crate::posterior::MeanFieldGaussian;
use crate::symmetry::DEFAULT_MAX_ENUMERATION;

/// How large a problem [`exact_estimator`] takes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExactLimits {
    /// The widest single hidden layer computed by the full permanent; wider ones go to
    /// the pruned permanent.
    pub max_permanent_width: usize,
    /// The largest group enumerated (nets with more than one hidden layer).
    pub max_group_order: u64,
}

impl ExactLimits {
    /// What `mi-est run` and the studies accept: the permanent up to
    /// [`MAX_PERMANENT_WIDTH`], enumeration up to [`DEFAULT_MAX_ENUMERATION`] elements.
    pub const FULL: ExactLimits = ExactLimits {
        max_permanent_width: MAX_PERMANENT_WIDTH,
        max_group_order: DEFAULT_MAX_ENUMERATION,
    };

    /// What a report beside training computes without being asked (`mi-est train`,
    /// `reproduce mnist-objectives`): the permanent up to width 16, enumeration up to
    /// 10⁴ elements, so that the report never costs more than the training.
    pub const CHEAP: ExactLimits = ExactLimits {
        max_permanent_width: 16,
        max_group_order: 10_000,
    };
}

/// The exact estimator for `q` within `limits`, with `n_samples` draws and `seed`, or
/// `None` where none applies.
///
/// # Errors
///
/// [`Error::InvalidParameter`] naming `samples` for S = 0.
pub fn exact_estimator(
    q: &MeanFieldGaussian,
    n_samples: usize,
    seed: u64,
    limits: ExactLimits,
) -> Result<Option<Box<dyn MiEstimator>>> {
    // Fixed tensors that pin units: the estimator of their stabilizer's space (every
    // estimator estimates there itself).
    if let Some((_, reduced)) = super::stabilizer_of(q)? {
        return match reduced {
            Some(r) => exact_estimator(&r, n_samples, seed, limits),
            // No permutation left: every estimator returns ln|G| − ln|S| exactly.
            None => Ok(Some(Box::new(
                ExactEnumeration::new().samples(n_samples)?.seed(seed),
            ))),
        };
    }
    let single = q.space().single_unit_group();
    let sizes = q.space().group().hidden_widths().to_vec();
    Ok(if single && sizes[0] <= limits.max_permanent_width {
        Some(Box::new(
            ExactPermanent::new().samples(n_samples)?.seed(seed),
        ))
    } else if single {
        // A wide layer: exact up to a proven bracket while the pruned blocks stay small.
        Some(Box::new(ExactPruned::new().samples(n_samples)?.seed(seed)))
    } else if q
        .space()
        .group()
        .check_enumerable(limits.max_group_order)
        .is_ok()
    {
        Some(Box::new(
            ExactEnumeration::new().samples(n_samples)?.seed(seed),
        ))
    } else {
        None
    })
}

/// The estimate of [`exact_estimator`], or `None` where no exact estimator applies or
/// the pruned permanent cannot split the layer (blocks too wide, or no perfect matching
/// left after pruning).
///
/// # Errors
///
/// The estimator's other errors; work beyond `resources`.
pub fn exact_estimate(
    q: &MeanFieldGaussian,
    n_samples: usize,
    seed: u64,
    limits: ExactLimits,
    resources: &crate::resources::Limits,
) -> Result<Option<Estimate>> {
    let Some(est) = exact_estimator(q, n_samples, seed, limits)? else {
        return Ok(None);
    };
    match est.estimate_within(q, resources) {
        Ok(e) => Ok(Some(e)),
        Err(Error::WidthTooLarge { .. }) => Ok(None),
        Err(Error::InvalidParameter { field, .. }) if field == "margin" => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, feature = "train"))]
mod tests {
    use super::*;
    use crate::demo::demo_posterior;
    use crate::estimators::EstimatorId;
    use crate::weights::Activation;

    fn chosen(widths: &[usize], limits: ExactLimits) -> Option<EstimatorId> {
        let q = demo_posterior(widths, Activation::Relu, 0, -3.0).unwrap();
        exact_estimator(&q, 2, 0, limits).unwrap().map(|e| e.id())
    }

    #[test]
    fn one_chooser_with_named_limits() {
        use EstimatorId::*;
        let (full, cheap) = (ExactLimits::FULL, ExactLimits::CHEAP);
        assert_eq!(chosen(&[3, 16, 2], cheap), Some(ExactPermanent));
        assert_eq!(chosen(&[3, 20, 2], cheap), Some(ExactPruned));
        assert_eq!(chosen(&[3, 20, 2], full), Some(ExactPermanent));
        assert_eq!(chosen(&[3, 40, 2], full), Some(ExactPruned));
        // 2-hidden-layer groups: 3!·4! = 144; 7!·7! ≈ 2.5e7.
        assert_eq!(chosen(&[2, 3, 4, 1], cheap), Some(ExactEnumeration));
        assert_eq!(chosen(&[2, 7, 7, 1], full), None);
        // 6!·6! = 518,400: within FULL, beyond CHEAP.
        assert_eq!(chosen(&[2, 6, 6, 1], full), Some(ExactEnumeration));
        assert_eq!(chosen(&[2, 6, 6, 1], cheap), None);
        let q = demo_posterior(&[2, 3, 4, 1], Activation::Relu, 0, -3.0).unwrap();
        let e = exact_estimate(&q, 3, 1, cheap, &Default::default())
            .unwrap()
            .unwrap();
        assert_eq!((e.estimator, e.n_samples), (ExactEnumeration, 3));
    }
}
