//! Estimators of I(g; ω) against independent ground truth, and the conformance suite
//! every estimator must pass (issue 3).

use mi_est::Error;
use mi_est::estimators::{
    Estimate, ExactEnumeration, ExactPermanent, ExactPruned, InfoNce, InfoNcePath,
    MAX_PERMANENT_WIDTH, MiEstimator, PairwiseBound, Sandwich,
};
use mi_est::posterior::MeanFieldGaussian;
use mi_est::prec::{EXACT_REL, N_SE, QUADRATURE_ABS, close};
use mi_est::rng::stream;
use mi_est::symmetry::Group;
use mi_est::weights::Arch;
use rand::RngExt;
use statrs::function::factorial::ln_binomial;

use crate::common::random_posterior;

pub(super) fn se(e: &Estimate) -> f64 {
    e.std_err.expect("S > 1")
}

/// Combined standard error of a difference of two independent estimates.
pub(super) fn se2(a: &Estimate, b: &Estimate) -> f64 {
    (se(a).powi(2) + se(b).powi(2)).sqrt()
}

pub(super) fn two_parameter_model(mu: [f64; 2], sigma: [f64; 2]) -> MeanFieldGaussian {
    let arch = Arch::builder(vec![1, 2, 1])
        .bias(false)
        .fixed_layer(1, vec![1.0, 1.0], None)
        .check()
        .unwrap();
    MeanFieldGaussian::from_mu_sigma(arch, mu.to_vec(), sigma.to_vec()).unwrap()
}

/// `E_{m ~ Bin(K−1, ½)} ∫ q(ω) [ln K − ln((K − m) + m q(sω)/q(ω))] dω` for the swap group
/// {e, s} in 2-D, by Simpson's rule on μ ± 10σ. K = ∞ gives I itself (the limit
/// `ln 2 − ln(1 + q(sω)/q(ω))`).
pub(super) fn quadrature_i_k(mu: [f64; 2], sigma: [f64; 2], k: Option<usize>) -> f64 {
    let ln_q = |x: f64, y: f64| {
        let a = (x - mu[0]) / sigma[0];
        let b = (y - mu[1]) / sigma[1];
        -0.5 * (a * a + b * b) - (sigma[0] * sigma[1]).ln() - (2.0 * std::f64::consts::PI).ln()
    };
    let integrand = |x: f64, y: f64| {
        let lq = ln_q(x, y);
        let r = (ln_q(y, x) - lq).exp();
        let inner = match k {
            None => 2f64.ln() - (1.0 + r).ln(),
            Some(k) => (0..k)
                .map(|m| {
                    let ln_w = ln_binomial((k - 1) as u64, m as u64) - (k - 1) as f64 * 2f64.ln();
                    ln_w.exp() * ((k as f64).ln() - ((k - m) as f64 + m as f64 * r).ln())
                })
                .sum(),
        };
        lq.exp() * inner
    };
    let n = 1200;
    let (ax, bx) = (mu[0] - 10.0 * sigma[0], mu[0] + 10.0 * sigma[0]);
    let (ay, by) = (mu[1] - 10.0 * sigma[1], mu[1] + 10.0 * sigma[1]);
    let (hx, hy) = ((bx - ax) / n as f64, (by - ay) / n as f64);
    let w = |i: usize| {
        if i == 0 || i == n {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        }
    };
    let mut total = 0.0;
    for i in 0..=n {
        let x = ax + i as f64 * hx;
        for j in 0..=n {
            total += w(i) * w(j) * integrand(x, ay + j as f64 * hy);
        }
    }
    total * hx * hy / 9.0
}

#[test]
fn two_parameter_model_matches_quadrature_for_every_estimator() {
    for (mu, sigma) in [
        ([0.5, -0.5], [0.5, 0.5]),
        ([0.3, -0.1], [0.4, 0.7]),
        ([1.0, -1.0], [0.2, 0.3]),
    ] {
        let q = two_parameter_model(mu, sigma);
        let exact = quadrature_i_k(mu, sigma, None);
        assert!(exact > 0.0 && exact < 2f64.ln());
        eprintln!("2-parameter model mu={mu:?} sigma={sigma:?}: I = {exact:.6}");
        let s = 40_000;
        for est in [
            ExactEnumeration::new()
                .samples(s)
                .unwrap()
                .seed(1)
                .estimate(&q)
                .unwrap(),
            ExactPermanent::new()
                .samples(s)
                .unwrap()
                .seed(1)
                .estimate(&q)
                .unwrap(),
        ] {
            // QUADRATURE_ABS: the quadrature's own accuracy (it matters only when units
            // are far apart and the Monte Carlo error vanishes).
            assert!(
                (est.value - exact).abs() < N_SE * se(&est) + QUADRATURE_ABS,
                "{}: {} vs {exact}",
                est.estimator,
                est.value
            );
        }
        for k in [2, 8] {
            let truth = quadrature_i_k(mu, sigma, Some(k));
            if k == 2 {
                // For |G| = 2: half the draws see the identity twice, so I^2 = I/2.
                assert!((truth - exact / 2.0).abs() < 1e-9);
            }
            for path in [InfoNcePath::Generic, InfoNcePath::UnitCost] {
                let est = InfoNce::new(k)
                    .unwrap()
                    .samples(s)
                    .unwrap()
                    .seed(2)
                    .path(path)
                    .estimate(&q)
                    .unwrap();
                assert!(
                    (est.value - truth).abs() < N_SE * se(&est) + QUADRATURE_ABS,
                    "K={k} {path:?}: {} ± {} vs {truth}",
                    est.value,
                    se(&est)
                );
            }
        }
    }
}

/// Random one-hidden-layer posteriors whose units overlap.
pub(super) fn overlapping_one_layer(
    widths: Vec<usize>,
    bias: bool,
    seed: u64,
) -> MeanFieldGaussian {
    random_posterior(Arch::builder(widths).bias(bias).check().unwrap(), seed, 0.6)
}

#[test]
fn unit_cost_path_agrees_with_generic_path() {
    for (i, (widths, bias)) in [
        (vec![3, 4, 2], true),
        (vec![5, 6, 3], false),
        (vec![1, 7, 1], true),
        (vec![784, 30, 10], true),
    ]
    .into_iter()
    .enumerate()
    {
        let q = overlapping_one_layer(widths, bias, i as u64);
        let k = 64;
        let generic = InfoNce::new(k)
            .unwrap()
            .samples(30)
            .unwrap()
            .seed(5)
            .path(InfoNcePath::Generic)
            .estimate(&q)
            .unwrap();
        let fast = InfoNce::new(k)
            .unwrap()
            .samples(30)
            .unwrap()
            .seed(5)
            .path(InfoNcePath::UnitCost)
            .estimate(&q)
            .unwrap();
        for (a, b) in generic.terms.iter().zip(&fast.terms) {
            assert!(close(*a, *b, EXACT_REL, 1e-3), "{a} vs {b}");
        }
        assert!(close(generic.value, fast.value, EXACT_REL, 1e-3));
    }
}

#[test]
fn permanent_agrees_with_enumeration_draw_by_draw() {
    for (i, (widths, bias)) in [
        (vec![2, 3, 1], true),
        (vec![3, 5, 2], false),
        (vec![2, 7, 2], true),
    ]
    .into_iter()
    .enumerate()
    {
        let q = overlapping_one_layer(widths, bias, 10 + i as u64);
        let a = ExactEnumeration::new()
            .samples(50)
            .unwrap()
            .seed(3)
            .estimate(&q)
            .unwrap();
        let b = ExactPermanent::new()
            .samples(50)
            .unwrap()
            .seed(3)
            .estimate(&q)
            .unwrap();
        for (x, y) in a.terms.iter().zip(&b.terms) {
            assert!(close(*x, *y, EXACT_REL, 1.0), "{x} vs {y}");
        }
    }
}

/// Every estimator applicable to `q`, with S draws and seed.
pub(super) fn estimators_for(
    q: &MeanFieldGaussian,
    s: usize,
    seed: u64,
    k: usize,
) -> Vec<Box<dyn MiEstimator>> {
    let mut v: Vec<Box<dyn MiEstimator>> = vec![
        Box::new(
            InfoNce::new(k)
                .unwrap()
                .samples(s)
                .unwrap()
                .seed(seed)
                .path(InfoNcePath::Generic),
        ),
        Box::new(ExactEnumeration::new().samples(s).unwrap().seed(seed)),
    ];
    if q.arch().unwrap().hidden_widths().len() == 1 {
        v.push(Box::new(
            InfoNce::new(k)
                .unwrap()
                .samples(s)
                .unwrap()
                .seed(seed)
                .path(InfoNcePath::UnitCost),
        ));
        v.push(Box::new(
            ExactPermanent::new().samples(s).unwrap().seed(seed),
        ));
    }
    v
}

pub(super) fn conformance_posteriors() -> Vec<MeanFieldGaussian> {
    vec![
        overlapping_one_layer(vec![2, 4, 1], true, 21),
        overlapping_one_layer(vec![3, 5, 2], false, 22),
        random_posterior(Arch::builder(vec![2, 3, 3, 1]).check().unwrap(), 23, 0.6),
    ]
}

#[test]
fn conformance_invariant_posterior_gives_zero() {
    for widths in [vec![2, 4, 1], vec![2, 3, 3, 2]] {
        let arch = Arch::builder(widths).check().unwrap();
        // Every hidden unit with the same μ and σ: q is G-invariant, I = 0.
        let mut rng = stream(4, 0);
        let mut mu = vec![0.0; arch.n_params()];
        let mut sigma = vec![0.0; arch.n_params()];
        let n_layers = arch.n_layers();
        for i in 0..n_layers {
            let o = arch.offsets(i).unwrap();
            let (d_in, d_out) = (arch.widths()[i], arch.widths()[i + 1]);
            let in_hidden = i > 0;
            let out_hidden = i + 1 < n_layers;
            let row: Vec<(f64, f64)> = (0..d_in)
                .map(|_| (rng.random_range(-1.0..1.0), rng.random_range(0.2..1.0)))
                .collect();
            let col: Vec<(f64, f64)> = (0..d_out)
                .map(|_| (rng.random_range(-1.0..1.0), rng.random_range(0.2..1.0)))
                .collect();
            let cell = (rng.random_range(-1.0..1.0), rng.random_range(0.2..1.0));
            for a in 0..d_out {
                for b in 0..d_in {
                    let (m, s) = match (out_hidden, in_hidden) {
                        (true, false) => row[b],
                        (false, true) => col[a],
                        (true, true) => cell,
                        (false, false) => unreachable!(),
                    };
                    mu[o.weight + a * d_in + b] = m;
                    sigma[o.weight + a * d_in + b] = s;
                }
                if let Some(ob) = o.bias {
                    let (m, s) = if out_hidden { cell } else { col[a] };
                    mu[ob + a] = m;
                    sigma[ob + a] = s;
                }
            }
        }
        let q = MeanFieldGaussian::from_mu_sigma(arch, mu, sigma).unwrap();
        for est in estimators_for(&q, 50, 1, 16) {
            let e = est.estimate(&q).unwrap();
            assert!(e.value.abs() < 1e-9, "{}: {}", e.estimator, e.value);
            assert!(e.terms.iter().all(|t| t.abs() < 1e-9), "{}", e.estimator);
        }
    }
}

#[test]
fn conformance_far_apart_units_give_ln_group_order() {
    for widths in [vec![2, 4, 2], vec![2, 3, 3, 1]] {
        let arch = Arch::builder(widths).check().unwrap();
        let p = arch.n_params();
        // Means 1..P spread by 1, σ = 0.01: every permutation moves some coordinate by ≥ 1 = 100σ.
        let mu: Vec<f64> = (0..p).map(|i| i as f64).collect();
        let q = MeanFieldGaussian::from_mu_sigma(arch.clone(), mu, vec![0.01; p]).unwrap();
        let ln_g = Group::of(&arch).ln_order();
        let order = Group::of(&arch).order().unwrap() as f64;
        for k in [4, 64] {
            // InfoNCE: only draws equal to the identity count, so
            // E = ln K − E ln(1 + Bin(K − 1, 1/|G|)).
            let expect: f64 = (k as f64).ln()
                - (0..k)
                    .map(|m| {
                        let ln_w = ln_binomial((k - 1) as u64, m as u64)
                            + m as f64 * (1.0 / order).ln()
                            + (k - 1 - m) as f64 * (1.0 - 1.0 / order).ln();
                        ln_w.exp() * (1.0 + m as f64).ln()
                    })
                    .sum::<f64>();
            for est in estimators_for(&q, 4000, 2, k) {
                let e = est.estimate(&q).unwrap();
                let target = if e.k.is_some() { expect } else { ln_g };
                let tol = N_SE * e.std_err.unwrap() + 1e-9;
                assert!(
                    (e.value - target).abs() <= tol,
                    "{} K={k}: {} vs {target}",
                    e.estimator,
                    e.value
                );
            }
        }
    }
}

#[test]
fn conformance_terms_are_capped_and_mean_is_non_negative() {
    for q in conformance_posteriors() {
        for k in [1, 2, 16, 200] {
            for est in estimators_for(&q, 300, 3, k) {
                let e = est.estimate(&q).unwrap();
                assert!(
                    e.terms.iter().all(|&t| t <= e.ln_cap + 1e-12),
                    "{} K={k}",
                    e.estimator
                );
                assert!(e.ln_cap <= e.ln_group_order + 1e-12 || e.k.is_some());
                assert!(
                    e.value >= -3.0 * e.std_err.unwrap() - 1e-12,
                    "{}: {}",
                    e.estimator,
                    e.value
                );
                assert!(e.value <= e.ln_group_order + 1e-12);
                assert!((e.entropy_sym - e.value - e.entropy_q).abs() < 1e-9);
                if k == 1 && e.k == Some(1) {
                    assert!(
                        e.terms.iter().all(|&t| t == 0.0),
                        "K = 1 must give exactly 0"
                    );
                }
            }
        }
    }
}

#[test]
fn a_single_infonce_term_can_be_negative() {
    // Units overlap heavily: q(g⁻¹ω) > q(ω) happens, so single terms dip below 0 while
    // the mean stays ≥ 0. This documents why the per-draw lower bound is not 0.
    let q = two_parameter_model([0.1, -0.1], [1.0, 1.0]);
    let e = InfoNce::new(2)
        .unwrap()
        .samples(2000)
        .unwrap()
        .seed(1)
        .estimate(&q)
        .unwrap();
    assert!(e.terms.iter().any(|&t| t < 0.0));
    assert!(e.value >= -3.0 * se(&e));
}

#[test]
fn conformance_infonce_climbs_toward_exact_on_a_doubling_grid() {
    for q in conformance_posteriors() {
        let exact = ExactEnumeration::new()
            .samples(3000)
            .unwrap()
            .seed(11)
            .estimate(&q)
            .unwrap();
        let ks: Vec<usize> = (0..=9).map(|i| 1 << i).collect();
        let ests: Vec<Estimate> = ks
            .iter()
            .map(|&k| {
                InfoNce::new(k)
                    .unwrap()
                    .samples(3000)
                    .unwrap()
                    .seed(12)
                    .estimate(&q)
                    .unwrap()
            })
            .collect();
        eprintln!(
            "widths {:?}: exact I = {:.4} ± {:.4}",
            q.arch().unwrap().widths(),
            exact.value,
            se(&exact)
        );
        for (k, e) in ks.iter().zip(&ests) {
            eprintln!("  K = {k:4}: I^K = {:.4} ± {:.4}", e.value, se(e));
            assert!(
                e.value <= exact.value + 3.0 * se2(e, &exact),
                "K={k}: {} > exact {}",
                e.value,
                exact.value
            );
        }
        // The common seed makes neighbouring K strongly correlated; require monotone
        // growth within noise, and a strict climb over the whole grid.
        for w in ests.windows(2) {
            assert!(w[1].value >= w[0].value - 3.0 * se2(&w[0], &w[1]));
        }
        let last = ests.last().unwrap();
        assert!(last.value > ests[1].value + 3.0 * se2(last, &ests[1]));
        assert!(exact.value - last.value < 0.15 * exact.value + 3.0 * se2(last, &exact));
    }
}

#[test]
fn conformance_same_seed_same_bits_at_any_thread_count() {
    let run = |threads: usize, est: &dyn MiEstimator, q: &MeanFieldGaussian| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| est.estimate(q).unwrap())
    };
    for q in conformance_posteriors() {
        let mut all = estimators_for(&q, 64, 9, 32);
        // The issue 7 estimators too (every estimator of the crate).
        let sandwich = Sandwich::new(8).unwrap().samples(64).unwrap().seed(9);
        all.push(Box::new(sandwich.lower()));
        all.push(Box::new(sandwich.upper()));
        if q.arch().unwrap().hidden_widths().len() == 1 {
            all.push(Box::new(ExactPruned::new().samples(64).unwrap().seed(9)));
            all.push(Box::new(PairwiseBound::Bhattacharyya));
            all.push(Box::new(PairwiseBound::Kl));
        }
        for est in all {
            let one = run(1, est.as_ref(), &q);
            let two = run(2, est.as_ref(), &q);
            let again = run(2, est.as_ref(), &q);
            let bits = |e: &Estimate| {
                let mut b: Vec<u64> = e.terms.iter().map(|t| t.to_bits()).collect();
                b.push(e.value.to_bits());
                b
            };
            assert_eq!(bits(&one), bits(&two), "{}", one.estimator);
            assert_eq!(bits(&two), bits(&again));
            assert_eq!(one.value.to_bits(), two.value.to_bits());
        }
    }
}

#[test]
fn bad_settings_are_named_errors() {
    let e = InfoNce::new(0).unwrap_err();
    assert!(e.to_string().contains("`k` = 0"), "{e}");
    let zero_draws = [
        InfoNce::new(4).unwrap().samples(0).map(drop),
        ExactEnumeration::new().samples(0).map(drop),
        ExactPermanent::new().samples(0).map(drop),
        ExactPruned::new().samples(0).map(drop),
    ];
    for result in zero_draws {
        let e = result.unwrap_err();
        assert!(e.to_string().contains("`samples` = 0"), "{e}");
    }
    let big = random_posterior(Arch::builder(vec![2, 11, 1]).check().unwrap(), 1, 1.0);
    let e = ExactEnumeration::new()
        .samples(1)
        .unwrap()
        .estimate(&big)
        .unwrap_err();
    assert!(matches!(e, Error::GroupTooLarge { .. }), "{e}");
    let wide = random_posterior(
        Arch::builder(vec![1, MAX_PERMANENT_WIDTH + 1, 1])
            .check()
            .unwrap(),
        1,
        1.0,
    );
    let e = ExactPermanent::new()
        .samples(1)
        .unwrap()
        .estimate(&wide)
        .unwrap_err();
    assert!(matches!(e, Error::WidthTooLarge { width: 25, .. }), "{e}");
    let deep = random_posterior(Arch::builder(vec![2, 3, 3, 1]).check().unwrap(), 1, 1.0);
    assert!(matches!(
        ExactPermanent::new().estimate(&deep),
        Err(Error::UnsupportedArchitecture { .. })
    ));
    assert!(matches!(
        InfoNce::new(4)
            .unwrap()
            .path(InfoNcePath::UnitCost)
            .estimate(&deep),
        Err(Error::UnsupportedArchitecture { .. })
    ));
}
