//! Criterion benchmarks of the I(g; ω) estimators (issue 3).
//!
//! * `infonce/{generic,unit_cost}/K`: one `InfoNce::estimate` with S = 2 weight draws on a
//!   784-30-10 posterior, on one thread; throughput in draws × contrast terms × P
//!   (`benches/numpy_infonce.py` is the same generic estimate in NumPy);
//!   `infonce/generic_784_30_20_10/K` the generic path on a two-hidden-layer net.
//! * `ln_permanent/d`: `ln perm(exp C)` for the unit cost matrix of one draw of a
//!   784-d-10 posterior, one thread.
//!
//! * `wide/{exact_pruned,sandwich_k16,sandwich_k256}/d`: S = 2 draws of a 784-d-10
//!   posterior at the usual initialization, one thread.
//!
//! * `spec/{infonce_k256,sandwich_k16,sandwich_k256}/cnn_digits`: S = 2 draws of the
//!   bayesian-torch CNN of `data/specs/cnn-digits.safetensors` (conv 1→8 → conv 8→16 →
//!   linear 256→10, 3818 parameters) under its permutation spec, one thread; the I^K
//!   throughput in draws × contrast terms × P (`benches/numpy_infonce.py --cnn-digits` is
//!   the same estimate in NumPy).
//!
//! Run with `cargo bench --bench estimators`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use mi_est::demo::demo_posterior;
use mi_est::estimators::{
    ExactPruned, InfoNce, InfoNcePath, MiEstimator, PermanentWorkspace, Sandwich, UnitCost,
    ln_permanent_in_place,
};
use mi_est::rng::stream;
use mi_est::weights::Activation;

fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool")
}

fn bench_infonce(c: &mut Criterion) {
    let q = demo_posterior(&[784, 30, 10], Activation::Relu, 0, -3.0).expect("posterior");
    let pool = one_thread();
    let s = 2;
    let mut group = c.benchmark_group("infonce");
    group.sample_size(10);
    for k in [16usize, 256, 4096] {
        group.throughput(Throughput::Elements((s * k * q.n_params()) as u64));
        for (name, path) in [
            ("generic", InfoNcePath::Generic),
            ("unit_cost", InfoNcePath::UnitCost),
        ] {
            let est = InfoNce::new(k)
                .unwrap()
                .samples(s)
                .unwrap()
                .seed(1)
                .path(path);
            group.bench_with_input(BenchmarkId::new(name, k), &k, |b, _| {
                b.iter(|| pool.install(|| black_box(est.estimate(&q).expect("estimate"))))
            });
        }
    }
    // The generic path on a deeper net (no unit-cost shortcut there).
    let deep = demo_posterior(&[784, 30, 20, 10], Activation::Relu, 0, -3.0).expect("posterior");
    for k in [256usize, 4096] {
        group.throughput(Throughput::Elements((s * k * deep.n_params()) as u64));
        let est = InfoNce::new(k)
            .unwrap()
            .samples(s)
            .unwrap()
            .seed(1)
            .path(InfoNcePath::Generic);
        group.bench_with_input(BenchmarkId::new("generic_784_30_20_10", k), &k, |b, _| {
            b.iter(|| pool.install(|| black_box(est.estimate(&deep).expect("estimate"))))
        });
    }
    group.finish();
}

fn bench_permanent(c: &mut Criterion) {
    let mut group = c.benchmark_group("ln_permanent");
    group.sample_size(10);
    for d in [12usize, 16, 20] {
        let q = demo_posterior(&[784, d, 10], Activation::Relu, 0, -3.0).expect("posterior");
        let uc = UnitCost::new(&q).expect("one hidden layer");
        let omega = q.sample(&mut stream(3, 0));
        let cost = uc.matrix(&omega);
        let mut ws = PermanentWorkspace::default();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(d), &d, |b, &d| {
            b.iter(|| black_box(ln_permanent_in_place(&cost, d, &mut ws).expect("permanent")))
        });
    }
    group.finish();
}

fn bench_wide(c: &mut Criterion) {
    let pool = one_thread();
    let mut group = c.benchmark_group("wide");
    group.sample_size(10);
    for d in [30usize, 100] {
        let q = demo_posterior(&[784, d, 10], Activation::Relu, 0, -3.0).expect("posterior");
        group.throughput(Throughput::Elements(2));
        let pruned = ExactPruned::new().samples(2).unwrap().seed(1);
        group.bench_with_input(BenchmarkId::new("exact_pruned", d), &d, |b, _| {
            b.iter(|| pool.install(|| black_box(pruned.estimate(&q).expect("pruned"))))
        });
        for k in [16usize, 256] {
            let sandwich = Sandwich::new(k).unwrap().samples(2).unwrap().seed(1);
            group.bench_with_input(BenchmarkId::new(format!("sandwich_k{k}"), d), &d, |b, _| {
                b.iter(|| pool.install(|| black_box(sandwich.estimate_both(&q).expect("sandwich"))))
            });
        }
    }
    group.finish();
}

fn bench_spec(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/specs");
    let text = std::fs::read_to_string(root.join("cnn-digits.spec.json")).expect("spec");
    let spec = mi_est::symmetry::spec::PermutationSpec::from_json(&text).expect("spec");
    let (file, _) = mi_est::io::load_with_bytes(
        &root.join("cnn-digits.safetensors"),
        mi_est::io::ReadOptions::spec(Some(&spec)),
    )
    .expect("posterior");
    let q = file.posterior;
    let pool = one_thread();
    let s = 2;
    let mut group = c.benchmark_group("spec");
    group.sample_size(10);
    let k = 256;
    group.throughput(Throughput::Elements((s * k * q.n_params()) as u64));
    let est = InfoNce::new(k).unwrap().samples(s).unwrap().seed(1);
    group.bench_function(BenchmarkId::new("infonce_k256", "cnn_digits"), |b| {
        b.iter(|| pool.install(|| black_box(est.estimate(&q).expect("estimate"))))
    });
    group.throughput(Throughput::Elements(s as u64));
    for k in [16usize, 256] {
        let sandwich = Sandwich::new(k).unwrap().samples(s).unwrap().seed(1);
        group.bench_function(
            BenchmarkId::new(format!("sandwich_k{k}"), "cnn_digits"),
            |b| {
                b.iter(|| pool.install(|| black_box(sandwich.estimate_both(&q).expect("sandwich"))))
            },
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_infonce,
    bench_permanent,
    bench_wide,
    bench_spec
);
criterion_main!(benches);
