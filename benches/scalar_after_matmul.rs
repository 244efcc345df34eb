//! Criterion benchmark `scalar_after_matmul` (issue 13): the throughput of scalar
//! `exp`/`ln` work (softplus and ln σ over 4,096 parameters, as in the trainer's
//! per-parameter pass) measured right after
//!
//! * `clean`: nothing but a `vzeroupper` (the baseline),
//! * `after_faer_matmul`: a raw faer product (100×784 times 784×30), which leaves the
//!   upper vector state dirty,
//! * `after_our_matmul`: the same product through `mi_est::linalg::matmul`.
//!
//! On Intel AVX-512 servers the middle case ran ~30× slower; the helper must keep the
//! last case within 1.2× of the first. Only the scalar loop is timed.
//! Run with `cargo bench --bench scalar_after_matmul`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use faer::{Accum, Mat, Par};
use std::hint::black_box;
use std::time::{Duration, Instant};

use mi_est::linalg::{clear_upper_vector_state, matmul};
use mi_est::posterior::softplus;

const N: usize = 4096;

#[inline(never)]
fn scalar_pass(rho: &[f64]) -> f64 {
    let mut acc = 0.0;
    for &r in rho {
        acc += softplus(r).ln();
    }
    acc
}

fn bench(c: &mut Criterion) {
    let a = Mat::from_fn(100, 784, |r, c| ((r * 7 + c * 3) % 11) as f64 / 11.0);
    let b = Mat::from_fn(784, 30, |r, c| ((r + 2 * c) % 5) as f64 * 0.01);
    let mut z = Mat::<f64>::zeros(100, 30);
    let rho: Vec<f64> = (0..N).map(|i| -6.0 + 8.0 * i as f64 / N as f64).collect();
    let mut group = c.benchmark_group("scalar_after_matmul");
    group.throughput(Throughput::Elements(N as u64));
    for case in ["clean", "after_faer_matmul", "after_our_matmul"] {
        group.bench_function(BenchmarkId::from_parameter(case), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    match case {
                        "clean" => clear_upper_vector_state(),
                        "after_faer_matmul" => faer::linalg::matmul::matmul(
                            &mut z,
                            Accum::Replace,
                            &a,
                            &b,
                            1.0,
                            Par::Seq,
                        ),
                        _ => matmul(&mut z, Accum::Replace, &a, &b, 1.0, Par::Seq),
                    }
                    let started = Instant::now();
                    black_box(scalar_pass(black_box(&rho)));
                    total += started.elapsed();
                }
                clear_upper_vector_state();
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
