//! Analytic gradients against central finite differences (issue 4): the data term,
//! the KL term and the Î^K term, with respect to μ and ρ, for fixed ε and fixed
//! permutations, on nets whose hidden units overlap (so Î^K is not saturated and its
//! gradient is not trivially zero).

use faer::Mat;
use mi_est::data::{Dataset, Targets};
use mi_est::estimators::{InfoNce, InfoNcePath};
use mi_est::posterior::MeanFieldGaussian;
use mi_est::rng::stream;
use mi_est::symmetry::{Group, GroupElement};
use mi_est::train::elbo_step_grad;
use mi_est::weights::Likelihood;
use mi_est::weights::{Activation, Arch};
use rand::RngExt;
use rand_distr::StandardNormal;

const H: f64 = 1e-5;

fn nets() -> Vec<(&'static str, Arch)> {
    vec![
        (
            "paper 2-parameter",
            Arch::builder(vec![1, 2, 1])
                .bias(false)
                .fixed_layer(1, vec![1.0, 1.0], None)
                .check()
                .unwrap(),
        ),
        (
            "one hidden, biases",
            Arch::builder(vec![2, 3, 2]).check().unwrap(),
        ),
        (
            "one hidden, no biases, tanh",
            Arch::builder(vec![2, 4, 1])
                .bias(false)
                .activation(Activation::Tanh)
                .check()
                .unwrap(),
        ),
        (
            "two hidden, biases",
            Arch::builder(vec![2, 3, 2, 2]).check().unwrap(),
        ),
        (
            "two hidden, no biases",
            Arch::builder(vec![3, 2, 3, 1]).bias(false).check().unwrap(),
        ),
        (
            "fixed output layer with bias",
            Arch::builder(vec![2, 3, 2])
                .fixed_layer(
                    1,
                    vec![1.0, 1.0, 1.0, -0.5, -0.5, -0.5],
                    Some(vec![0.1, 0.2]),
                )
                .check()
                .unwrap(),
        ),
    ]
}

/// μ ~ N(0, 0.3²), ρ with σ in [0.3, 0.8]: hidden units overlap.
fn overlapping(arch: &Arch, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = stream(seed, 0);
    let p = arch.n_params();
    let mu = (0..p)
        .map(|_| 0.3 * rng.sample::<f64, _>(StandardNormal))
        .collect();
    let rho = (0..p)
        .map(|_| mi_est::posterior::softplus_inverse(rng.random_range(0.3..0.8)))
        .collect();
    (mu, rho)
}

/// Compares `analytic` (μ then ρ) with central differences of `f(μ, ρ)`.
fn check(
    name: &str,
    arch: &Arch,
    mu: &[f64],
    rho: &[f64],
    analytic: &[f64],
    f: impl Fn(&MeanFieldGaussian) -> f64,
) {
    let p = mu.len();
    let eval = |mu: &[f64], rho: &[f64]| {
        f(&MeanFieldGaussian::new(arch.clone(), mu.to_vec(), rho.to_vec()).unwrap())
    };
    let mut worst: f64 = 0.0;
    let scale = analytic.iter().map(|g| g.abs()).fold(1.0, f64::max);
    for k in 0..2 * p {
        let (mut mp, mut rp) = (mu.to_vec(), rho.to_vec());
        let (mut mm, mut rm) = (mu.to_vec(), rho.to_vec());
        if k < p {
            mp[k] += H;
            mm[k] -= H;
        } else {
            rp[k - p] += H;
            rm[k - p] -= H;
        }
        let fd = (eval(&mp, &rp) - eval(&mm, &rm)) / (2.0 * H);
        worst = worst.max((fd - analytic[k]).abs() / scale);
    }
    assert!(
        worst < 1e-6,
        "{name}: worst relative gradient error {worst:e}"
    );
}

fn to_mu_rho(q: &MeanFieldGaussian, g_mu: &[f64], mut g_sigma: Vec<f64>) -> Vec<f64> {
    q.sigma_grad_to_rho_in_place(&mut g_sigma);
    g_mu.iter().copied().chain(g_sigma).collect()
}

#[test]
fn infonce_gradient_matches_finite_differences() {
    for (i, (name, arch)) in nets().into_iter().enumerate() {
        let (mu, rho) = overlapping(&arch, 100 + i as u64);
        let q = MeanFieldGaussian::new(arch.clone(), mu.clone(), rho.clone()).unwrap();
        let mut rng = stream(200 + i as u64, 0);
        let eps: Vec<f64> = (0..arch.n_params())
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let group = Group::of(&arch);
        let perms: Vec<GroupElement> = (0..7).map(|_| group.random(&mut rng)).collect();
        let one_hidden = arch.hidden_widths().len() == 1;
        let paths: &[InfoNcePath] = if one_hidden {
            &[InfoNcePath::Generic, InfoNcePath::UnitCost]
        } else {
            &[InfoNcePath::Generic]
        };
        for &path in paths {
            let est = InfoNce::new(8).unwrap().path(path);
            let (mut gm, mut gs) = (vec![0.0; arch.n_params()], vec![0.0; arch.n_params()]);
            let term = est
                .term_with_permutations(&q, &eps, &perms, Some((&mut gm, &mut gs)))
                .unwrap();
            assert!(term < 8f64.ln() - 1e-3, "{name}: saturated term {term}");
            let analytic = to_mu_rho(&q, &gm, gs);
            let norm = analytic.iter().map(|g| g * g).sum::<f64>().sqrt();
            assert!(norm > 1e-2, "{name}: vacuous gradient (norm {norm})");
            check(
                &format!("{name} {path:?}"),
                &arch,
                &mu,
                &rho,
                &analytic,
                |q| est.term_with_permutations(q, &eps, &perms, None).unwrap(),
            );
        }
    }
}

#[test]
fn elbo_gradient_matches_finite_differences() {
    for (i, (name, arch)) in nets().into_iter().enumerate() {
        let (mu, rho) = overlapping(&arch, 300 + i as u64);
        let q = MeanFieldGaussian::new(arch.clone(), mu.clone(), rho.clone()).unwrap();
        let mut rng = stream(400 + i as u64, 0);
        let n = 12;
        let d0 = arch.widths()[0];
        let d_out = *arch.widths().last().unwrap();
        let x = Mat::from_fn(n, d0, |_, _| rng.sample::<f64, _>(StandardNormal));
        let eps: Vec<f64> = (0..arch.n_params())
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let rows: Vec<usize> = vec![0, 3, 4, 7, 11];
        let regression = Dataset::new(
            x.clone(),
            Targets::Values(Mat::from_fn(n, d_out, |_, _| {
                rng.sample::<f64, _>(StandardNormal)
            })),
        )
        .unwrap();
        let mut cases = vec![(Likelihood::Gaussian { precision: 2.5 }, regression)];
        if d_out > 1 {
            let labels = (0..n).map(|_| rng.random_range(0..d_out as u32)).collect();
            cases.push((
                Likelihood::Softmax,
                Dataset::new(x, Targets::Classes(labels)).unwrap(),
            ));
        }
        for (lik, data) in cases {
            for prior in [1.0, 0.4] {
                let (mut gm, mut gs) = (vec![0.0; arch.n_params()], vec![0.0; arch.n_params()]);
                elbo_step_grad(&q, lik, &data, &rows, &eps, prior, &mut gm, &mut gs).unwrap();
                let analytic = to_mu_rho(&q, &gm, gs);
                check(
                    &format!("{name} {lik} prior {prior}"),
                    &arch,
                    &mu,
                    &rho,
                    &analytic,
                    |q| {
                        let (mut a, mut b) =
                            (vec![0.0; arch.n_params()], vec![0.0; arch.n_params()]);
                        elbo_step_grad(q, lik, &data, &rows, &eps, prior, &mut a, &mut b).unwrap()
                    },
                );
            }
        }
    }
}

#[test]
fn kl_gradient_matches_finite_differences() {
    let arch = Arch::builder(vec![2, 3, 2]).check().unwrap();
    let (mu, rho) = overlapping(&arch, 7);
    let q = MeanFieldGaussian::new(arch.clone(), mu.clone(), rho.clone()).unwrap();
    let (mut gm, mut gs) = (vec![0.0; arch.n_params()], vec![0.0; arch.n_params()]);
    q.add_kl_grad(0.7, 1.0, &mut gm, &mut gs);
    let analytic = to_mu_rho(&q, &gm, gs);
    check("KL", &arch, &mu, &rho, &analytic, |q| {
        q.kl_to_prior(0.7).unwrap()
    });
}

#[test]
fn exact_permanent_objective_gradient_matches_finite_differences() {
    use mi_est::estimators::{ExactPermanent, MiGradient};
    for (i, (name, arch)) in nets().into_iter().enumerate() {
        if arch.hidden_widths().len() != 1 {
            continue;
        }
        let (mu, rho) = overlapping(&arch, 500 + i as u64);
        let q = MeanFieldGaussian::new(arch.clone(), mu.clone(), rho.clone()).unwrap();
        let mut rng = stream(600 + i as u64, 0);
        let eps: Vec<f64> = (0..arch.n_params())
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let est = ExactPermanent::new();
        let p = arch.n_params();
        let (mut gm, mut gs) = (vec![0.0; p], vec![0.0; p]);
        let term = est
            .term_and_grad(&q, &eps, &mut stream(0, 0), &mut gm, &mut gs)
            .unwrap();
        let ln_g = Group::of(&arch).ln_order();
        assert!(term < ln_g - 1e-3, "{name}: saturated term {term}");
        let analytic = to_mu_rho(&q, &gm, gs);
        let norm = analytic.iter().map(|g| g * g).sum::<f64>().sqrt();
        assert!(norm > 1e-2, "{name}: vacuous gradient (norm {norm})");
        check(
            &format!("{name} exact permanent"),
            &arch,
            &mu,
            &rho,
            &analytic,
            |q| {
                let (mut a, mut b) = (vec![0.0; p], vec![0.0; p]);
                est.term_and_grad(q, &eps, &mut stream(0, 0), &mut a, &mut b)
                    .unwrap()
            },
        );
    }
}

/// A training loop passes one `GradScratch` to every step. The terms, the gradients and
/// the random numbers consumed must be those of a fresh call, bit for bit, whatever the
/// scratch held before: buffers of an earlier posterior of the same net (the normal
/// case), of another net, or of another estimator.
#[test]
fn reused_scratch_gives_the_bits_of_a_fresh_call() {
    use mi_est::estimators::{ExactPermanent, GradScratch, MiGradient, Sandwich};
    let infonce: Vec<Box<dyn MiGradient>> = vec![
        Box::new(InfoNce::new(8).unwrap()),
        Box::new(InfoNce::new(8).unwrap().path(InfoNcePath::Generic)),
        Box::new(InfoNce::new(3).unwrap()),
    ];
    let mut scratch = GradScratch::default();
    let (mut checked, mut nonzero) = (0, 0);
    for (i, (name, arch)) in nets().into_iter().enumerate() {
        let one_hidden = arch.hidden_widths().len() == 1;
        let mut estimators: Vec<&dyn MiGradient> = infonce.iter().map(|b| b.as_ref()).collect();
        let (permanent, sandwich) = (ExactPermanent::new(), Sandwich::new(4).unwrap().lower());
        if one_hidden {
            estimators.push(&permanent);
            estimators.push(&sandwich);
        }
        for (e, est) in estimators.into_iter().enumerate() {
            // Several posteriors of the same net in a row, as the steps of a run.
            for step in 0..3u64 {
                let seed = 700 + 10 * i as u64 + step;
                let (mu, rho) = overlapping(&arch, seed);
                let q = MeanFieldGaussian::new(arch.clone(), mu, rho).unwrap();
                let mut rng = stream(seed, 1);
                let eps: Vec<f64> = (0..arch.n_params())
                    .map(|_| rng.sample(StandardNormal))
                    .collect();
                let p = arch.n_params();
                let (mut gm_a, mut gs_a) = (vec![0.0; p], vec![0.0; p]);
                let (mut gm_b, mut gs_b) = (gm_a.clone(), gs_a.clone());
                let (mut rng_a, mut rng_b) = (stream(seed, 2), stream(seed, 2));
                let fresh = est
                    .term_and_grad(&q, &eps, &mut rng_a, &mut gm_a, &mut gs_a)
                    .unwrap();
                let reused = est
                    .term_and_grad_in(&q, &eps, &mut rng_b, &mut gm_b, &mut gs_b, &mut scratch)
                    .unwrap();
                let what = format!("{name}, {} #{e}, step {step}", est.name());
                assert_eq!(fresh.to_bits(), reused.to_bits(), "{what}: term");
                assert!(
                    gm_a.iter()
                        .zip(&gm_b)
                        .all(|(a, b)| a.to_bits() == b.to_bits())
                        && gs_a
                            .iter()
                            .zip(&gs_b)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{what}: gradients"
                );
                // (All K − 1 draws can be the identity on a small group: a zero gradient.)
                nonzero += usize::from(gm_a.iter().any(|&g| g != 0.0));
                assert_eq!(rng_a.random::<u64>(), rng_b.random::<u64>(), "{what}: rng");
                checked += 1;
            }
        }
    }
    assert!(checked >= 50, "only {checked} cases");
    assert!(
        nonzero + 5 >= checked,
        "{nonzero} of {checked} gradients are not zero"
    );
}
