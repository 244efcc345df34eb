//! `ln perm(exp C)` for wide layers by pruning and blocks (docs/mathematics.md §5, eq. 13; issue 7,
//! item 3), with a rigorous bound on what pruning dropped.
//!
//! Row scaling is exact: with `m_i = max_j C[i, j]` and `A = exp(C − m)` (every row's
//! largest entry is 1), `ln perm(exp C) = Σ_i m_i + ln perm(A)`. Entries `A_ij < δ` are
//! dropped, giving `B ≤ A`. The kept entries form a bipartite graph between rows and
//! columns; `perm(B)` is the product of the permanents of its connected blocks (zero if
//! a block is not square), each computed exactly by the subset dynamic program.
//!
//! **Bound.** Every permutation that uses a dropped entry `(i, j)` contributes at most
//! `A_ij · perm(A with row i and column j removed) ≤ A_ij Π_{k≠i} r_k`, with `r_k` the row
//! sums of `A`. Hence
//!
//! `0 ≤ perm(A) − perm(B) ≤ R := Π_k r_k · Σ_i (dropped mass of row i) / r_i`,
//!
//! and `ln perm(B) ≤ ln perm(A) ≤ ln perm(B) + ln(1 + R / perm(B))`, all evaluated in log
//! space. `δ = exp(−margin)`: entries more than `margin` nats below their row's maximum
//! are dropped (default 30, [`DEFAULT_MARGIN`]). The bound already counts every permutation through the row
//! sums, so the cut need not grow with ln d! — a cut of ln d! + margin, as first planned,
//! merges a width-100 layer at the usual initialization (units ≈ 440 nats apart,
//! ln 100! = 364) into one giant block, while a 30-nat cut splits it into singletons with
//! a bracket below 1e-12.

use crate::estimators::EstimatorId;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::estimators::permanent::{
    MAX_PERMANENT_WIDTH, PermanentWorkspace, ln_permanent_in_place,
};
use crate::estimators::unit_cost::UnitCost;
use crate::estimators::{Estimate, EstimateParts, MiEstimator, per_draw_terms};
use crate::estimators::{LnSumExp, ln_sum_exp};
use crate::posterior::MeanFieldGaussian;
use crate::symmetry::ln_factorial;

/// `ln perm(exp C)` bracketed after pruning.
#[derive(Clone, Debug, PartialEq)]
pub struct PrunedPermanent {
    /// `ln perm(B)`, a lower bound on `ln perm(exp C)` (−∞ if B has no perfect matching).
    pub ln_lower: f64,
    /// An upper bound on `ln perm(exp C)`.
    pub ln_upper: f64,
    /// Size (rows) of the largest block computed exactly.
    pub largest_block: usize,
    /// Number of blocks.
    pub n_blocks: usize,
}

/// `ln perm(exp C)` for a `d × d` row-major `c` (finite entries), pruning entries more
/// than `margin` nats below their row's maximum, with the proven bracket.
///
/// # Errors
///
/// [`Error::InvalidParameter`] for a margin ≤ 0 or non-finite, or a non-finite entry;
/// [`Error::LengthMismatch`] if `c` is not `d²` long; [`Error::WidthTooLarge`] naming
/// the block size when a block exceeds [`MAX_PERMANENT_WIDTH`] (fall back to the
/// sandwich bounds then).
pub fn ln_permanent_pruned(c: &[f64], d: usize, margin: f64) -> Result<PrunedPermanent> {
    if !(margin.is_finite() && margin > 0.0) {
        return Err(Error::invalid("margin", margin, "must be finite and > 0"));
    }
    if c.len() != d * d {
        return Err(Error::length("cost matrix", d * d, c.len()));
    }
    if let Some(p) = c.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(
            format!("cost matrix entry {p}"),
            c[p],
            "must be finite",
        ));
    }
    if d == 0 {
        return Ok(PrunedPermanent {
            ln_lower: 0.0,
            ln_upper: 0.0,
            largest_block: 0,
            n_blocks: 0,
        });
    }
    let cut = margin;
    let row_max: Vec<f64> = (0..d)
        .map(|i| {
            c[i * d..(i + 1) * d]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    // ln of row sums of A and of the dropped mass per row.
    let mut ln_r = vec![0.0; d];
    let mut ln_dropped = vec![f64::NEG_INFINITY; d];
    let mut keep = vec![false; d * d];
    for i in 0..d {
        let mut all = LnSumExp::default();
        let mut dropped = LnSumExp::default();
        for j in 0..d {
            let a = c[i * d + j] - row_max[i];
            all.push(a);
            if a >= -cut {
                keep[i * d + j] = true;
            } else {
                dropped.push(a);
            }
        }
        ln_r[i] = all.value();
        ln_dropped[i] = dropped.value();
    }
    // Connected blocks of the bipartite graph (rows 0..d, columns d..2d), union–find.
    let mut parent: Vec<usize> = (0..2 * d).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for i in 0..d {
        for j in 0..d {
            if keep[i * d + j] {
                let (a, b) = (find(&mut parent, i), find(&mut parent, d + j));
                if a != b {
                    parent[a] = b;
                }
            }
        }
    }
    let mut blocks: std::collections::BTreeMap<usize, (Vec<usize>, Vec<usize>)> =
        Default::default();
    for i in 0..d {
        let root = find(&mut parent, i);
        blocks.entry(root).or_default().0.push(i);
    }
    for j in 0..d {
        let root = find(&mut parent, d + j);
        blocks.entry(root).or_default().1.push(j);
    }
    let mut ln_b = 0.0;
    let mut largest = 0;
    let mut ws = PermanentWorkspace::default();
    for (rows, cols) in blocks.values() {
        if rows.len() != cols.len() {
            ln_b = f64::NEG_INFINITY;
            continue;
        }
        let n = rows.len();
        largest = largest.max(n);
        if n > MAX_PERMANENT_WIDTH {
            return Err(Error::WidthTooLarge {
                width: n,
                max: MAX_PERMANENT_WIDTH,
            });
        }
        let sub: Vec<f64> = rows
            .iter()
            .flat_map(|&i| cols.iter().map(move |&j| (i, j)))
            .map(|(i, j)| {
                if keep[i * d + j] {
                    c[i * d + j] - row_max[i]
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect();
        ln_b += ln_permanent_in_place(&sub, n, &mut ws)?;
    }
    let shift: f64 = row_max.iter().sum();
    // ln R = Σ_k ln r_k + ln Σ_i exp(ln dropped_i − ln r_i).
    let ln_sum_r: f64 = ln_r.iter().sum();
    let terms: Vec<f64> = (0..d).map(|i| ln_dropped[i] - ln_r[i]).collect();
    let ln_rem = ln_sum_r + ln_sum_exp(&terms);
    // ln(perm(B) + R) ≥ ln perm(A).
    let ln_upper_a = ln_sum_exp(&[ln_b, ln_rem]);
    Ok(PrunedPermanent {
        ln_lower: shift + ln_b,
        ln_upper: shift + ln_upper_a,
        largest_block: largest,
        n_blocks: blocks.len(),
    })
}

/// Exact `I(g; ω)` for one hidden layer of any width whose pruned blocks stay small:
/// per draw, `S(id) − ln perm(B) + ln d!` with `ln perm(B)` the pruned lower bound, and
/// the proven per-draw bracket reported in [`Estimate::bracket`].
///
/// The default pruning margin of [`ExactPruned`], nats: `exp(−30) ≈ 1e-13` of a row's
/// largest entry.
pub const DEFAULT_MARGIN: f64 = 30.0;

/// Defaults (set by [`ExactPruned::new`]): 1000 draws, seed 0, margin [`DEFAULT_MARGIN`].
#[derive(Clone, Debug)]
pub struct ExactPruned {
    n_samples: usize,
    seed: u64,
    margin: f64,
}

impl Default for ExactPruned {
    fn default() -> Self {
        Self::new()
    }
}

impl ExactPruned {
    /// The estimator with its defaults.
    pub fn new() -> Self {
        ExactPruned {
            n_samples: 1000,
            seed: 0,
            margin: DEFAULT_MARGIN,
        }
    }

    /// Pruning margin: entries more than this many nats below their row's maximum are
    /// dropped (and bounded).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `margin` unless it is finite and > 0.
    pub fn margin(mut self, margin: f64) -> Result<Self> {
        if !(margin.is_finite() && margin > 0.0) {
            return Err(Error::invalid("margin", margin, "must be finite and > 0"));
        }
        self.margin = margin;
        Ok(self)
    }
}

impl MiEstimator for ExactPruned {
    fn id(&self) -> EstimatorId {
        EstimatorId::ExactPruned
    }

    fn cost(&self, q: &MeanFieldGaussian) -> crate::resources::Cost {
        if let Some(r) = super::stabilized(q) {
            return self.cost(&r);
        }
        // Blocks are only known per draw; each is checked as it is computed.
        let (d, n) = crate::estimators::unit_shape(q);
        crate::resources::Cost::ops(
            self.n_samples as f64 * d * d * n,
            crate::resources::NS_UNIT_COST,
        )
        .then(crate::estimators::base_cost(
            q,
            self.n_samples,
            d * d + d * n,
        ))
    }

    /// # Errors
    ///
    /// [`Error::UnsupportedArchitecture`] without one hidden layer; [`Error::WidthTooLarge`]
    /// when a draw's blocks exceed the subset program's width.
    fn sampling(&self) -> (Option<usize>, usize, u64) {
        (None, self.n_samples, self.seed)
    }

    fn estimate_unpinned(
        &self,
        q: &MeanFieldGaussian,
        limits: &crate::resources::Limits,
    ) -> Result<Estimate> {
        let started = Instant::now();
        crate::resources::check(MiEstimator::name(self), self.cost(q), limits)?;
        let uc = UnitCost::new(q)?;
        let d = uc.width();
        let ln_order = ln_factorial(d);
        let p = q.n_params();
        let init = || {
            (
                vec![0.0; p],
                vec![0.0; p],
                vec![0.0; d * uc.n_per_unit()],
                vec![0.0; d * d],
            )
        };
        let pairs: Vec<Result<(f64, f64)>> = per_draw_terms(
            self.n_samples,
            self.seed,
            init,
            |rng, (eps, omega, theta, c)| {
                q.sample_in_place(rng, eps, omega);
                uc.fill_in_place(omega, theta, c);
                let s_id: f64 = (0..d).map(|i| c[i * d + i]).sum();
                let pp = ln_permanent_pruned(c, d, self.margin)?;
                if pp.ln_lower == f64::NEG_INFINITY {
                    // The kept entries admit no perfect matching: no finite bracket.
                    return Err(Error::invalid(
                        "margin",
                        self.margin,
                        "pruning left no perfect matching among the kept entries of a draw's cost matrix (units overlap too much for blocks); use a larger margin or the sandwich bounds",
                    ));
                }
                Ok((s_id - pp.ln_lower + ln_order, pp.ln_upper - pp.ln_lower))
            },
        );
        let pairs: Vec<(f64, f64)> = pairs.into_iter().collect::<Result<_>>()?;
        let bracket = pairs.iter().map(|p| p.1).fold(0.0, f64::max);
        let mut est = EstimateParts {
            estimator: self.id(),
            k: None,
            seed: self.seed,
            ln_cap: ln_order,
            ln_group_order: ln_order,
        }
        .finish(q, pairs.iter().map(|p| p.0).collect(), started);
        est.bracket = Some(bracket);
        Ok(est)
    }
}

sampling_setters!(ExactPruned);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimators::ln_permanent;
    use crate::rng::stream;
    use rand::RngExt;

    #[test]
    fn brackets_the_exact_permanent_on_clustered_matrices() {
        // Clusters of 3 units with overlap inside, far apart across clusters.
        let mut rng = stream(4, 0);
        for d in [6usize, 9, 12] {
            let c: Vec<f64> = (0..d * d)
                .map(|k| {
                    let (i, j) = (k / d, k % d);
                    if i / 3 == j / 3 {
                        -rng.random_range(0.0..2.0)
                    } else {
                        -200.0 - rng.random_range(0.0..50.0)
                    }
                })
                .collect();
            let exact = ln_permanent(&c, d).unwrap();
            let p = ln_permanent_pruned(&c, d, 20.0).unwrap();
            assert!(
                p.ln_lower <= exact + 1e-9 && exact <= p.ln_upper + 1e-9,
                "{p:?} vs {exact}"
            );
            assert!(p.ln_upper - p.ln_lower < 1e-50f64.max(1e-12), "{p:?}");
            assert_eq!((p.largest_block, p.n_blocks), (3, d / 3));
            // A tiny margin keeps the far entries out too, and the bound stays valid.
            let loose = ln_permanent_pruned(&c, d, 1e-3).unwrap();
            assert!(loose.ln_lower <= exact + 1e-9 && exact <= loose.ln_upper + 1e-9);
        }
    }

    #[test]
    fn random_dense_matrices_stay_bracketed_with_any_margin() {
        let mut rng = stream(5, 0);
        for d in [3usize, 5, 8] {
            for scale in [1.0, 10.0, 100.0] {
                let c: Vec<f64> = (0..d * d)
                    .map(|_| scale * rng.random_range(-1.0..1.0))
                    .collect();
                let exact = ln_permanent(&c, d).unwrap();
                for margin in [0.5, 5.0, 50.0] {
                    let p = ln_permanent_pruned(&c, d, margin).unwrap();
                    assert!(
                        p.ln_lower <= exact + 1e-9 && exact <= p.ln_upper + 1e-9,
                        "d={d} s={scale} m={margin}: {p:?} vs {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_margins_and_huge_blocks_are_named_errors() {
        assert!(
            ln_permanent_pruned(&[0.0; 4], 2, 0.0)
                .unwrap_err()
                .to_string()
                .contains("margin")
        );
        assert!(ln_permanent_pruned(&[0.0; 3], 2, 1.0).is_err());
        let e = ln_permanent_pruned(&vec![0.0; 30 * 30], 30, 10.0).unwrap_err();
        assert!(matches!(e, Error::WidthTooLarge { width: 30, .. }), "{e}");
    }
}
