//! Properties of the weight space, the group action and the posterior (issue 2).

use faer::Mat;
use mi_est::posterior::{HALF_LN_2PI, MeanFieldGaussian};
use mi_est::rng::stream;
use mi_est::symmetry::{ActionMap, Group};
use mi_est::weights::Arch;
use proptest::prelude::*;
use rand::RngExt;
use rand_distr::StandardNormal;
use statrs::distribution::{Continuous, Normal};
use statrs::statistics::Distribution;

use crate::common::{NetCase, net_case, random_posterior};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn group_axioms_hold(case in net_case()) {
        let arch = case.arch();
        let group = Group::of(&arch);
        let mut rng = stream(case.seed, 1);
        let (g, h, k) = (group.random(&mut rng), group.random(&mut rng), group.random(&mut rng));
        let e = group.identity();
        prop_assert_eq!(e.compose(&g), g.clone());
        prop_assert_eq!(g.compose(&e), g.clone());
        prop_assert!(g.compose(&g.inverse()).is_identity());
        prop_assert!(g.inverse().compose(&g).is_identity());
        prop_assert_eq!(g.compose(&h).compose(&k), g.compose(&h.compose(&k)));
    }

    #[test]
    fn action_is_compatible_with_composition(case in net_case()) {
        let arch = case.arch();
        let group = Group::of(&arch);
        let mut rng = stream(case.seed, 2);
        let (g, h) = (group.random(&mut rng), group.random(&mut rng));
        let v: Vec<f64> = (0..arch.n_params()).map(|_| rng.sample(StandardNormal)).collect();
        let (mg, mh) = (ActionMap::new(&arch, &g), ActionMap::new(&arch, &h));
        let gh_v = ActionMap::new(&arch, &g.compose(&h)).apply(&v);
        prop_assert_eq!(&gh_v, &mg.apply(&mh.apply(&v)));
        prop_assert_eq!(ActionMap::new(&arch, &group.identity()).apply(&v), v.clone());
        // The inverse action through the map equals the action of g⁻¹.
        let mut back = vec![0.0; v.len()];
        mg.apply_inverse_in_place(&mg.apply(&v), &mut back);
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(ActionMap::new(&arch, &g.inverse()).apply(&v), {
            let mut out = vec![0.0; v.len()];
            mg.apply_inverse_in_place(&v, &mut out);
            out
        });
    }

    #[test]
    fn action_preserves_network_output(case in net_case()) {
        let arch = case.arch();
        let group = Group::of(&arch);
        let mut rng = stream(case.seed, 3);
        let w: Vec<f64> = (0..arch.n_params()).map(|_| rng.sample(StandardNormal)).collect();
        let g = group.random(&mut rng);
        let gw = ActionMap::new(&arch, &g).apply(&w);
        let x = Mat::from_fn(7, arch.widths()[0], |_, _| 3.0 * rng.sample::<f64, _>(StandardNormal));
        let y = arch.forward(&w, x.as_ref()).unwrap();
        let gy = arch.forward(&gw, x.as_ref()).unwrap();
        for r in 0..y.nrows() {
            for c in 0..y.ncols() {
                prop_assert!((y[(r, c)] - gy[(r, c)]).abs() <= 1e-12 * y[(r, c)].abs().max(1.0),
                    "{:?}: {} vs {}", case, y[(r, c)], gy[(r, c)]);
            }
        }
    }

    #[test]
    fn action_preserves_norm_and_posterior_density(case in net_case()) {
        let q = case.posterior();
        let arch = q.arch().unwrap().clone();
        let group = Group::of(&arch);
        let mut rng = stream(case.seed, 4);
        let g = group.random(&mut rng);
        let map = ActionMap::new(&arch, &g);
        let v = q.sample(&mut rng);
        let gv = map.apply(&v);
        let norm = |u: &[f64]| u.iter().map(|x| x * x).sum::<f64>();
        prop_assert!((norm(&v) - norm(&gv)).abs() <= 1e-12 * norm(&v).max(1.0));
        let ln_q = q.ln_q(&v).unwrap();
        // ln (g·q)(g·v) = ln q(v), both through the permuted posterior and the map.
        let via_permuted = q.permuted(&g).ln_q(&gv).unwrap();
        let via_map = q.ln_q_inverse_permuted(&gv, &map).unwrap();
        prop_assert!((via_permuted - ln_q).abs() <= 1e-10 * ln_q.abs().max(1.0));
        prop_assert!((via_map - ln_q).abs() <= 1e-10 * ln_q.abs().max(1.0));
    }

    #[test]
    fn ln_q_entropy_and_kl_match_independent_computations(case in net_case(), prior_scale in 0.3f64..3.0) {
        let q = case.posterior();
        let mut rng = stream(case.seed, 5);
        let v = q.sample(&mut rng);
        let normals: Vec<Normal> = q.mu().iter().zip(q.sigma()).map(|(&m, &s)| Normal::new(m, s).unwrap()).collect();
        let ln_q: f64 = normals.iter().zip(&v).map(|(n, &x)| n.ln_pdf(x)).sum();
        prop_assert!((q.ln_q(&v).unwrap() - ln_q).abs() <= 1e-10 * ln_q.abs().max(1.0));
        let entropy: f64 = normals.iter().map(|n| n.entropy().unwrap()).sum();
        prop_assert!((q.entropy() - entropy).abs() <= 1e-10 * entropy.abs().max(1.0));
        // KL per coordinate by Simpson's rule on ±12σ: ∫ q ln(q/p).
        let prior = Normal::new(0.0, prior_scale).unwrap();
        let kl: f64 = normals.iter().map(|n| {
            let (m, s) = (n.mean().unwrap(), n.std_dev().unwrap());
            simpson(|x| n.pdf(x) * (n.ln_pdf(x) - prior.ln_pdf(x)), m - 12.0 * s, m + 12.0 * s, 2000)
        }).sum();
        let closed = q.kl_to_prior(prior_scale).unwrap();
        prop_assert!((closed - kl).abs() <= 1e-7 * kl.abs().max(1.0), "{} vs {}", closed, kl);
    }
}

fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        s += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

#[test]
fn sampling_is_reparameterized_and_seeded() {
    let arch = Arch::builder(vec![3, 4, 2]).check().unwrap();
    let q = random_posterior(arch, 11, 1.0);
    let a = q.sample(&mut stream(5, 0));
    let b = q.sample(&mut stream(5, 0));
    assert_eq!(a, b);
    let mut eps = vec![0.0; q.n_params()];
    let mut out = vec![0.0; q.n_params()];
    q.sample_in_place(&mut stream(5, 0), &mut eps, &mut out);
    assert_eq!(out, a);
    for p in 0..q.n_params() {
        assert_eq!(out[p], q.mu()[p] + q.sigma()[p] * eps[p]);
    }
    // ln q from ε alone: −½|ε|² − Σ ln σ − (P/2) ln 2π.
    let from_eps = -0.5 * eps.iter().map(|e| e * e).sum::<f64>()
        - q.sum_ln_sigma()
        - q.n_params() as f64 * HALF_LN_2PI;
    assert!((q.ln_q(&out).unwrap() - from_eps).abs() < 1e-10);
}

#[test]
fn the_papers_two_parameter_model_is_swap_invariant() {
    let case = NetCase {
        widths: vec![1, 2, 1],
        bias: false,
        fixed_output: false,
        activation: Default::default(),
        seed: 0,
    };
    let arch = Arch::builder(case.widths)
        .bias(false)
        .fixed_layer(1, vec![1.0, 1.0], None)
        .check()
        .unwrap();
    assert_eq!(arch.n_params(), 2);
    let group = Group::of(&arch);
    assert_eq!(group.order(), Some(2));
    let swap = group.elements(2).unwrap().nth(1).unwrap();
    let w = [0.7, -1.3];
    assert_eq!(ActionMap::new(&arch, &swap).apply(&w), vec![-1.3, 0.7]);
    let q = MeanFieldGaussian::from_mu_sigma(arch, vec![0.5, -0.2], vec![0.3, 0.9]).unwrap();
    let gq = q.permuted(&swap);
    assert_eq!(gq.mu(), &[-0.2, 0.5]);
    assert_eq!(gq.sigma(), &[0.9, 0.3]);
}
