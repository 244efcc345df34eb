//! The posterior predictive: class probabilities (or predictive densities) averaged over
//! weight draws, in groups of draws reduced while their outputs are in cache.

use crate::linalg::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::error::Result;
use crate::posterior::{HALF_LN_2PI, MeanFieldGaussian};
use crate::rng::stream;

use crate::data::{Dataset, Targets};
use crate::weights::Likelihood;

/// Predictive performance of the posterior average over `n_samples` weight draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictive {
    /// Mean squared error of the predictive mean (regression).
    pub mse: Option<f64>,
    /// Accuracy of the averaged class probabilities (classification).
    pub accuracy: Option<f64>,
    /// Mean negative log predictive density per data point.
    pub nll: f64,
    /// Expected calibration error, Brier score and per-point predictive entropy of the
    /// averaged class probabilities (classification; [`super::calibration`]).
    pub calibration: Option<super::Calibration>,
    /// Weight draws used.
    pub n_samples: usize,
}

/// The posterior predictive on `data`: class probabilities (or predictive densities)
/// averaged over `n_samples` draws of ω, draw `s` from `stream(seed, s)`.
///
/// When the first layer is variational its pre-activations are drawn per data point
/// from their exact distribution (local reparameterization:
/// `a = x μ_Wᵀ + μ_b + sqrt(x² (σ_W²)ᵀ + σ_b²) ⊙ ε`), which costs two matrix products
/// once instead of one per draw. Each data point's predictive distribution is exactly
/// that of whole-network draws; only the correlation between data points (which no
/// per-point metric sees) differs.
///
/// # Errors
///
/// As [`super::elbo`].
pub fn predictive(
    q: &MeanFieldGaussian,
    likelihood: Likelihood,
    data: &Dataset,
    n_samples: usize,
    seed: u64,
) -> Result<Predictive> {
    crate::estimators::check_samples(n_samples)?;
    let arch = q.mlp()?;
    data.check_fits(arch, likelihood)?;
    let n = data.len();
    let d_out = *arch.widths().last().expect("widths");
    let local = LocalFirstLayer::new(q, data);
    let targets = data.targets();
    // Draws in groups of PREDICTIVE_GROUP: each group is summed in draw order by one
    // thread while each draw's outputs are still in cache, and the groups' sums are
    // merged in group order, so the bits do not depend on the number of threads. A few
    // groups at a time bound the memory.
    let n_groups = n_samples.div_ceil(PREDICTIVE_GROUP);
    // Groups in flight: one per thread, but their sums and per-draw terms (about
    // n · (dL + 33) floats each) stay under PREDICTIVE_MEMORY bytes together.
    let group_bytes = 8 * n * (d_out + PREDICTIVE_GROUP + 1);
    let batch = rayon::current_num_threads()
        .min(PREDICTIVE_MEMORY / group_bytes.max(1))
        .max(1);
    let mut total = GroupSums::new(n, d_out);
    for first in (0..n_groups).step_by(batch) {
        let sums: Vec<GroupSums> = (first..(first + batch).min(n_groups))
            .into_par_iter()
            .map(|g| {
                let draws = g * PREDICTIVE_GROUP..((g + 1) * PREDICTIVE_GROUP).min(n_samples);
                let nd = draws.len();
                let mut acc = GroupSums::new(n, d_out);
                let mut ws = DrawScratch::new(q.n_params());
                // ln p_s(y_r | x_r) of the group's draw j at [j · n + r].
                let mut ln_p = vec![0.0; nd * n];
                for (s, ln_p) in draws.zip(ln_p.chunks_mut(n)) {
                    let mut rng = stream(seed, s as u64);
                    q.sample_in_place(&mut rng, &mut ws.eps, &mut ws.w);
                    match &local {
                        Some(l) => l.forward_into(q, &mut rng, &mut ws),
                        None => {
                            arch.forward_into(&ws.w, data.x().as_ref(), 0, &mut ws.layers);
                        }
                    }
                    let out = ws.layers.last().expect("one layer");
                    match (likelihood, targets) {
                        (Likelihood::Gaussian { precision }, Targets::Values(y)) => {
                            gaussian_draw(out, y.as_ref(), precision, &mut acc.sum, ln_p);
                        }
                        (Likelihood::Softmax, Targets::Classes(y)) => {
                            crate::linalg::with_avx2(
                                #[inline(always)]
                                || softmax_draw(out, y, &mut acc.sum, ln_p, &mut ws.block),
                            );
                        }
                        _ => unreachable!("checked by check_fits"),
                    }
                }
                let mut col = vec![0.0; nd];
                for (r, lse) in acc.ln.iter_mut().enumerate() {
                    for (j, c) in col.iter_mut().enumerate() {
                        *c = ln_p[j * n + r];
                    }
                    lse.push_all(&mut col);
                }
                acc
            })
            .collect();
        for g in &sums {
            total.merge(g);
        }
    }
    let (sum, ln_sum) = (&total.sum, &total.ln);
    let ns = n_samples as f64;
    // −ln p̂(y_r | x_r) = −(ln Σ_s p_s(y_r | x_r) − ln S), averaged over the points.
    let nll = ln_sum.iter().map(|l| -(l.value() - ns.ln())).sum::<f64>() / n as f64;
    Ok(match (likelihood, targets) {
        (Likelihood::Gaussian { .. }, Targets::Values(y)) => {
            let mut sq = 0.0;
            for r in 0..n {
                for c in 0..d_out {
                    let diff = y[(r, c)] - sum[c * n + r] / ns;
                    sq += diff * diff;
                }
            }
            Predictive {
                mse: Some(sq / (n * d_out) as f64),
                accuracy: None,
                nll,
                calibration: None,
                n_samples,
            }
        }
        (Likelihood::Softmax, Targets::Classes(y)) => {
            let calibration = super::calibration(n, d_out, |r, c| sum[c * n + r] / ns, y);
            Predictive {
                mse: None,
                accuracy: Some(calibration.accuracy),
                nll,
                calibration: Some(calibration),
                n_samples,
            }
        }
        _ => unreachable!("checked by check_fits"),
    })
}

/// Draws per group of [`predictive`] (summed in draw order by one thread).
const PREDICTIVE_GROUP: usize = 32;
/// Bytes of group sums [`predictive`] keeps in flight at once (beyond one group).
const PREDICTIVE_MEMORY: usize = 1 << 30;

/// A group of draws' sums: `Σ_s p_s(c | x_r)` (softmax) or `Σ_s f_s(x_r)_c` (Gaussian)
/// at `[c · n + r]`, and `ln Σ_s p_s(y_r | x_r)` per point.
struct GroupSums {
    sum: Vec<f64>,
    ln: Vec<crate::estimators::LnSumExp>,
}

impl GroupSums {
    fn new(n: usize, d_out: usize) -> Self {
        GroupSums {
            sum: vec![0.0; n * d_out],
            ln: vec![crate::estimators::LnSumExp::default(); n],
        }
    }

    fn merge(&mut self, other: &GroupSums) {
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.ln.iter_mut().zip(&other.ln) {
            a.merge(*b);
        }
    }
}

/// One draw of a Gaussian likelihood: its outputs added into `sum` (`[c · n + r]`) and
/// each point's `ln N(y_r; f(x_r), 1/precision)` into `ln_p`.
fn gaussian_draw(
    out: &Mat<f64>,
    y: MatRef<'_, f64>,
    precision: f64,
    sum: &mut [f64],
    ln_p: &mut [f64],
) {
    let n = out.nrows();
    let c0 = 0.5 * precision.ln() - HALF_LN_2PI;
    ln_p.fill(0.0);
    for (c, sc) in sum.chunks_mut(n).enumerate() {
        let col = out.col_as_slice(c);
        for (r, ((s, &f), l)) in sc.iter_mut().zip(col).zip(ln_p.iter_mut()).enumerate() {
            let diff = y[(r, c)] - f;
            *l += c0 - 0.5 * precision * diff * diff;
            *s += f;
        }
    }
}

/// One draw of a softmax likelihood: its class probabilities added into `sum`
/// (`[c · n + r]`) and each point's `ln p(y_r | x_r)` written to `ln_p`; rows in blocks
/// of [`PROB_BLOCK`], column by column (vectorized), with `block` as scratch.
#[inline(always)]
fn softmax_draw(
    out: &Mat<f64>,
    y: &[u32],
    sum: &mut [f64],
    ln_p: &mut [f64],
    block: &mut Vec<f64>,
) {
    let (n, d_out) = (out.nrows(), out.ncols());
    block.resize((d_out + 2) * PROB_BLOCK, 0.0);
    let (e, rest) = block.split_at_mut(d_out * PROB_BLOCK);
    let (max, z) = rest.split_at_mut(PROB_BLOCK);
    for r0 in (0..n).step_by(PROB_BLOCK) {
        let bl = PROB_BLOCK.min(n - r0);
        let (max, z) = (&mut max[..bl], &mut z[..bl]);
        max.fill(f64::NEG_INFINITY);
        for c in 0..d_out {
            for (m, &v) in max.iter_mut().zip(&out.col_as_slice(c)[r0..r0 + bl]) {
                *m = m.max(v);
            }
        }
        z.fill(0.0);
        for (c, ec) in e.chunks_mut(PROB_BLOCK).enumerate() {
            let col = &out.col_as_slice(c)[r0..r0 + bl];
            for (((e, &v), &m), z) in ec.iter_mut().zip(col).zip(&*max).zip(z.iter_mut()) {
                *e = crate::vmath::exp(v - m);
                *z += *e;
            }
        }
        for (c, ec) in e.chunks(PROB_BLOCK).enumerate() {
            let sc = &mut sum[c * n + r0..c * n + r0 + bl];
            for ((s, &e), &z) in sc.iter_mut().zip(ec).zip(&*z) {
                *s += e / z;
            }
        }
        for (i, l) in ln_p[r0..r0 + bl].iter_mut().enumerate() {
            let r = r0 + i;
            *l = (out[(r, y[r] as usize)] - max[i]) - crate::vmath::ln(z[i]);
        }
    }
}

/// Rows per parallel block of the predictive's softmax reduction.
const PROB_BLOCK: usize = 256;

/// The first layer's pre-activation moments for local reparameterization.
struct LocalFirstLayer {
    mean: Mat<f64>,
    sd: Mat<f64>,
}

impl LocalFirstLayer {
    fn new(q: &MeanFieldGaussian, data: &Dataset) -> Option<Self> {
        let arch = q.arch()?;
        let o = arch.offsets(0)?;
        let (d_in, d_out) = (arch.widths()[0], arch.widths()[1]);
        let x = data.x();
        let w_mu =
            MatRef::from_row_major_slice(&q.mu()[o.weight..o.weight + d_in * d_out], d_out, d_in);
        let var: Vec<f64> = q.sigma()[o.weight..o.weight + d_in * d_out]
            .iter()
            .map(|s| s * s)
            .collect();
        let w_var = MatRef::from_row_major_slice(&var, d_out, d_in);
        let x2 = Mat::from_fn(x.nrows(), d_in, |r, c| x[(r, c)] * x[(r, c)]);
        let mut mean = Mat::<f64>::zeros(x.nrows(), d_out);
        let mut v = Mat::<f64>::zeros(x.nrows(), d_out);
        matmul(
            &mut mean,
            Accum::Replace,
            x,
            w_mu.transpose(),
            1.0,
            Par::Seq,
        );
        matmul(
            &mut v,
            Accum::Replace,
            &x2,
            w_var.transpose(),
            1.0,
            Par::Seq,
        );
        if let Some(ob) = o.bias {
            for c in 0..d_out {
                let (m, s) = (q.mu()[ob + c], q.sigma()[ob + c]);
                for r in 0..x.nrows() {
                    mean[(r, c)] += m;
                    v[(r, c)] += s * s;
                }
            }
        }
        let sd = Mat::from_fn(v.nrows(), v.ncols(), |r, c| v[(r, c)].sqrt());
        Some(LocalFirstLayer { mean, sd })
    }

    /// One draw's outputs into `ws.layers` (the last is the network's output): the
    /// first layer's pre-activations from their exact per-point distribution, drawn
    /// from `rng` unit by unit, the rest through the draw `ws.w`.
    fn forward_into(
        &self,
        q: &MeanFieldGaussian,
        rng: &mut crate::rng::DrawRng,
        ws: &mut DrawScratch,
    ) {
        let arch = q.arch().expect("predictive checked the MLP");
        let act = arch.activation();
        let single = arch.n_layers() == 1;
        let (n, d1) = (self.mean.nrows(), self.mean.ncols());
        if ws.h.nrows() != n || ws.h.ncols() != d1 {
            ws.h = Mat::zeros(n, d1);
        }
        let h = &mut ws.h;
        for c in 0..d1 {
            let col = h.col_as_slice_mut(c);
            crate::rng::fill_standard_normal(rng, col);
            let (mean, sd) = (self.mean.col_as_slice(c), self.sd.col_as_slice(c));
            for ((h, &m), &s) in col.iter_mut().zip(mean).zip(sd) {
                let a = m + s * *h;
                *h = if single { a } else { act.apply(a) };
            }
        }
        if single {
            ws.layers.resize_with(1, Mat::new);
            std::mem::swap(&mut ws.layers[0], h);
        } else {
            arch.forward_into(&ws.w, h.as_ref(), 1, &mut ws.layers);
        }
    }
}

/// One thread's buffers for the draws of [`predictive`].
struct DrawScratch {
    eps: Vec<f64>,
    w: Vec<f64>,
    /// Scratch of [`softmax_draw`].
    block: Vec<f64>,
    /// The first layer's activations (local reparameterization).
    h: Mat<f64>,
    /// Layer outputs of [`Arch::forward_into`]; the last is swapped out as the draw's output.
    layers: Vec<Mat<f64>>,
}

impl DrawScratch {
    fn new(p: usize) -> Self {
        DrawScratch {
            eps: vec![0.0; p],
            w: vec![0.0; p],
            block: Vec::new(),
            h: Mat::new(),
            layers: Vec::new(),
        }
    }
}
