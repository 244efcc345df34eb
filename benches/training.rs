//! Criterion benchmark of one MNIST training epoch (issue 4): 600 steps of batch 100,
//! one weight draw per step, 784-30-10, MFVI and the symmetrized objective with K = 20.
//!
//! Uses the full training set when this machine has it (`$MI_EST_MNIST`, else the data
//! cache that `mi-est data mnist` fills), else the bundled 2,000-image subset tiled to
//! 60,000 rows (same cost). `benches/pytorch_epoch.py` times the same epoch in PyTorch.
//! Run with `cargo bench --bench training`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use faer::Mat;
use std::hint::black_box;
use std::path::PathBuf;

use mi_est::data::{Dataset, Targets};
use mi_est::data::{MnistSplit, load_mnist};
use mi_est::estimators::{InfoNce, MiGradient};
use mi_est::train::{TrainConfig, train};
use mi_est::weights::Arch;
use mi_est::weights::Likelihood;

fn mnist_60k() -> Dataset {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(full) = mi_est::data::fetch::local_mnist() {
        return load_mnist(&full, MnistSplit::Train, None, &Default::default())
            .expect("the full MNIST");
    }
    let small = load_mnist(
        &root.join("data/mnist-small"),
        MnistSplit::Train,
        None,
        &Default::default(),
    )
    .expect("bundled MNIST");
    let n = small.len();
    let x = Mat::from_fn(60_000, 784, |r, c| small.x()[(r % n, c)]);
    let labels = match small.targets() {
        Targets::Classes(y) => (0..60_000).map(|r| y[r % n]).collect(),
        Targets::Values(_) => unreachable!("MNIST has labels"),
    };
    Dataset::new(x, Targets::Classes(labels)).expect("tiled data")
}

fn bench_epoch(c: &mut Criterion) {
    let data = mnist_60k();
    let arch = Arch::builder(vec![784, 30, 10]).check().expect("arch");
    let mut config = TrainConfig::new(Likelihood::Softmax);
    config.epochs = 1;
    config.batch_size = 100;
    config.lr = 1e-3;
    let mut group = c.benchmark_group("mnist_epoch_784_30_10");
    group.sample_size(10);
    group.throughput(Throughput::Elements(600));
    let sgm = InfoNce::new(20).unwrap();
    for (name, symmetry) in [("mfvi", None), ("sgm_k20", Some(&sgm as &dyn MiGradient))] {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                black_box(
                    train(&arch, &data, &config, symmetry, &mi_est::observe::Silent)
                        .expect("train"),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_epoch);
criterion_main!(benches);
