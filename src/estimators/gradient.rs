//! The symmetrization term with its gradient, outside our trainer: what a PyTorch training
//! loop adds to its ELBO (`mi_est.torch.mi_term`), drawn as the trainer draws it.
//!
//! At step `t` with seed `s` the trainer opens the stream `stream(child_seed(s, 2), t)` and,
//! for each of its `S` weight draws, fills ε (P standard normals) and lets the estimator
//! draw its permutations from the same stream ([`crate::train`]). [`term_and_grad_at`]
//! follows that protocol, so its term and gradient are the trainer's for the same
//! posterior, seed, step and draws. Fixed tensors that pin units
//! ([`crate::symmetry::pinned`]) are handled as the estimates handle them: the term is
//! computed on the stabilizer's posterior and lifted by ln|G| − ln|S|, its gradient
//! scattered back; where no permutation is left, the term is that constant and its
//! gradient zero.

use super::{
    EstimatorKind, ExactPermanent, GradScratch, InfoNce, MiGradient, Sandwich, stabilizer_of,
};
use crate::error::{Error, Result};
use crate::posterior::MeanFieldGaussian;
use crate::rng::{child_seed, fill_standard_normal, stream};

/// The estimators with a gradient: `infonce` (the paper's Î^K, any spec), `sandwich` (its
/// lower bound, one hidden layer) and `exact-permanent` (one permutation of width ≤ 24).
pub const GRADIENT_NAMES: [&str; 3] = ["infonce", "sandwich", "exact-permanent"];

/// The term of `kind` with a gradient, with K where the estimator has one.
///
/// # Errors
///
/// [`Error::InvalidParameter`] naming an estimator without a gradient, a missing K or a
/// K its constructor refuses.
pub fn mi_gradient(kind: EstimatorKind, k: Option<usize>) -> Result<Box<dyn MiGradient>> {
    let need_k =
        || k.ok_or_else(|| Error::invalid("k", "none", format!("`{}` needs K", kind.name())));
    Ok(match kind {
        EstimatorKind::InfoNce => Box::new(InfoNce::new(need_k()?)?),
        EstimatorKind::Sandwich => Box::new(Sandwich::new(need_k()?)?.lower()),
        EstimatorKind::ExactPermanent => Box::new(ExactPermanent::new()),
        other => {
            return Err(Error::invalid(
                "estimator",
                other.name(),
                format!(
                    "has no gradient; those with one are {}",
                    GRADIENT_NAMES.join(", ")
                ),
            ));
        }
    })
}

/// A term of the symmetrized objective and its gradient, averaged over the draws.
#[derive(Clone, Debug, PartialEq)]
pub struct TermGrad {
    /// The term (nats), the mean over the draws.
    pub value: f64,
    /// ∂ term / ∂μ, flat in the posterior's order.
    pub grad_mu: Vec<f64>,
    /// ∂ term / ∂σ, flat in the posterior's order.
    pub grad_sigma: Vec<f64>,
}

/// The term of `mi` on `q` and its gradient with respect to μ and σ, from `n_samples`
/// weight draws at `step` of `seed`, drawn exactly as [`crate::train`] draws them (module
/// docs).
///
/// # Errors
///
/// [`Error::InvalidParameter`] for no draws; the estimator's errors (an architecture it
/// does not handle, named).
pub fn term_and_grad_at(
    mi: &dyn MiGradient,
    q: &MeanFieldGaussian,
    seed: u64,
    step: u64,
    n_samples: usize,
) -> Result<TermGrad> {
    if n_samples == 0 {
        return Err(Error::invalid("samples", 0, "must be >= 1"));
    }
    let p = q.n_params();
    let (target, offset, gather) = match stabilizer_of(q)? {
        None => (None, 0.0, None),
        Some((stab, None)) => {
            return Ok(TermGrad {
                value: stab.ln_offset,
                grad_mu: vec![0.0; p],
                grad_sigma: vec![0.0; p],
            });
        }
        Some((stab, Some(reduced))) => (Some(reduced), stab.ln_offset, Some(stab.gather)),
    };
    let on = target.as_ref().unwrap_or(q);
    let n = on.n_params();
    let (mut g_mu, mut g_sigma) = (vec![0.0; n], vec![0.0; n]);
    let mut eps = vec![0.0; n];
    let mut scratch = GradScratch::default();
    let mut rng = stream(child_seed(seed, 2), step);
    let mut value = 0.0;
    for _ in 0..n_samples {
        fill_standard_normal(&mut rng, &mut eps);
        value += mi.term_and_grad_in(on, &eps, &mut rng, &mut g_mu, &mut g_sigma, &mut scratch)?;
    }
    let s = n_samples as f64;
    let mean = |v: Vec<f64>| -> Vec<f64> {
        let v: Vec<f64> = v.into_iter().map(|g| g / s).collect();
        match &gather {
            None => v,
            Some(gather) => {
                let mut full = vec![0.0; p];
                for (&i, g) in gather.iter().zip(v) {
                    full[i] = g;
                }
                full
            }
        }
    };
    Ok(TermGrad {
        value: value / s + offset,
        grad_mu: mean(g_mu),
        grad_sigma: mean(g_sigma),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symmetry::SpecSpace;
    use crate::symmetry::spec::PermutationSpec;
    use crate::weights::Arch;

    /// A 3-4-2 MLP whose units overlap (σ comparable to the spread of the means).
    fn overlapping_mlp() -> MeanFieldGaussian {
        let arch = Arch::builder(vec![3, 4, 2]).check().unwrap();
        let p = arch.n_params();
        let mu: Vec<f64> = (0..p)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) / 10.0)
            .collect();
        let sigma: Vec<f64> = (0..p).map(|i| 0.3 + (i % 5) as f64 / 20.0).collect();
        MeanFieldGaussian::from_mu_sigma(arch, mu, sigma).unwrap()
    }

    /// The central difference of the term in each coordinate of μ and of σ, with the
    /// draws (seed, step) held fixed.
    fn finite_differences(
        mi: &dyn MiGradient,
        q: &MeanFieldGaussian,
        space: impl Fn() -> crate::symmetry::WeightSpace,
    ) -> (Vec<f64>, Vec<f64>) {
        let h = 1e-6;
        let at = |mu: Vec<f64>, sigma: Vec<f64>| {
            let q = MeanFieldGaussian::from_mu_sigma(space(), mu, sigma).unwrap();
            term_and_grad_at(mi, &q, 5, 3, 2).unwrap().value
        };
        let (mu, sigma) = (q.mu().to_vec(), q.sigma().to_vec());
        let diff = |which: usize, j: usize| {
            let (mut up_mu, mut up_s, mut dn_mu, mut dn_s) =
                (mu.clone(), sigma.clone(), mu.clone(), sigma.clone());
            if which == 0 {
                up_mu[j] += h;
                dn_mu[j] -= h;
            } else {
                up_s[j] += h;
                dn_s[j] -= h;
            }
            (at(up_mu, up_s) - at(dn_mu, dn_s)) / (2.0 * h)
        };
        (
            (0..mu.len()).map(|j| diff(0, j)).collect(),
            (0..mu.len()).map(|j| diff(1, j)).collect(),
        )
    }

    fn assert_close(what: &str, got: &[f64], want: &[f64]) {
        for (j, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 + 1e-5 * w.abs(),
                "{what}[{j}]: gradient {g}, finite difference {w}"
            );
        }
    }

    #[test]
    fn the_gradient_is_the_terms_derivative_by_finite_differences() {
        let q = overlapping_mlp();
        for mi in [
            mi_gradient(EstimatorKind::InfoNce, Some(4)).unwrap(),
            mi_gradient(EstimatorKind::Sandwich, Some(4)).unwrap(),
            mi_gradient(EstimatorKind::ExactPermanent, None).unwrap(),
        ] {
            let tg = term_and_grad_at(mi.as_ref(), &q, 5, 3, 2).unwrap();
            assert!(tg.value > 0.0 && tg.value < q.space().group().ln_order());
            let (fd_mu, fd_sigma) = finite_differences(mi.as_ref(), &q, || q.space().clone());
            assert_close(mi.name(), &tg.grad_mu, &fd_mu);
            assert_close(mi.name(), &tg.grad_sigma, &fd_sigma);
        }
    }

    /// fc1 (3 units) → fc2, with a fixed tensor on fc1's units (a norm layer's gain).
    fn pinned(gain: [f64; 3]) -> MeanFieldGaussian {
        let spec = PermutationSpec::from_json(
            r#"{"permutations": {"h1": 3},
                "axes": {"fc1.weight": ["h1", null], "bn.weight": ["h1"], "fc2.weight": [null, "h1"]}}"#,
        )
        .unwrap();
        let layout = vec![
            ("fc1.weight".to_string(), vec![3, 2]),
            ("fc2.weight".to_string(), vec![2, 3]),
        ];
        let fixed = vec![("bn.weight".to_string(), vec![3], gain.to_vec())];
        let space = SpecSpace::new(spec, &layout, &fixed).unwrap();
        let mu: Vec<f64> = (0..12).map(|i| ((i * 7 % 5) as f64 - 2.0) / 4.0).collect();
        MeanFieldGaussian::from_mu_sigma(space, mu, vec![0.4; 12]).unwrap()
    }

    #[test]
    fn pinned_units_count_in_full_and_carry_no_gradient() {
        let mi = mi_gradient(EstimatorKind::InfoNce, Some(4)).unwrap();
        // Every unit pinned alone: I = ln 3! exactly, and nothing to move.
        let q = pinned([1.0, 2.0, 3.0]);
        let tg = term_and_grad_at(mi.as_ref(), &q, 5, 3, 2).unwrap();
        assert!((tg.value - 6f64.ln()).abs() < 1e-12, "{}", tg.value);
        assert!(tg.grad_mu.iter().chain(&tg.grad_sigma).all(|&g| g == 0.0));
        // Units 0 and 1 tied: ln 3 in full, plus the term on {0, 1} (at most ln 2), whose
        // gradient lands on the coordinates of units 0 and 1 (rows 0-1 of fc1, columns 0-1
        // of fc2) and nowhere else.
        let q = pinned([1.0, 1.0, 3.0]);
        let tg = term_and_grad_at(mi.as_ref(), &q, 5, 3, 2).unwrap();
        assert!(
            tg.value >= 3f64.ln() && tg.value <= 6f64.ln() + 1e-12,
            "{}",
            tg.value
        );
        let unit2 = [4usize, 5, 8, 11];
        for &j in &unit2 {
            assert_eq!(
                (tg.grad_mu[j], tg.grad_sigma[j]),
                (0.0, 0.0),
                "coordinate {j}"
            );
        }
        let (fd_mu, fd_sigma) = finite_differences(mi.as_ref(), &q, || q.space().clone());
        assert_close("mu", &tg.grad_mu, &fd_mu);
        assert_close("sigma", &tg.grad_sigma, &fd_sigma);
    }

    #[test]
    fn an_estimator_without_a_gradient_is_refused_by_name() {
        let err = mi_gradient(EstimatorKind::PairwiseLower, None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("pairwise-lower"), "{err}");
        let err = mi_gradient(EstimatorKind::InfoNce, None).err().unwrap();
        assert!(err.to_string().contains("needs K"), "{err}");
        let q = overlapping_mlp();
        let mi = mi_gradient(EstimatorKind::InfoNce, Some(2)).unwrap();
        assert!(term_and_grad_at(mi.as_ref(), &q, 0, 0, 0).is_err());
    }
}
