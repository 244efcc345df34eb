//! Synthetic data sets.

use faer::Mat;
use rand::RngExt;
use rand_distr::StandardNormal;

use crate::data::{Dataset, Targets};
use crate::error::{Error, Result};
use crate::rng::stream;

/// The paper's regression task (§5): `x ~ U[−10, 10]`, `y = α|x| + noise_std · ε`.
///
/// # Errors
///
/// [`Error::InvalidParameter`] for `n = 0` or a non-finite α or negative noise.
pub fn abs_regression(n: usize, alpha: f64, noise_std: f64, seed: u64) -> Result<Dataset> {
    if !alpha.is_finite() {
        return Err(Error::invalid("alpha", alpha, "must be finite"));
    }
    if !(noise_std.is_finite() && noise_std >= 0.0) {
        return Err(Error::invalid(
            "noise_std",
            noise_std,
            "must be finite and >= 0",
        ));
    }
    let mut rng = stream(seed, 0);
    let xs: Vec<f64> = (0..n).map(|_| rng.random_range(-10.0..10.0)).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|x| alpha * x.abs() + noise_std * rng.sample::<f64, _>(StandardNormal))
        .collect();
    Dataset::new(
        Mat::from_fn(n, 1, |r, _| xs[r]),
        Targets::Values(Mat::from_fn(n, 1, |r, _| ys[r])),
    )
}

/// A classification task: `n_classes` isotropic Gaussian clusters in `dim` dimensions
/// with unit variance, means drawn from N(0, separation²I) with `seed`, classes
/// balanced. Splits of one task share the means and differ in `split` (0 = train,
/// 1 = test, …), which seeds the points.
///
/// # Errors
///
/// [`Error::InvalidParameter`] for `n = 0`, `n_classes = 0`, `dim = 0` or a negative
/// separation.
pub fn gaussian_mixture(
    n: usize,
    n_classes: usize,
    dim: usize,
    separation: f64,
    seed: u64,
    split: u64,
) -> Result<Dataset> {
    if n_classes == 0 || dim == 0 {
        return Err(Error::invalid(
            "n_classes/dim",
            format!("{n_classes}/{dim}"),
            "must be >= 1",
        ));
    }
    if !(separation.is_finite() && separation >= 0.0) {
        return Err(Error::invalid(
            "separation",
            separation,
            "must be finite and >= 0",
        ));
    }
    let mut rng = stream(seed, 0);
    let means: Vec<f64> = (0..n_classes * dim)
        .map(|_| separation * rng.sample::<f64, _>(StandardNormal))
        .collect();
    let mut rng = stream(seed, 1 + split);
    let labels: Vec<u32> = (0..n).map(|i| (i % n_classes) as u32).collect();
    let mut x = Mat::<f64>::zeros(n, dim);
    for (r, &l) in labels.iter().enumerate() {
        for c in 0..dim {
            x[(r, c)] = means[l as usize * dim + c] + rng.sample::<f64, _>(StandardNormal);
        }
    }
    Dataset::new(x, Targets::Classes(labels))
}
