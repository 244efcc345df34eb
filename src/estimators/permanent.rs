//! Exact `I(g; ω)` for one hidden layer through the permanent (docs/mathematics.md §5, eqs. 11–12).
//!
//! With the unit cost matrix `C[i, j] = ln q_i(θ_j)` ([`UnitCost`]),
//! `Σ_{g ∈ S_d} q(g·ω) = q_rest(ω) · perm(exp C)`, so the per-draw term is
//!
//! `ln q(ω) − ln q^G(ω) = Σ_i C[i, i] − ln perm(exp C) + ln d!`.
//!
//! **`ln perm(exp C)`.** All terms of the permanent are positive, so a dynamic program
//! over subsets has no cancellation (unlike Ryser's formula):
//! `f(∅) = 1`, `f(M) = Σ_{j ∈ M} f(M ∖ {j}) · A[|M| − 1, j]`, `perm A = f({0..d−1})`,
//! in `O(2^d · d)`. To run it in fast linear arithmetic without overflow or harmful
//! underflow, `A = exp C` is first scaled in log space, `A' = D_r A D_s` with
//! diagonal `D_r, D_s` from a few Sinkhorn iterations that end with an exact row
//! normalization; `perm A = perm A' / (det D_r det D_s)`. Every row of `A'` sums to 1,
//! so every `f(M) ≤ 1` and every completion of a partial sum has permanent `≤ 1`: an
//! intermediate value that underflows (below ~10⁻³⁰⁸) changes the result by less than
//! `2^d · d · 10⁻³⁰⁸` absolutely. If the scaled permanent itself is below 10⁻²⁵⁰ (a
//! matrix far from having a balanced scaling), the same program runs again entirely in
//! log space (log-sum-exp per step), which is exact but about 20× slower.

use crate::estimators::EstimatorId;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::estimators::MiGradient;
use crate::estimators::unit_cost::UnitCost;
use crate::estimators::{Estimate, EstimateParts, LnSumExp, MiEstimator, per_draw_terms};
use crate::posterior::MeanFieldGaussian;
use crate::rng::DrawRng;
use crate::symmetry::ln_factorial;

/// Largest hidden width the subset dynamic program accepts (its table has 2^d entries:
/// 128 MiB at d = 24).
pub const MAX_PERMANENT_WIDTH: usize = 24;

const SINKHORN_ITERATIONS: usize = 30;
const SINKHORN_TOL: f64 = 1e-3;
const LINEAR_FLOOR: f64 = 1e-250;

/// Reusable buffers of [`ln_permanent_in_place`].
#[derive(Clone, Debug, Default)]
pub struct PermanentWorkspace {
    table: Vec<f64>,
    scaled: Vec<f64>,
    row: Vec<f64>,
    col: Vec<f64>,
}

/// `ln perm(exp C)` for a `d × d` row-major matrix of logs `c` (entries may be −∞).
///
/// # Examples
///
/// ```
/// use mi_est::estimators::ln_permanent;
/// // perm [[1, 2], [3, 4]] = 1·4 + 2·3 = 10
/// let c = [1f64.ln(), 2f64.ln(), 3f64.ln(), 4f64.ln()];
/// assert!((ln_permanent(&c, 2)? - 10f64.ln()).abs() < 1e-12);
/// # Ok::<(), mi_est::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::WidthTooLarge`] above [`MAX_PERMANENT_WIDTH`];
/// [`Error::LengthMismatch`] if `c` is not `d²` long; [`Error::InvalidParameter`] for a
/// NaN or +∞ entry.
pub fn ln_permanent(c: &[f64], d: usize) -> Result<f64> {
    ln_permanent_in_place(c, d, &mut PermanentWorkspace::default())
}

/// [`ln_permanent`] with caller-owned buffers (no allocation after the first call of a
/// given width).
///
/// # Errors
///
/// As [`ln_permanent`].
pub fn ln_permanent_in_place(c: &[f64], d: usize, ws: &mut PermanentWorkspace) -> Result<f64> {
    if d > MAX_PERMANENT_WIDTH {
        return Err(Error::WidthTooLarge {
            width: d,
            max: MAX_PERMANENT_WIDTH,
        });
    }
    if c.len() != d * d {
        return Err(Error::length("cost matrix", d * d, c.len()));
    }
    if let Some(p) = c.iter().position(|x| x.is_nan() || *x == f64::INFINITY) {
        return Err(Error::invalid(
            format!("cost matrix entry {p}"),
            c[p],
            "must be finite or -inf",
        ));
    }
    if d == 0 {
        return Ok(0.0);
    }
    // Log-space Sinkhorn: row scales r, column scales s.
    ws.row.clear();
    ws.row.resize(d, 0.0);
    ws.col.clear();
    ws.col.resize(d, 0.0);
    let row_lse = |c: &[f64], col: &[f64], i: usize| {
        let mut acc = LnSumExp::default();
        (0..d).for_each(|j| acc.push(c[i * d + j] - col[j]));
        acc.value()
    };
    for i in 0..d {
        ws.row[i] = row_lse(c, &ws.col, i);
        if ws.row[i] == f64::NEG_INFINITY {
            return Ok(f64::NEG_INFINITY);
        }
    }
    for _ in 0..SINKHORN_ITERATIONS {
        let mut worst: f64 = 0.0;
        for j in 0..d {
            let mut acc = LnSumExp::default();
            (0..d).for_each(|i| acc.push(c[i * d + j] - ws.row[i]));
            let v = acc.value();
            if v == f64::NEG_INFINITY {
                return Ok(f64::NEG_INFINITY);
            }
            worst = worst.max((v - ws.col[j]).abs());
            ws.col[j] = v;
        }
        for i in 0..d {
            ws.row[i] = row_lse(c, &ws.col, i);
        }
        if worst < SINKHORN_TOL {
            break;
        }
    }
    // The columns were scaled against the previous row scales; the last row pass makes
    // every row of A' sum to 1 (up to rounding).
    let ln_scale: f64 = ws.row.iter().sum::<f64>() + ws.col.iter().sum::<f64>();
    ws.scaled.clear();
    // Subnormal entries (below 2.2·10⁻³⁰⁸, next to rows that sum to 1) become 0: they
    // change the permanent by less than the underflow bound above, and every product
    // with a subnormal operand costs a processor microcode assist (about 100 cycles),
    // which made the d = 20 program several times slower on nearly diagonal matrices.
    ws.scaled.extend((0..d * d).map(|k| {
        let x = (c[k] - ws.row[k / d] - ws.col[k % d]).exp();
        if x < f64::MIN_POSITIVE { 0.0 } else { x }
    }));
    let linear = permanent_linear(&ws.scaled, d, &mut ws.table);
    if linear.is_normal() && linear > LINEAR_FLOOR {
        return Ok(ln_scale + linear.ln());
    }
    Ok(ln_permanent_log_space(c, d, &mut ws.table))
}

/// `ln perm(exp C)` and the assignment marginals `P(τ(i) = j)` under
/// `p(τ) ∝ exp Σ_i C[i, τ(i)]` (`d × d`, row-major; each row and column sums to 1). These
/// are the derivatives `∂ ln perm(exp C) / ∂C[i, j]`. A backward subset program
/// `g(M) = Σ_{j ∉ M} A[|M|, j] g(M ∪ {j})` over the scaled matrix joins the forward one:
/// `P(τ(r) = j) = Σ_{|M| = r, j ∉ M} f(M) A[r, j] g(M ∪ {j}) / f(all)`.
///
/// # Errors
///
/// As [`ln_permanent`], and [`Error::InvalidParameter`] when the scaled linear program
/// underflows (a matrix far from any balanced scaling), where only the log-space value
/// is available.
pub fn ln_permanent_marginals(c: &[f64], d: usize) -> Result<(f64, Vec<f64>)> {
    let mut ws = PermanentWorkspace::default();
    let ln_perm = ln_permanent_in_place(c, d, &mut ws)?;
    if d == 0 {
        return Ok((ln_perm, Vec::new()));
    }
    let n = 1usize << d;
    let total = ws.table.get(n - 1).copied().unwrap_or(0.0);
    if ws.scaled.len() != d * d || !(total.is_normal() && total > LINEAR_FLOOR) {
        return Err(Error::invalid(
            "cost matrix",
            format!("{d}x{d}"),
            "permanent marginals need the scaled linear program, which underflowed for this matrix",
        ));
    }
    let a = &ws.scaled;
    let f = &ws.table;
    let mut g = vec![0.0; n];
    g[n - 1] = 1.0;
    for mask in (0..n - 1).rev() {
        let r = mask.count_ones() as usize;
        let row = &a[r * d..(r + 1) * d];
        let mut acc = 0.0;
        let mut free = !mask & (n - 1);
        while free != 0 {
            let j = free.trailing_zeros() as usize;
            free &= free - 1;
            acc += row[j] * g[mask | (1 << j)];
        }
        g[mask] = acc;
    }
    let mut marg = vec![0.0; d * d];
    for mask in 0..n - 1 {
        let r = mask.count_ones() as usize;
        if f[mask] == 0.0 {
            continue;
        }
        let mut free = !mask & (n - 1);
        while free != 0 {
            let j = free.trailing_zeros() as usize;
            free &= free - 1;
            marg[r * d + j] += f[mask] * a[r * d + j] * g[mask | (1 << j)];
        }
    }
    marg.iter_mut().for_each(|m| *m /= total);
    Ok((ln_perm, marg))
}

/// The subset dynamic program in linear arithmetic: [`push_forward`] when at most `2d`
/// entries of `A` exceed 10⁻³⁰ (a nearly diagonal matrix, from a posterior whose units
/// are far apart: products of its small entries underflow, and nearly all of the table
/// is exactly 0), else [`pull`]. The two sum in different orders (the last bits can
/// differ); the push form skips the zero entries but writes scattered, about 1.2× the
/// cost of the pull form on a dense matrix at d = 20.
fn permanent_linear(a: &[f64], d: usize, table: &mut Vec<f64>) -> f64 {
    let large = a.iter().filter(|&&x| x > 1e-30).count();
    if large <= 2 * d {
        push_forward(a, d, table)
    } else {
        pull(a, d, table)
    }
}

/// `f(M) = Σ_{j ∈ M} f(M ∖ {j}) · A[|M| − 1, j]`, mask by mask, visiting the nonzero
/// entries of the row.
fn pull(a: &[f64], d: usize, table: &mut Vec<f64>) -> f64 {
    let n = 1usize << d;
    table.clear();
    table.resize(n, 0.0);
    table[0] = 1.0;
    let nonzero = nonzero_columns(a, d);
    for mask in 1..n {
        let r = mask.count_ones() as usize - 1;
        let row = &a[r * d..];
        let mut m = mask & nonzero[r];
        let (mut acc0, mut acc1) = (0.0, 0.0);
        while m != 0 {
            let j = m.trailing_zeros() as usize;
            m &= m - 1;
            acc0 += table[mask ^ (1 << j)] * row[j];
            if m == 0 {
                break;
            }
            let j = m.trailing_zeros() as usize;
            m &= m - 1;
            acc1 += table[mask ^ (1 << j)] * row[j];
        }
        table[mask] = acc0 + acc1;
    }
    table[n - 1]
}

/// The same program run forward: each nonzero `f(M)` is added into `f(M ∪ {j})` with
/// weight `A[|M|, j]`; zero entries of the table are skipped.
fn push_forward(a: &[f64], d: usize, table: &mut Vec<f64>) -> f64 {
    let n = 1usize << d;
    table.clear();
    table.resize(n, 0.0);
    table[0] = 1.0;
    let nonzero = nonzero_columns(a, d);
    for mask in 0..n - 1 {
        let f = table[mask];
        if f == 0.0 {
            continue;
        }
        let r = mask.count_ones() as usize;
        let row = &a[r * d..(r + 1) * d];
        let mut m = !mask & nonzero[r] & (n - 1);
        while m != 0 {
            let j = m.trailing_zeros() as usize;
            m &= m - 1;
            table[mask | (1 << j)] += f * row[j];
        }
    }
    table[n - 1]
}

/// Per row of `A` (`d × d`), the columns with a nonzero entry as a bit mask.
fn nonzero_columns(a: &[f64], d: usize) -> Vec<usize> {
    a.chunks_exact(d)
        .map(|row| {
            row.iter()
                .enumerate()
                .filter(|&(_, &x)| x != 0.0)
                .fold(0, |m, (j, _)| m | (1 << j))
        })
        .collect()
}

/// The subset dynamic program entirely in log space.
fn ln_permanent_log_space(c: &[f64], d: usize, table: &mut Vec<f64>) -> f64 {
    let n = 1usize << d;
    table.clear();
    table.resize(n, f64::NEG_INFINITY);
    table[0] = 0.0;
    for mask in 1..n {
        let row = &c[(mask.count_ones() as usize - 1) * d..];
        let mut acc = LnSumExp::default();
        let mut m = mask;
        while m != 0 {
            let j = m.trailing_zeros() as usize;
            m &= m - 1;
            acc.push(table[mask ^ (1 << j)] + row[j]);
        }
        table[mask] = acc.value();
    }
    table[n - 1]
}

/// Exact `I(g; ω)` for one hidden layer: `ln q^G` through `ln perm(exp C)`; Monte Carlo
/// over ω only.
///
/// Defaults (set by [`ExactPermanent::new`]): 1000 draws, seed 0.
#[derive(Clone, Debug)]
pub struct ExactPermanent {
    n_samples: usize,
    seed: u64,
}

impl Default for ExactPermanent {
    fn default() -> Self {
        Self::new()
    }
}

impl ExactPermanent {
    /// The estimator with its defaults.
    pub fn new() -> Self {
        ExactPermanent {
            n_samples: 1000,
            seed: 0,
        }
    }
}

/// Cost of `S` exact permanents of one hidden layer: the unit costs plus the subset
/// program (`2^d · d` steps, a `2^d` table per thread).
pub(crate) fn permanent_cost(q: &MeanFieldGaussian, n_samples: usize) -> crate::resources::Cost {
    use crate::resources::{Cost, NS_PERMANENT_STEP, NS_UNIT_COST};
    let (d, n) = crate::estimators::unit_shape(q);
    let table = 2f64.powf(d);
    Cost::ops(n_samples as f64 * d * d * n, NS_UNIT_COST)
        .then(Cost::ops(n_samples as f64 * table * d, NS_PERMANENT_STEP))
        .then(crate::estimators::base_cost(
            q,
            n_samples,
            2.0 * table + d * d + d * n,
        ))
}

impl MiEstimator for ExactPermanent {
    fn id(&self) -> EstimatorId {
        EstimatorId::ExactPermanent
    }

    fn cost(&self, q: &MeanFieldGaussian) -> crate::resources::Cost {
        if let Some(r) = super::stabilized(q) {
            return self.cost(&r);
        }
        permanent_cost(q, self.n_samples)
    }

    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for `S = 0`; [`Error::UnsupportedArchitecture`] unless
    /// there is exactly one hidden layer; [`Error::WidthTooLarge`] for a hidden width
    /// above [`MAX_PERMANENT_WIDTH`].
    fn sampling(&self) -> (Option<usize>, usize, u64) {
        (None, self.n_samples, self.seed)
    }

    fn estimate_unpinned(
        &self,
        q: &MeanFieldGaussian,
        limits: &crate::resources::Limits,
    ) -> Result<Estimate> {
        let started = Instant::now();
        let uc = UnitCost::new(q)?;
        let d = uc.width();
        if d > MAX_PERMANENT_WIDTH {
            return Err(Error::WidthTooLarge {
                width: d,
                max: MAX_PERMANENT_WIDTH,
            });
        }
        crate::resources::check(MiEstimator::name(self), self.cost(q), limits)?;
        let ln_order = ln_factorial(d);
        let p = q.n_params();
        let init = || {
            (
                vec![0.0; p],
                vec![0.0; p],
                vec![0.0; d * uc.n_per_unit()],
                vec![0.0; d * d],
                PermanentWorkspace::default(),
            )
        };
        let terms = per_draw_terms(
            self.n_samples,
            self.seed,
            init,
            |rng, (eps, omega, theta, c, ws)| {
                q.sample_in_place(rng, eps, omega);
                uc.fill_in_place(omega, theta, c);
                let diag: f64 = (0..d).map(|i| c[i * d + i]).sum();
                let ln_perm =
                    ln_permanent_in_place(c, d, ws).expect("finite cost matrix of a checked width");
                diag - ln_perm + ln_order
            },
        );
        Ok(EstimateParts {
            estimator: MiEstimator::id(self),
            k: None,
            seed: self.seed,
            ln_cap: ln_order,
            ln_group_order: q.space().group().ln_order(),
        }
        .finish(q, terms, started))
    }
}

sampling_setters!(ExactPermanent);

impl MiGradient for ExactPermanent {
    fn id(&self) -> EstimatorId {
        EstimatorId::ExactPermanent
    }

    fn ln_cap(&self) -> f64 {
        // Exact I is never "saturated" in the I^K sense; no term reaches +∞.
        f64::INFINITY
    }

    /// The exact per-draw term `S(id) − ln perm(exp C) + ln d!` and its gradient: with the
    /// assignment marginals `P` ([`ln_permanent_marginals`]), `d term = Σ_{ij} (δ_ij − P_ij)
    /// dC[i, j]`, back-propagated through C to μ and σ (both the densities' own parameters
    /// and the draw). No permutation is sampled; `rng` is unused.
    fn term_and_grad(
        &self,
        q: &MeanFieldGaussian,
        eps: &[f64],
        _rng: &mut DrawRng,
        grad_mu: &mut [f64],
        grad_sigma: &mut [f64],
    ) -> Result<f64> {
        let uc = UnitCost::new(q)?;
        let d = uc.width();
        if d > MAX_PERMANENT_WIDTH {
            return Err(Error::WidthTooLarge {
                width: d,
                max: MAX_PERMANENT_WIDTH,
            });
        }
        q.space().check_len("grad_mu", grad_mu)?;
        q.space().check_len("grad_sigma", grad_sigma)?;
        let omega = q.reparameterize(eps)?;
        let mut theta = vec![0.0; d * uc.n_per_unit()];
        let mut c = vec![0.0; d * d];
        uc.fill_in_place(&omega, &mut theta, &mut c);
        let (ln_perm, marg) = ln_permanent_marginals(&c, d)?;
        let s_id: f64 = (0..d).map(|i| c[i * d + i]).sum();
        let m: Vec<f64> = (0..d * d)
            .map(|k| f64::from(k / d == k % d) - marg[k])
            .collect();
        uc.backprop_in_place(&theta, eps, &m, grad_mu, grad_sigma);
        Ok(s_id - ln_perm + ln_factorial(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::symmetry::Permutation;
    use rand::RngExt;

    /// ln perm by summing over all d! permutations.
    fn brute_force(c: &[f64], d: usize) -> f64 {
        let mut lse = LnSumExp::default();
        let mut p: Vec<usize> = (0..d).collect();
        loop {
            lse.push(p.iter().enumerate().map(|(i, &j)| c[i * d + j]).sum());
            // next lexicographic permutation
            let Some(i) = (0..d.saturating_sub(1)).rev().find(|&i| p[i] < p[i + 1]) else {
                break;
            };
            let j = (i + 1..d).rev().find(|&j| p[j] > p[i]).unwrap();
            p.swap(i, j);
            p[i + 1..].reverse();
        }
        lse.value()
    }

    #[test]
    fn dynamic_program_matches_brute_force() {
        let mut rng = stream(9, 0);
        for d in 1..=7 {
            for scale in [0.1, 3.0, 300.0] {
                let c: Vec<f64> = (0..d * d)
                    .map(|_| scale * rng.random_range(-1.0..1.0))
                    .collect();
                let exact = brute_force(&c, d);
                let got = ln_permanent(&c, d).unwrap();
                assert!(
                    (got - exact).abs() < 1e-11 * exact.abs().max(1.0),
                    "d={d} scale={scale}: {got} vs {exact}"
                );
                let mut table = Vec::new();
                let log_space = ln_permanent_log_space(&c, d, &mut table);
                assert!((log_space - exact).abs() < 1e-11 * exact.abs().max(1.0));
            }
        }
    }

    /// Both forms of the linear program against brute force, on dense matrices and on
    /// nearly diagonal ones (entries down to 10⁻²⁰⁰, products underflowing to 0).
    #[test]
    fn pull_and_push_programs_agree_with_brute_force() {
        let mut rng = stream(10, 0);
        for d in 1..=7 {
            for spread in [1.0, 460.0] {
                let a: Vec<f64> = (0..d * d)
                    .map(|k| {
                        if k % (d + 1) == 0 {
                            rng.random_range(0.5..1.0)
                        } else {
                            (-spread * rng.random_range(0.0f64..1.0)).exp()
                        }
                    })
                    .collect();
                let c: Vec<f64> = a.iter().map(|x| x.ln()).collect();
                let exact = brute_force(&c, d);
                let mut table = Vec::new();
                for (name, value) in [
                    ("pull", pull(&a, d, &mut table)),
                    ("push", push_forward(&a, d, &mut table)),
                ] {
                    let got = value.ln();
                    assert!(
                        (got - exact).abs() < 1e-12 * exact.abs().max(1.0),
                        "{name}, d={d}, spread {spread}: {got} vs {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn extreme_and_degenerate_matrices() {
        // A permutation-matrix-like pattern at −1e5 off the support: perm = exp(Σ support).
        let d = 6;
        let tau = Permutation::from_forward(vec![3, 0, 5, 1, 2, 4]).unwrap();
        let mut c = vec![-1e5; d * d];
        for i in 0..d {
            c[i * d + tau.forward()[i]] = -2000.0 + i as f64;
        }
        let expect = (0..d).map(|i| -2000.0 + i as f64).sum::<f64>();
        assert!((ln_permanent(&c, d).unwrap() - expect).abs() < 1e-9);
        // All rows prefer column 0 by 800 nats: the scaled linear program underflows and
        // the log-space fallback must give the brute-force value.
        let mut c = vec![-800.0; d * d];
        for i in 0..d {
            c[i * d] = 0.0;
            c[i * d + 1 + (i % (d - 1))] = -400.0 - i as f64;
        }
        let exact = brute_force(&c, d);
        assert!((ln_permanent(&c, d).unwrap() - exact).abs() < 1e-9 * exact.abs());
        // A zero column: perm = 0.
        let mut c = vec![0.0; 9];
        for i in 0..3 {
            c[i * 3 + 2] = f64::NEG_INFINITY;
        }
        assert_eq!(ln_permanent(&c, 3).unwrap(), f64::NEG_INFINITY);
        // The all-ones matrix: perm = d!.
        let ones = vec![0.0; 20 * 20];
        assert!((ln_permanent(&ones, 20).unwrap() - ln_factorial(20)).abs() < 1e-10);
    }

    #[test]
    fn marginals_match_brute_force_enumeration() {
        let mut rng = stream(12, 0);
        for d in 1..=6 {
            let c: Vec<f64> = (0..d * d)
                .map(|_| 4.0 * rng.random_range(-1.0..1.0))
                .collect();
            let (ln_perm, marg) = ln_permanent_marginals(&c, d).unwrap();
            // Brute force: weight of every permutation.
            let mut p: Vec<usize> = (0..d).collect();
            let mut expect = vec![0.0; d * d];
            loop {
                let w = (p
                    .iter()
                    .enumerate()
                    .map(|(i, &j)| c[i * d + j])
                    .sum::<f64>()
                    - ln_perm)
                    .exp();
                for (i, &j) in p.iter().enumerate() {
                    expect[i * d + j] += w;
                }
                let Some(i) = (0..d.saturating_sub(1)).rev().find(|&i| p[i] < p[i + 1]) else {
                    break;
                };
                let j = (i + 1..d).rev().find(|&j| p[j] > p[i]).unwrap();
                p.swap(i, j);
                p[i + 1..].reverse();
            }
            for k in 0..d * d {
                assert!(
                    (marg[k] - expect[k]).abs() < 1e-12,
                    "d={d} k={k}: {} vs {}",
                    marg[k],
                    expect[k]
                );
            }
        }
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        assert!(matches!(
            ln_permanent(&[0.0; 625], 25),
            Err(Error::WidthTooLarge { width: 25, .. })
        ));
        assert!(matches!(
            ln_permanent(&[0.0; 3], 2),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(
            ln_permanent(&[0.0, f64::NAN, 0.0, 0.0], 2)
                .unwrap_err()
                .to_string()
                .contains("entry 1")
        );
        assert_eq!(ln_permanent(&[], 0).unwrap(), 0.0);
    }
}
