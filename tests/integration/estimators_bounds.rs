//! The bounds on I(g; ω) against exact I (see [`super::estimators`]): the sandwich
//! (one and several hidden layers, its uniform-proposal special case), the pruned
//! permanent's bracket, and the deterministic pairwise bounds.

use mi_est::estimators::{ExactEnumeration, ExactPermanent, InfoNce, MiEstimator};
use mi_est::posterior::MeanFieldGaussian;
use mi_est::prec::{N_SE, QUADRATURE_ABS};
use mi_est::symmetry::Group;
use mi_est::weights::Arch;

use super::estimators::*;

#[test]
fn sandwich_contains_exact_i_and_narrows_with_k() {
    use mi_est::estimators::Sandwich;
    for (i, (widths, bias)) in [
        (vec![3, 5, 2], true),
        (vec![2, 7, 1], false),
        (vec![4, 8, 2], true),
    ]
    .into_iter()
    .enumerate()
    {
        let q = overlapping_one_layer(widths, bias, 40 + i as u64);
        let exact = ExactPermanent::new()
            .samples(4000)
            .unwrap()
            .seed(1)
            .estimate(&q)
            .unwrap();
        let mut widths_seen = Vec::new();
        for k in [4, 32, 256] {
            let (lo, up) = Sandwich::new(k)
                .unwrap()
                .samples(4000)
                .unwrap()
                .seed(2)
                .estimate_both(&q)
                .unwrap();
            let tol = 3.0 * (se(&lo).powi(2) + se(&exact).powi(2)).sqrt();
            assert!(
                lo.value <= exact.value + tol,
                "K={k}: lower {} > exact {}",
                lo.value,
                exact.value
            );
            let tol = 3.0 * (se(&up).powi(2) + se(&exact).powi(2)).sqrt();
            assert!(
                up.value >= exact.value - tol,
                "K={k}: upper {} < exact {}",
                up.value,
                exact.value
            );
            // The paired width is positive on every draw in expectation.
            let width: f64 = up
                .terms
                .iter()
                .zip(&lo.terms)
                .map(|(u, l)| u - l)
                .sum::<f64>()
                / up.terms.len() as f64;
            assert!(width > -1e-9, "K={k}: width {width}");
            eprintln!(
                "sandwich d={} K={k}: [{:.4} ± {:.4}, {:.4} ± {:.4}], exact {:.4} ± {:.4}",
                q.arch().unwrap().widths()[1],
                lo.value,
                se(&lo),
                up.value,
                se(&up),
                exact.value,
                se(&exact)
            );
            widths_seen.push(width);
        }
        assert!(
            widths_seen[2] < widths_seen[0],
            "interval does not narrow: {widths_seen:?}"
        );
        // With the proposal the lower bound beats uniform I^K at the same K.
        let ik = InfoNce::new(32)
            .unwrap()
            .samples(4000)
            .unwrap()
            .seed(2)
            .estimate(&q)
            .unwrap();
        let lo = Sandwich::new(32)
            .unwrap()
            .samples(4000)
            .unwrap()
            .seed(2)
            .lower()
            .estimate(&q)
            .unwrap();
        eprintln!(
            "  K=32: I^K {:.4} ± {:.4}, sandwich lower {:.4} ± {:.4}",
            ik.value,
            se(&ik),
            lo.value,
            se(&lo)
        );
        assert!(
            lo.value >= ik.value - 3.0 * se2(&lo, &ik),
            "{} vs I^K {}",
            lo.value,
            ik.value
        );
    }
}

#[test]
fn sandwich_with_the_uniform_proposal_is_the_papers_estimator() {
    use mi_est::estimators::Sandwich;
    let q = overlapping_one_layer(vec![3, 5, 2], true, 7);
    let lo = Sandwich::new(16)
        .unwrap()
        .mix(1.0)
        .unwrap()
        .samples(6000)
        .unwrap()
        .seed(3)
        .lower()
        .estimate(&q)
        .unwrap();
    let ik = InfoNce::new(16)
        .unwrap()
        .samples(6000)
        .unwrap()
        .seed(4)
        .estimate(&q)
        .unwrap();
    assert!(
        (lo.value - ik.value).abs() < N_SE * se2(&lo, &ik),
        "{} vs {}",
        lo.value,
        ik.value
    );
}

#[test]
fn sandwich_is_tight_where_infonce_is_stuck_at_ln_k() {
    use mi_est::estimators::Sandwich;
    // A 784-30-10 posterior at the usual initialization: units far apart, I = ln 30!.
    let q =
        mi_est::demo::demo_posterior(&[784, 30, 10], mi_est::weights::Activation::Relu, 0, -3.0)
            .unwrap();
    let ln_g = Group::of(q.arch().unwrap()).ln_order();
    let (lo, up) = Sandwich::new(16)
        .unwrap()
        .samples(50)
        .unwrap()
        .seed(1)
        .estimate_both(&q)
        .unwrap();
    assert!(
        up.value - lo.value < 1.0,
        "interval [{}, {}]",
        lo.value,
        up.value
    );
    // Both sit within −ln(1 − λ) ≈ 0.01 of ln|G| = ln 30! = 74.658.
    assert!(
        (lo.value - ln_g).abs() < 0.02 && (up.value - ln_g).abs() < 0.02,
        "{} {} vs {ln_g}",
        lo.value,
        up.value
    );
    let ik = InfoNce::new(4096)
        .unwrap()
        .samples(20)
        .unwrap()
        .seed(1)
        .estimate(&q)
        .unwrap();
    assert!((ik.value - 4096f64.ln()).abs() < 1e-3, "I^K = {}", ik.value);
}

#[test]
fn bad_sandwich_settings_are_named_errors() {
    use mi_est::estimators::Sandwich;
    let four = || Sandwich::new(4).unwrap();
    for (result, needle) in [
        (Sandwich::new(1).map(drop), "`k` = 1"),
        (four().temperature(0.0).map(drop), "temperature"),
        (four().temperature(f64::NAN).map(drop), "temperature"),
        (four().mix(-0.1).map(drop), "mix"),
        (four().mix(1.5).map(drop), "mix"),
        (four().samples(0).map(drop), "samples"),
    ] {
        let e = result.unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
}

/// Deeper nets: the layer-by-layer proposal's sandwich brackets exact I (by enumeration
/// of the whole group) and narrows as K grows.
#[test]
fn layered_sandwich_contains_exact_i_on_deeper_nets() {
    use mi_est::estimators::Sandwich;
    for (i, widths) in [vec![2, 3, 3, 1], vec![2, 4, 3, 2], vec![1, 3, 2, 3, 1]]
        .into_iter()
        .enumerate()
    {
        let q = overlapping_one_layer(widths.clone(), true, 60 + i as u64);
        let exact = ExactEnumeration::new()
            .samples(3000)
            .unwrap()
            .seed(1)
            .estimate(&q)
            .unwrap();
        let mut seen = Vec::new();
        for k in [4, 64] {
            let (lo, up) = Sandwich::new(k)
                .unwrap()
                .samples(3000)
                .unwrap()
                .seed(2)
                .estimate_both(&q)
                .unwrap();
            eprintln!(
                "layered sandwich {widths:?} K={k}: [{:.4} ± {:.4}, {:.4} ± {:.4}], exact {:.4} ± {:.4}",
                lo.value,
                se(&lo),
                up.value,
                se(&up),
                exact.value,
                se(&exact)
            );
            assert!(
                lo.value <= exact.value + 3.0 * se2(&lo, &exact),
                "{widths:?} K={k}"
            );
            assert!(
                up.value >= exact.value - 3.0 * se2(&up, &exact),
                "{widths:?} K={k}"
            );
            seen.push(up.value - lo.value);
        }
        assert!(seen[1] < seen[0], "{widths:?}: {seen:?}");
    }
}

#[test]
fn pruned_permanent_matches_the_exact_permanent_and_handles_wide_layers() {
    use mi_est::estimators::{ExactPruned, Sandwich};
    // Where both run, they agree draw by draw within the proven bracket.
    let q = overlapping_one_layer(vec![3, 6, 2], true, 3);
    let a = ExactPermanent::new()
        .samples(200)
        .unwrap()
        .seed(8)
        .estimate(&q)
        .unwrap();
    let b = ExactPruned::new()
        .samples(200)
        .unwrap()
        .seed(8)
        .estimate(&q)
        .unwrap();
    let bracket = b.bracket.unwrap();
    for (x, y) in a.terms.iter().zip(&b.terms) {
        assert!(
            *y >= *x - 1e-9 && *y <= *x + bracket + 1e-9,
            "{x} vs {y} (bracket {bracket})"
        );
    }
    // Width 30 (and 100) at the usual initialization: I = ln d! with a negligible bracket,
    // and the sandwich agrees.
    for d in [30usize, 100] {
        let q =
            mi_est::demo::demo_posterior(&[784, d, 10], mi_est::weights::Activation::Relu, 0, -3.0)
                .unwrap();
        let e = ExactPruned::new()
            .samples(20)
            .unwrap()
            .seed(1)
            .estimate(&q)
            .unwrap();
        let ln_g = Group::of(q.arch().unwrap()).ln_order();
        assert!(
            (e.value - ln_g).abs() < 1e-6,
            "d={d}: {} vs {ln_g}",
            e.value
        );
        assert!(e.bracket.unwrap() < 1e-6, "d={d}: bracket {:?}", e.bracket);
        if d == 30 {
            let (lo, up) = Sandwich::new(16)
                .unwrap()
                .samples(20)
                .unwrap()
                .seed(1)
                .estimate_both(&q)
                .unwrap();
            assert!(lo.value <= e.value + 0.02 && up.value >= e.value - 0.02);
        }
    }
    // Clusters of three overlapping units, far apart across clusters: I well below ln|G|,
    // computed exactly at width 30 through 10 blocks of 3.
    let arch = Arch::builder(vec![2, 30, 1]).check().unwrap();
    let p = arch.n_params();
    let mut mu = vec![0.0; p];
    let o0 = arch.offsets(0).unwrap();
    for i in 0..30 {
        // Incoming weights: cluster centre (10·cluster, 0), units within a cluster 0.1 apart.
        mu[o0.weight + i * 2] = 10.0 * (i / 3) as f64 + 0.1 * (i % 3) as f64;
    }
    let q = MeanFieldGaussian::from_mu_sigma(arch.clone(), mu, vec![0.3; p]).unwrap();
    let e = ExactPruned::new()
        .samples(300)
        .unwrap()
        .seed(2)
        .estimate(&q)
        .unwrap();
    let ln_g = Group::of(&arch).ln_order();
    // Within a cluster the 3 units overlap (0.1 apart, σ = 0.3), across clusters they are
    // 10 apart: I lies between ln(30!/(3!)^10) (cluster relabellings only) and ln|G|.
    let floor = ln_g - 10.0 * 6f64.ln();
    assert!(
        e.value > floor - 4.0 * se(&e) && e.value < ln_g - 15.0,
        "I = {} vs [{floor}, {ln_g}]",
        e.value
    );
    assert!(e.bracket.unwrap() < 1e-6);
    let ik = InfoNce::new(4096)
        .unwrap()
        .samples(50)
        .unwrap()
        .seed(2)
        .estimate(&q)
        .unwrap();
    assert!(ik.value <= 4096f64.ln() + 1e-12 && ik.value < e.value - 20.0);
    let (lo, up) = Sandwich::new(64)
        .unwrap()
        .samples(300)
        .unwrap()
        .seed(2)
        .estimate_both(&q)
        .unwrap();
    eprintln!(
        "clusters d=30: exact-pruned {:.3} (bracket {:.1e}), sandwich [{:.3}, {:.3}], I^4096 {:.3}, ln|G| {:.3}",
        e.value,
        e.bracket.unwrap(),
        lo.value,
        up.value,
        ik.value,
        ln_g
    );
    assert!(lo.value <= e.value + 4.0 * se(&lo) + 4.0 * se(&e));
    assert!(up.value >= e.value - 4.0 * se(&up) - 4.0 * se(&e));
    // Acceptance (issue 7): the interval is narrower than 1 nat where I^K is stuck.
    assert!(up.value - lo.value < 1.0, "[{}, {}]", lo.value, up.value);
}

#[test]
fn pairwise_bounds_bracket_exact_i() {
    use mi_est::estimators::PairwiseBound;
    // The 2-parameter model against quadrature, then overlapping one-layer nets against
    // the exact permanent.
    for (mu, sigma) in [([0.5, -0.5], [0.5, 0.5]), ([0.3, -0.1], [0.4, 0.7])] {
        let q = two_parameter_model(mu, sigma);
        let exact = quadrature_i_k(mu, sigma, None);
        let lo = PairwiseBound::Bhattacharyya.estimate(&q).unwrap();
        let up = PairwiseBound::Kl.estimate(&q).unwrap();
        eprintln!(
            "pairwise 2-param: [{:.4}, {:.4}] exact {exact:.4}",
            lo.value, up.value
        );
        assert!(lo.value <= exact + QUADRATURE_ABS && exact <= up.value + QUADRATURE_ABS);
    }
    for (i, (widths, bias)) in [
        (vec![3, 5, 2], true),
        (vec![2, 7, 1], false),
        (vec![4, 8, 2], true),
    ]
    .into_iter()
    .enumerate()
    {
        let q = overlapping_one_layer(widths, bias, 40 + i as u64);
        let exact = ExactPermanent::new()
            .samples(4000)
            .unwrap()
            .seed(1)
            .estimate(&q)
            .unwrap();
        let lo = PairwiseBound::Bhattacharyya.estimate(&q).unwrap();
        let up = PairwiseBound::Kl.estimate(&q).unwrap();
        eprintln!(
            "pairwise d={}: [{:.4}, {:.4}] exact {:.4} ± {:.4}",
            q.arch().unwrap().widths()[1],
            lo.value,
            up.value,
            exact.value,
            se(&exact)
        );
        assert!(
            lo.value <= exact.value + N_SE * se(&exact),
            "{} > {}",
            lo.value,
            exact.value
        );
        assert!(
            up.value >= exact.value - N_SE * se(&exact),
            "{} < {}",
            up.value,
            exact.value
        );
        assert!(lo.std_err.is_none() && lo.terms.is_empty());
    }
    // Wide, saturated: both at ln|G| = ln 30!.
    let q =
        mi_est::demo::demo_posterior(&[784, 30, 10], mi_est::weights::Activation::Relu, 0, -3.0)
            .unwrap();
    let ln_g = Group::of(q.arch().unwrap()).ln_order();
    for b in [PairwiseBound::Bhattacharyya, PairwiseBound::Kl] {
        let e = b.estimate(&q).unwrap();
        assert!(
            (e.value - ln_g).abs() < 1e-6,
            "{}: {}",
            e.estimator,
            e.value
        );
    }
}

/// All units identical and broad (μ = 0, σ = 1, 795 parameters each): every row of C
/// prefers the same few columns by more than the margin, so the pruned graph has no
/// perfect matching — a named error, and `exact_mi_if_cheap` reports "not computable"
/// instead of a wrong (infinite) value; the sandwich still gives an interval.
#[test]
fn pruned_permanent_without_a_perfect_matching_is_a_named_error() {
    use mi_est::estimators::{ExactPruned, Sandwich};
    let arch = Arch::builder(vec![784, 30, 10]).check().unwrap();
    let p = arch.n_params();
    let q = MeanFieldGaussian::from_mu_sigma(arch, vec![0.0; p], vec![1.0; p]).unwrap();
    let e = ExactPruned::new()
        .samples(4)
        .unwrap()
        .seed(1)
        .estimate(&q)
        .unwrap_err();
    assert!(e.to_string().contains("no perfect matching"), "{e}");
    assert!(
        mi_est::study::exact_mi_if_cheap(&q, 4, 1, &Default::default())
            .unwrap()
            .is_none()
    );
    // Identical units: q is invariant, I = 0, and the sandwich brackets it.
    let (lo, up) = Sandwich::new(16)
        .unwrap()
        .samples(20)
        .unwrap()
        .seed(1)
        .estimate_both(&q)
        .unwrap();
    assert!(lo.value.is_finite() && up.value.is_finite());
    assert!(
        lo.value.abs() < 1e-9 && up.value.abs() < 1e-9,
        "[{}, {}]",
        lo.value,
        up.value
    );
}
