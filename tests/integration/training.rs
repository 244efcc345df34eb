//! Training runs end to end (issue 4): fits, determinism, divergence, MNIST loading.

use faer::Mat;
use mi_est::Error;
use mi_est::data::{DataSpec, MnistSplit, abs_regression, gaussian_mixture, load_mnist};
use mi_est::data::{Dataset, Targets};
use mi_est::elbo::predictive;
use mi_est::estimators::InfoNce;
use mi_est::study::{Objective, TrainRun, run_training};
use mi_est::train::{StepInfo, TrainConfig, train};
use mi_est::weights::Likelihood;
use mi_est::weights::{Activation, Arch};
use std::path::PathBuf;

fn bundled_mnist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist-small")
}

/// Remembers every step's ELBO per point.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<f64>>);

impl mi_est::observe::Observer for Recorder {
    fn step(&self, info: &StepInfo) {
        self.0.lock().unwrap().push(info.elbo_per_point);
    }
}

#[test]
fn mfvi_fits_the_papers_regression_task() {
    let data = abs_regression(100, 0.2, 0.0, 1).unwrap();
    let test = abs_regression(100, 0.2, 0.0, 2).unwrap();
    let arch = Arch::builder(vec![1, 8, 1]).check().unwrap();
    let mut config = TrainConfig::new(Likelihood::Gaussian { precision: 100.0 });
    config.epochs = 300;
    config.batch_size = 10;
    config.lr = 1e-2;
    let recorder = Recorder::default();
    let outcome = train(&arch, &data, &config, None, &recorder).unwrap();
    let elbos = recorder.0.into_inner().unwrap();
    let first: f64 = elbos[..10].iter().sum::<f64>() / 10.0;
    let last = outcome.last_epoch_elbo_per_point;
    assert!(
        last > first + 1.0,
        "ELBO/N did not improve: {first} -> {last}"
    );
    let pred = predictive(&outcome.posterior, config.likelihood, &test, 200, 3).unwrap();
    // Targets range over [0, 2]; their variance is 0.33.
    assert!(pred.mse.unwrap() < 0.02, "test MSE {}", pred.mse.unwrap());
}

#[test]
fn sgm_and_mfvi_classify_a_gaussian_mixture() {
    let data = gaussian_mixture(600, 3, 4, 2.0, 5, 0).unwrap();
    let test = gaussian_mixture(600, 3, 4, 2.0, 5, 1).unwrap();
    let arch = Arch::builder(vec![4, 6, 3]).check().unwrap();
    let mut config = TrainConfig::new(Likelihood::Softmax);
    config.epochs = 20;
    config.batch_size = 50;
    config.lr = 1e-2;
    for sgm in [false, true] {
        let k = InfoNce::new(5).unwrap();
        let outcome = train(
            &arch,
            &data,
            &config,
            sgm.then_some(&k as _),
            &mi_est::observe::Silent,
        )
        .unwrap();
        let acc = predictive(&outcome.posterior, Likelihood::Softmax, &test, 100, 1)
            .unwrap()
            .accuracy
            .unwrap();
        assert!(acc > 0.85, "sgm={sgm}: accuracy {acc}");
        assert_eq!(outcome.mean_mi_term.is_some(), sgm);
        if sgm {
            let m = outcome.mean_mi_term.unwrap();
            assert!(m > 0.0 && m <= 5f64.ln() + 1e-12);
        }
    }
}

#[test]
fn training_is_deterministic_at_any_thread_count() {
    let run = TrainRun {
        data: DataSpec::Abs { alpha: 0.1 },
        hidden: vec![2],
        activation: Activation::Relu,
        objective: Objective::Sgm { k: 2 },
        config: {
            let mut c = TrainConfig::new(Likelihood::Gaussian { precision: 10.0 });
            c.epochs = 3;
            c.batch_size = 10;
            c.lr = 5e-3;
            c.seed = 4;
            c
        },
        predictive_samples: 50,
        elbo_samples: 8,
        eval_k: 16,
        mi_samples: 40,
        limits: Default::default(),
    };
    let go = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run_training(&run, &mi_est::observe::Silent).unwrap())
    };
    let (a, b) = (go(1), go(2));
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(a.file.posterior.mu()), bits(b.file.posterior.mu()));
    assert_eq!(bits(a.file.posterior.rho()), bits(b.file.posterior.rho()));
    assert_eq!(a.predictive, b.predictive);
    assert_eq!(a.elbo, b.elbo);
    assert_eq!(a.mi.value.to_bits(), b.mi.value.to_bits());
}

#[test]
fn a_diverging_run_stops_with_an_error_naming_the_step() {
    let x = Mat::from_fn(20, 1, |r, _| r as f64);
    // Targets at the largest accepted size, and a precision that makes the squared
    // error overflow on the first step.
    let y = Mat::from_fn(20, 1, |_, _| 1e30);
    let data = Dataset::new(x, Targets::Values(y)).unwrap();
    let arch = Arch::builder(vec![1, 2, 1]).check().unwrap();
    let mut config = TrainConfig::new(Likelihood::Gaussian { precision: 1e250 });
    config.batch_size = 5;
    let e = train(&arch, &data, &config, None, &mi_est::observe::Silent).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Diverged {
                step: 0,
                epoch: 0,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("step 0"), "{e}");
}

#[test]
fn bad_training_settings_are_named_errors() {
    let data = abs_regression(10, 0.1, 0.0, 1).unwrap();
    let arch = Arch::builder(vec![1, 2, 1]).check().unwrap();
    let base = TrainConfig::new(Likelihood::Gaussian { precision: 1.0 });
    for (field, config) in [
        (
            "lr",
            TrainConfig {
                lr: 0.0,
                ..base.clone()
            },
        ),
        (
            "lr",
            TrainConfig {
                lr: f64::NAN,
                ..base.clone()
            },
        ),
        (
            "batch_size",
            TrainConfig {
                batch_size: 0,
                ..base.clone()
            },
        ),
        (
            "epochs",
            TrainConfig {
                epochs: 0,
                ..base.clone()
            },
        ),
        (
            "prior_scale",
            TrainConfig {
                prior_scale: -1.0,
                ..base.clone()
            },
        ),
        (
            "precision",
            TrainConfig {
                likelihood: Likelihood::Gaussian { precision: 0.0 },
                ..base.clone()
            },
        ),
    ] {
        let e = train(&arch, &data, &config, None, &mi_est::observe::Silent).unwrap_err();
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    let wrong = Arch::builder(vec![2, 2, 1]).check().unwrap();
    assert!(matches!(
        train(&wrong, &data, &base, None, &mi_est::observe::Silent),
        Err(Error::LengthMismatch { .. })
    ));
    let softmax = TrainConfig::new(Likelihood::Softmax);
    assert!(
        train(&arch, &data, &softmax, None, &mi_est::observe::Silent)
            .unwrap_err()
            .to_string()
            .contains("class labels")
    );
    assert!(
        Dataset::new(Mat::<f64>::zeros(0, 1), Targets::Classes(vec![]))
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    let nan = Dataset::new(
        Mat::from_fn(2, 1, |r, _| if r == 1 { f64::NAN } else { 0.0 }),
        Targets::Classes(vec![0, 1]),
    );
    assert!(nan.unwrap_err().to_string().contains("x[1, 0]"));
}

#[test]
fn bundled_mnist_subset_loads_and_trains() {
    let train_set = load_mnist(
        &bundled_mnist(),
        MnistSplit::Train,
        None,
        &Default::default(),
    )
    .unwrap();
    let test_set = load_mnist(
        &bundled_mnist(),
        MnistSplit::Test,
        None,
        &Default::default(),
    )
    .unwrap();
    assert_eq!((train_set.len(), test_set.len()), (2000, 500));
    match train_set.targets() {
        Targets::Classes(y) => assert_eq!(&y[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]),
        _ => panic!("labels"),
    }
    match test_set.targets() {
        Targets::Classes(y) => assert_eq!(&y[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]),
        _ => panic!("labels"),
    }
    let x = train_set.x();
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for c in 0..x.ncols() {
        for r in 0..x.nrows() {
            lo = lo.min(x[(r, c)]);
            hi = hi.max(x[(r, c)]);
        }
    }
    assert_eq!((lo, hi), (0.0, 1.0));
    let arch = Arch::builder(vec![784, 10, 10]).check().unwrap();
    let mut config = TrainConfig::new(Likelihood::Softmax);
    config.epochs = 3;
    config.lr = 3e-3;
    let outcome = train(&arch, &train_set, &config, None, &mi_est::observe::Silent).unwrap();
    let acc = predictive(&outcome.posterior, Likelihood::Softmax, &test_set, 50, 1)
        .unwrap()
        .accuracy
        .unwrap();
    assert!(acc > 0.7, "accuracy {acc} after 3 epochs on 2000 digits");
}

#[test]
fn full_mnist_files_match_their_documented_provenance() {
    // The full set is not part of the repository: checked where this machine has it
    // ($MI_EST_MNIST, or the data cache after `mi-est data mnist`).
    let Some(dir) = mi_est::data::fetch::local_mnist() else {
        eprintln!("skipped: no full MNIST here (the bundled subset is tested instead)");
        return;
    };
    let train_set = load_mnist(&dir, MnistSplit::Train, None, &Default::default()).unwrap();
    let test_set = load_mnist(&dir, MnistSplit::Test, None, &Default::default()).unwrap();
    assert_eq!((train_set.len(), test_set.len()), (60_000, 10_000));
    let counts = |d: &Dataset| match d.targets() {
        Targets::Classes(y) => y.iter().fold([0usize; 10], |mut c, &l| {
            c[l as usize] += 1;
            c
        }),
        _ => panic!("labels"),
    };
    assert_eq!(
        counts(&train_set),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        counts(&test_set),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let x = train_set.x();
    let mean = (0..x.ncols())
        .map(|c| x.col(c).iter().sum::<f64>())
        .sum::<f64>()
        / (60_000.0 * 784.0);
    assert!((mean - 0.1307).abs() < 1e-4, "pixel mean {mean}");
}

#[test]
fn local_reparameterization_matches_whole_network_draws() {
    for widths in [vec![4, 5, 3], vec![4, 5, 4, 3]] {
        local_reparameterization_case(widths);
    }
}

fn local_reparameterization_case(widths: Vec<usize>) {
    let data = gaussian_mixture(300, 3, 4, 1.0, 2, 0).unwrap();
    let arch = Arch::builder(widths).check().unwrap();
    let q = crate::common::random_posterior(arch.clone(), 5, 0.7);
    let s = 4000;
    let local = predictive(&q, Likelihood::Softmax, &data, s, 1).unwrap();
    // The same predictive from whole-network draws, computed here independently.
    let n = data.len();
    let mut prob = vec![[0.0f64; 3]; n];
    for k in 0..s {
        let w = q.sample(&mut mi_est::rng::stream(77, k as u64));
        let out = arch.forward(&w, data.x().as_ref()).unwrap();
        for (r, p) in prob.iter_mut().enumerate() {
            let m = (0..3)
                .map(|c| out[(r, c)])
                .fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = (0..3).map(|c| (out[(r, c)] - m).exp()).sum();
            for (c, pc) in p.iter_mut().enumerate() {
                *pc += (out[(r, c)] - m).exp() / z / s as f64;
            }
        }
    }
    let Targets::Classes(y) = data.targets() else {
        panic!("labels")
    };
    let nll = -prob
        .iter()
        .zip(y)
        .map(|(p, &l)| p[l as usize].ln())
        .sum::<f64>()
        / n as f64;
    assert!(
        (local.nll - nll).abs() < 0.02,
        "local {} vs whole-network {nll}",
        local.nll
    );
}

/// With a fixed first layer the predictive uses whole-network draws `ω_s = q.sample(
/// stream(seed, s))`, so its reduction can be recomputed here draw by draw with the
/// standard library's `exp`/`ln`: accuracy exactly, NLL and MSE to rounding. 1,000 draws
/// span many groups (and a partial last one); the bits do not depend on the threads.
#[test]
fn predictive_reduction_matches_a_direct_average_at_any_thread_count() {
    // A fixed layer keeps the units exchangeable: every unit gets the same row and bias.
    let fixed: Vec<f64> = (0..20).map(|i| [0.5, -1.0, 0.3, 0.8][i % 4]).collect();
    let arch = Arch::builder(vec![4, 5, 3])
        .fixed_layer(0, fixed, Some(vec![0.1; 5]))
        .check()
        .unwrap();
    let q = crate::common::random_posterior(arch.clone(), 6, 0.8);
    let data = gaussian_mixture(700, 3, 4, 1.0, 2, 1).unwrap();
    let (s, seed) = (1000, 5);
    let in_pool = |threads: usize, lik: Likelihood, d: &Dataset| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| predictive(&q, lik, d, s, seed).unwrap())
    };
    let p = in_pool(1, Likelihood::Softmax, &data);
    for threads in [2, 3] {
        let other = in_pool(threads, Likelihood::Softmax, &data);
        assert_eq!(p.nll.to_bits(), other.nll.to_bits(), "{threads} threads");
        assert_eq!(p.accuracy, other.accuracy, "{threads} threads");
    }
    let n = data.len();
    let (mut prob, mut ln_sum) = (vec![[0.0f64; 3]; n], vec![f64::NEG_INFINITY; n]);
    let Targets::Classes(y) = data.targets() else {
        panic!("labels")
    };
    let mut regression_out = vec![[0.0f64; 3]; n];
    for k in 0..s {
        let w = q.sample(&mut mi_est::rng::stream(seed, k as u64));
        let out = arch.forward(&w, data.x().as_ref()).unwrap();
        for r in 0..n {
            let m = (0..3)
                .map(|c| out[(r, c)])
                .fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = (0..3).map(|c| (out[(r, c)] - m).exp()).sum();
            for c in 0..3 {
                prob[r][c] += (out[(r, c)] - m).exp() / z;
                regression_out[r][c] += out[(r, c)];
            }
            let lp = out[(r, y[r] as usize)] - m - z.ln();
            let hi = ln_sum[r].max(lp);
            ln_sum[r] = hi + ((ln_sum[r] - hi).exp() + (lp - hi).exp()).ln();
        }
    }
    let correct = (0..n)
        .filter(|&r| {
            let best = (0..3)
                .max_by(|&a, &b| prob[r][a].total_cmp(&prob[r][b]))
                .unwrap();
            best == y[r] as usize
        })
        .count();
    assert_eq!(p.accuracy, Some(correct as f64 / n as f64));
    let nll = -ln_sum.iter().map(|l| l - (s as f64).ln()).sum::<f64>() / n as f64;
    assert!(
        (p.nll - nll).abs() < 1e-12 * nll.abs(),
        "{} vs {nll}",
        p.nll
    );
    assert!(
        p.nll > 0.05 && correct > n / 4 && correct < n,
        "a vacuous case: nll {}, {correct} of {n}",
        p.nll
    );

    // The Gaussian likelihood on the same outputs: y = one-hot labels.
    let onehot = Mat::from_fn(n, 3, |r, c| f64::from(y[r] as usize == c));
    let reg = Dataset::new(data.x().to_owned(), Targets::Values(onehot.clone())).unwrap();
    let lik = Likelihood::Gaussian { precision: 2.0 };
    let g = in_pool(1, lik, &reg);
    assert_eq!(g.nll.to_bits(), in_pool(3, lik, &reg).nll.to_bits());
    let mse = (0..n)
        .flat_map(|r| (0..3).map(move |c| (r, c)))
        .map(|(r, c)| (onehot[(r, c)] - regression_out[r][c] / s as f64).powi(2))
        .sum::<f64>()
        / (3 * n) as f64;
    let got = g.mse.unwrap();
    assert!((got - mse).abs() < 1e-12 * mse, "{got} vs {mse}");
    assert!(g.nll.is_finite() && g.nll > 0.0);
}

/// The ELBO's blocked pass (groups of draws sharing blocks of rows) gives the bits of
/// the plain computation, one forward pass over all rows per draw, at any thread count:
/// 1,300 rows (three blocks, a partial last one), 20 draws (two groups), two layers.
#[test]
fn elbo_equals_one_forward_pass_per_draw_bit_for_bit() {
    let data = gaussian_mixture(1300, 3, 4, 1.0, 2, 4).unwrap();
    let arch = Arch::builder(vec![4, 6, 5, 3]).check().unwrap();
    let q = crate::common::random_posterior(arch.clone(), 8, 0.6);
    let (s, seed) = (20, 9);
    let rows: Vec<usize> = (0..data.len()).collect();
    let lls: Vec<f64> = (0..s)
        .map(|k| {
            let w = q.sample(&mut mi_est::rng::stream(seed, k as u64));
            let out = arch.forward(&w, data.x().as_ref()).unwrap();
            Likelihood::Softmax.ln_lik(&out, data.targets(), &rows, None)
        })
        .collect();
    let mean = lls.iter().sum::<f64>() / s as f64;
    for threads in [1, 3] {
        let e = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                mi_est::elbo::elbo(
                    &q,
                    Likelihood::Softmax,
                    &data,
                    1.0,
                    s,
                    seed,
                    &Default::default(),
                )
                .unwrap()
            });
        assert_eq!(
            e.expected_ln_lik.to_bits(),
            mean.to_bits(),
            "{threads} threads"
        );
        assert_eq!(e.elbo.to_bits(), (mean - e.kl).to_bits());
    }
}
