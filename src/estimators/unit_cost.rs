//! The unit cost matrix of a one-hidden-layer posterior (docs/mathematics.md §5, eq. 11).
//!
//! With one hidden layer of width `d`, hidden unit `i` owns the parameters
//! `θ_i = (W_0[i, :], b_0[i], W_1[:, i])` (those of them that are variational); the
//! output bias `b_1` is not permuted. The mean-field posterior factorizes as
//! `q(ω) = q_rest(ω_rest) Π_i q_i(θ_i)`, and since `(g⁻¹·ω)`'s unit `i` is ω's unit
//! `τ(i)`,
//!
//! `ln q(g⁻¹·ω) = ln q_rest(ω_rest) + Σ_i C[i, τ(i)]`, with `C[i, j] = ln q_i(θ_j)`.
//!
//! Building `C` costs `O(d² · n)` for `n` parameters per unit, once per weight draw;
//! every permutation then costs `O(d)` instead of `O(P)`. Summed over all of `S_d`,
//! `Σ_g q(g·ω) = q_rest(ω_rest) · perm(exp C)`.
//!
//! `C` is computed entry by entry as `−½ Σ_k ((θ_j,k − μ_i,k)/σ_i,k)² + c_i` rather than by
//! expanding the square into matrix products: the expansion cancels large terms when
//! σ is small, and the direct form is already a contiguous, vectorizable loop.

use crate::error::{Error, Result};
use crate::linalg::{scaled_square_distance, with_avx};
use crate::posterior::{HALF_LN_2PI, MeanFieldGaussian};
use crate::recycle::Recycled;
use crate::symmetry::SpecSpace;

/// Per-unit layout and moments of a one-hidden-layer posterior.
#[derive(Clone, Debug)]
pub struct UnitCost {
    width: usize,
    n_per_unit: usize,
    /// `index[i * n + k]`: flat index of unit `i`'s `k`-th parameter.
    index: Recycled<usize>,
    mu: Recycled<f64>,
    inv_sigma: Recycled<f64>,
    /// `−Σ_k ln σ_i,k − (n/2) ln 2π` per unit.
    normalizer: Vec<f64>,
    /// Parameters outside every unit (the output bias), with their moments.
    rest: Vec<usize>,
    layout: Units,
    /// The earlier permutations (hidden layers) whose relabelling moves these units.
    deps: Vec<usize>,
}

/// How a layer's units are relabelled by the earlier permutations.
#[derive(Clone, Debug)]
enum Units {
    /// An MLP's hidden layer: its incoming columns follow the previous layer.
    Layer(LayerUnits),
    /// A permutation of a spec (docs/mathematics.md §5; [`crate::symmetry::space`]).
    Spec(std::sync::Arc<SpecSpace>),
}

/// Where the parameters of hidden layer `h`'s units sit in the flat vector.
///
/// Unit `j` owns `W_h[j, :]` (its incoming row), `b_h[j]` and — for the last hidden layer
/// only — `W_{h+1}[:, j]` (its outgoing column; the output layer is never permuted), each
/// part only if variational. An intermediate layer's outgoing column is the next layer's
/// incoming columns, so every weight belongs to exactly one layer's units. With the
/// previous hidden layer relabelled by `τ_{h−1}`, unit `i` of `τ⁻¹·ω` has incoming entry
/// `c` equal to ω's `W_h[τ_h(i), τ_{h−1}(c)]` (the convention of [`ActionMap`]).
///
/// [`ActionMap`]: crate::symmetry::ActionMap
#[derive(Clone, Debug)]
pub(crate) struct LayerUnits {
    width: usize,
    n_per_unit: usize,
    fan_in: usize,
    in_weight: Option<usize>,
    bias: Option<usize>,
    /// `(offset of W_{h+1}, its number of rows)` for the last hidden layer.
    out_weight: Option<(usize, usize)>,
}

impl LayerUnits {
    fn new(arch: &crate::weights::Arch, h: usize) -> Self {
        let widths = arch.widths();
        assert!(h + 2 < widths.len(), "layer {h} is not hidden");
        let (fan_in, width) = (widths[h], widths[h + 1]);
        let incoming = arch.offsets(h);
        let out_weight = (h + 3 == widths.len())
            .then(|| arch.offsets(h + 1).map(|o| (o.weight, widths[h + 2])))
            .flatten();
        let in_weight = incoming.map(|o| o.weight);
        let bias = incoming.and_then(|o| o.bias);
        let n_per_unit = in_weight.map_or(0, |_| fan_in)
            + usize::from(bias.is_some())
            + out_weight.map_or(0, |(_, rows)| rows);
        LayerUnits {
            width,
            n_per_unit,
            fan_in,
            in_weight,
            bias,
            out_weight,
        }
    }

    /// Appends the flat indices of ω's unit `j`, incoming columns relabelled by `prev`
    /// (the previous hidden layer's `τ_{h−1}`; `None` = identity).
    #[inline(always)]
    fn push_unit(&self, j: usize, prev: Option<&[usize]>, out: &mut Vec<usize>) {
        if let Some(w) = self.in_weight {
            let row = w + j * self.fan_in;
            match prev {
                Some(p) => out.extend(p.iter().map(|&c| row + c)),
                None => out.extend(row..row + self.fan_in),
            }
        }
        if let Some(b) = self.bias {
            out.push(b + j);
        }
        if let Some((w, rows)) = self.out_weight {
            out.extend((0..rows).map(|r| w + r * self.width + j));
        }
    }
}

impl UnitCost {
    /// The layout of `q`, which must have exactly one hidden layer.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedArchitecture`] for any other number of hidden layers.
    pub fn new(q: &MeanFieldGaussian) -> Result<Self> {
        Self::check_one_layer(q)?;
        Ok(Self::for_layer(q, 0))
    }

    /// The architecture check of [`UnitCost::new`], without building anything.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedArchitecture`] unless `q` has exactly one hidden layer.
    pub(crate) fn check_one_layer(q: &MeanFieldGaussian) -> Result<()> {
        if !q.space().single_unit_group() {
            return Err(Error::UnsupportedArchitecture {
                estimator: "the unit cost matrix",
                needs: "exactly one hidden layer (one permutation whose units own disjoint parameters)",
                architecture: q.space().describe(),
            });
        }
        Ok(())
    }

    /// The costs of hidden layer `h` of any depth, with the previous hidden layer (if
    /// any) in its own order: unit `i` owns its incoming row and bias and, for the last
    /// hidden layer only, its outgoing column (see [`LayerUnits`]). For one hidden layer
    /// this is [`UnitCost::new`].
    ///
    /// # Panics
    ///
    /// If `h` is not a hidden layer of `q`'s architecture.
    pub(crate) fn for_layer(q: &MeanFieldGaussian, h: usize) -> Self {
        let space = q.space();
        let last = space.n_perms() - 1;
        let (width, n, index, mut rest, layout, deps) =
            match (space.kernel_arch(), space.spec_arc()) {
                (Some(arch), _) => {
                    let layout = LayerUnits::new(arch, h);
                    let (d, n) = (layout.width, layout.n_per_unit);
                    let index = Recycled::built(d * n, |index| {
                        for j in 0..d {
                            layout.push_unit(j, None, index);
                        }
                    });
                    let mut rest = Vec::new();
                    if h == last
                        && let Some(ob) = arch.offsets(last + 1).and_then(|o| o.bias)
                    {
                        rest.extend(ob..ob + arch.widths()[last + 2]);
                    }
                    let deps = if h == 0 { vec![] } else { vec![h - 1] };
                    (d, n, index, rest, Units::Layer(layout), deps)
                }
                (None, Some(spec)) => {
                    let units = spec
                        .units(h)
                        .expect("the caller checked that the spec factorizes");
                    let (d, n) = (units.width, units.n_per_unit);
                    let index = Recycled::built(d * n, |index| index.extend(&units.index));
                    (
                        d,
                        n,
                        index,
                        Vec::new(),
                        Units::Spec(spec.clone()),
                        units.deps,
                    )
                }
                (None, None) => unreachable!("a space is an MLP or a spec"),
            };
        if h == last
            && let Units::Spec(spec) = &layout
        {
            rest = spec.rest();
        }
        let mut costs = UnitCost {
            width,
            n_per_unit: n,
            index,
            mu: Recycled::filled(width * n, 0.0),
            inv_sigma: Recycled::filled(width * n, 0.0),
            normalizer: vec![0.0; width],
            rest,
            layout,
            deps,
        };
        costs.refresh(q);
        costs
    }

    /// The earlier permutations whose relabelling moves these units.
    pub(crate) fn deps(&self) -> &[usize] {
        &self.deps
    }

    /// One entry `C[i, j]` of an MLP's hidden layer, with the previous hidden layer
    /// relabelled by `prev` (`None`: the identity), in `O(n)`: what a chain that moves one
    /// pair of units at a time needs. `scratch` holds unit `j`'s indices.
    ///
    /// # Panics
    ///
    /// For a layer of a permutation spec.
    #[inline(always)]
    pub(crate) fn entry(
        &self,
        omega: &[f64],
        prev: Option<&[usize]>,
        i: usize,
        j: usize,
        scratch: &mut Vec<usize>,
    ) -> f64 {
        let Units::Layer(layout) = &self.layout else {
            panic!("UnitCost::entry reads an MLP's layer");
        };
        scratch.clear();
        layout.push_unit(j, prev, scratch);
        let n = self.n_per_unit;
        self.normalizer[i]
            - 0.5
                * crate::linalg::scaled_square_distance_gathered(
                    omega,
                    scratch,
                    &self.mu[i * n..(i + 1) * n],
                    &self.inv_sigma[i * n..(i + 1) * n],
                )
    }

    /// An MLP layer's variational incoming weights: the flat offset of `W_h` and its fan-in
    /// (a unit's first `fan_in` moments are those of its incoming row, in column order);
    /// `None` for a fixed incoming layer or a spec.
    pub(crate) fn incoming(&self) -> Option<(usize, usize)> {
        match &self.layout {
            Units::Layer(layout) => layout.in_weight.map(|w| (w, layout.fan_in)),
            Units::Spec(_) => None,
        }
    }

    /// Unit `i`'s means and inverse scales, in its parameters' order.
    pub(crate) fn unit_moments(&self, i: usize) -> (&[f64], &[f64]) {
        let n = self.n_per_unit;
        (
            &self.mu[i * n..(i + 1) * n],
            &self.inv_sigma[i * n..(i + 1) * n],
        )
    }

    /// Re-reads the moments of `q` (same architecture) into the existing layout, without
    /// allocating: what a training step does after every update of q.
    ///
    /// # Panics
    ///
    /// If `q` has fewer parameters than the posterior this layout was built for.
    pub(crate) fn refresh(&mut self, q: &MeanFieldGaussian) {
        let n = self.n_per_unit;
        let (mu, inv_sigma, ln_sigma) = (q.mu(), q.inv_sigma(), q.ln_sigma());
        // Unit j's parameters in the order of `index`; Σ ln σ in that order.
        for (j, ((dst_mu, dst_is), z)) in self
            .mu
            .chunks_mut(n)
            .zip(self.inv_sigma.chunks_mut(n))
            .zip(&mut self.normalizer)
            .enumerate()
        {
            let mut sum = -0.0;
            for (k, &p) in self.index[j * n..(j + 1) * n].iter().enumerate() {
                (dst_mu[k], dst_is[k]) = (mu[p], inv_sigma[p]);
                sum += ln_sigma[p];
            }
            *z = -sum - n as f64 * HALF_LN_2PI;
        }
    }

    /// `D[i, j] = Σ_k f(μ_i,k, σ_i,k, μ_j,k, σ_j,k)`: a per-parameter divergence summed
    /// over two units' parameters (`d × d`, row-major).
    pub fn unit_divergence(&self, f: impl Fn(f64, f64, f64, f64) -> f64) -> Vec<f64> {
        let (d, n) = (self.width, self.n_per_unit);
        let mut out = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] = (0..n)
                    .map(|k| {
                        let (a, b) = (i * n + k, j * n + k);
                        f(
                            self.mu[a],
                            1.0 / self.inv_sigma[a],
                            self.mu[b],
                            1.0 / self.inv_sigma[b],
                        )
                    })
                    .sum();
            }
        }
        out
    }

    /// Hidden width `d`.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Parameters per hidden unit.
    pub fn n_per_unit(&self) -> usize {
        self.n_per_unit
    }

    /// Gathers the units of `omega` into `theta` (`d × n`, unit-major) and writes
    /// `C[i, j] = ln q_i(θ_j)` into `c` (`d × d`, row-major).
    ///
    /// # Panics
    ///
    /// If `theta` is not of length `d · n` or `c` not of length `d²`, or `omega` is
    /// shorter than the posterior's P.
    pub fn fill_in_place(&self, omega: &[f64], theta: &mut [f64], c: &mut [f64]) {
        self.costs_from(omega, &self.index, theta, c, None);
    }

    /// As [`fill_in_place`](Self::fill_in_place), computing only the entries `C[i, j]`
    /// with `needed[i * d + j]` (the others keep their old values): a few sampled
    /// permutations touch only part of `C`. Each computed entry has the same bits as in
    /// the full matrix.
    ///
    /// # Panics
    ///
    /// As [`fill_in_place`](Self::fill_in_place), or if `needed` is not of length `d²`.
    pub(crate) fn fill_needed(
        &self,
        omega: &[f64],
        theta: &mut [f64],
        c: &mut [f64],
        needed: &[bool],
    ) {
        self.costs_from(omega, &self.index, theta, c, Some(needed));
    }

    fn costs_from(
        &self,
        omega: &[f64],
        index: &[usize],
        theta: &mut [f64],
        c: &mut [f64],
        needed: Option<&[bool]>,
    ) {
        let (d, n) = (self.width, self.n_per_unit);
        assert_eq!(theta.len(), d * n);
        assert_eq!(c.len(), d * d);
        if let Some(needed) = needed {
            assert_eq!(needed.len(), d * d);
        }
        for (t, &p) in theta.iter_mut().zip(index) {
            *t = omega[p];
        }
        // Explicit accumulator lanes: AVX code gives the same bits as SSE2 code.
        with_avx(
            #[inline(always)]
            || {
                for i in 0..d {
                    let mu_i = &self.mu[i * n..(i + 1) * n];
                    let is_i = &self.inv_sigma[i * n..(i + 1) * n];
                    for j in 0..d {
                        if needed.is_some_and(|m| !m[i * d + j]) {
                            continue;
                        }
                        let th_j = &theta[j * n..(j + 1) * n];
                        c[i * d + j] =
                            self.normalizer[i] - 0.5 * scaled_square_distance(th_j, mu_i, is_i);
                    }
                }
            },
        );
    }

    /// As [`fill_in_place`](Self::fill_in_place) with the earlier permutations applied
    /// (`taus[e]`: `τ_e`; an MLP reads only the previous hidden layer's): `C[i, j] =
    /// ln q_i(θ_j)` for the units of `τ⁻¹·ω` restricted to this layer. `index` is
    /// scratch space.
    ///
    /// # Panics
    ///
    /// As [`fill_in_place`](Self::fill_in_place).
    pub(crate) fn fill_after(
        &self,
        omega: &[f64],
        taus: &[Vec<usize>],
        index: &mut Vec<usize>,
        theta: &mut [f64],
        c: &mut [f64],
    ) {
        index.clear();
        match &self.layout {
            Units::Layer(layout) => {
                let prev = self.deps.first().map(|&e| taus[e].as_slice());
                for j in 0..self.width {
                    layout.push_unit(j, prev, index);
                }
            }
            Units::Spec(spec) => {
                let upto = self.deps.last().map_or(0, |&e| e + 1);
                index.extend(self.index.iter().map(|&p| spec.relabel(p, &taus[..upto])));
            }
        }
        self.costs_from(omega, index, theta, c, None);
    }

    /// `C` as a new `d × d` row-major vector.
    ///
    /// # Panics
    ///
    /// If `omega` is shorter than the posterior's P.
    pub fn matrix(&self, omega: &[f64]) -> Vec<f64> {
        let mut theta = vec![0.0; self.width * self.n_per_unit];
        let mut c = vec![0.0; self.width * self.width];
        self.fill_in_place(omega, &mut theta, &mut c);
        c
    }

    /// Back-propagates `Σ_{i,k} M[i, k] · dC[i, k]` for the draw `ω = μ + σ ⊙ ε` into
    /// gradients with respect to μ and σ (added into `grad_mu`, `grad_sigma`, indexed
    /// by flat parameter), through both the densities' own `μ_i, σ_i` and the draw's
    /// `θ_k = μ_k + σ_k ε_k`:
    ///
    /// `∂C[i,k]/∂μ_i = (θ_k − μ_i)/σ_i²`, `∂C[i,k]/∂σ_i = (θ_k − μ_i)²/σ_i³ − 1/σ_i`,
    /// `∂C[i,k]/∂θ_k = −(θ_k − μ_i)/σ_i²`.
    ///
    /// `theta` must hold the units of the same draw (as written by
    /// [`fill_in_place`](Self::fill_in_place)).
    ///
    /// # Panics
    ///
    /// If a buffer has the wrong length.
    pub fn backprop_in_place(
        &self,
        theta: &[f64],
        eps: &[f64],
        m: &[f64],
        grad_mu: &mut [f64],
        grad_sigma: &mut [f64],
    ) {
        self.backprop_with(theta, eps, m, grad_mu, grad_sigma, &mut Vec::new());
    }

    /// [`backprop_in_place`](Self::backprop_in_place) with its scratch space in `buf`
    /// (resized as needed). Unit `i`'s own-density terms are summed over `k` in
    /// contiguous per-unit accumulators and then added once per parameter.
    pub(crate) fn backprop_with(
        &self,
        theta: &[f64],
        eps: &[f64],
        m: &[f64],
        grad_mu: &mut [f64],
        grad_sigma: &mut [f64],
        buf: &mut Vec<f64>,
    ) {
        let (d, n) = (self.width, self.n_per_unit);
        assert_eq!(theta.len(), d * n);
        assert_eq!(m.len(), d * d);
        buf.clear();
        buf.resize(d * n + 2 * n, 0.0);
        let (g_theta, acc) = buf.split_at_mut(d * n);
        let (acc_mu, acc_sigma) = acc.split_at_mut(n);
        with_avx(
            #[inline(always)]
            || {
                for i in 0..d {
                    let m_i = &m[i * d..(i + 1) * d];
                    if m_i.iter().all(|&x| x == 0.0) {
                        continue;
                    }
                    let mu_i = &self.mu[i * n..(i + 1) * n];
                    let is_i = &self.inv_sigma[i * n..(i + 1) * n];
                    acc_mu.fill(0.0);
                    acc_sigma.fill(0.0);
                    for (k, &mik) in m_i.iter().enumerate() {
                        if mik == 0.0 {
                            continue;
                        }
                        let th_k = &theta[k * n..(k + 1) * n];
                        let gt_k = &mut g_theta[k * n..(k + 1) * n];
                        for l in 0..n {
                            let diff = th_k[l] - mu_i[l];
                            let u = diff * is_i[l] * is_i[l];
                            acc_mu[l] += mik * u;
                            acc_sigma[l] += mik * diff * u * is_i[l];
                            gt_k[l] -= mik * u;
                        }
                    }
                    let row_sum: f64 = m_i.iter().sum();
                    if row_sum != 0.0 {
                        for (a, is) in acc_sigma.iter_mut().zip(is_i) {
                            *a -= row_sum * is;
                        }
                    }
                    let idx_i = &self.index[i * n..(i + 1) * n];
                    for ((&p, a_mu), a_sigma) in idx_i.iter().zip(&*acc_mu).zip(&*acc_sigma) {
                        grad_mu[p] += a_mu;
                        grad_sigma[p] += a_sigma;
                    }
                }
            },
        );
        for (gt, &p) in g_theta.iter().zip(&self.index) {
            grad_mu[p] += gt;
            grad_sigma[p] += gt * eps[p];
        }
    }

    /// `ln q_rest(ω_rest)`, the density of the parameters no permutation moves.
    ///
    /// # Panics
    ///
    /// If `omega` is shorter than the posterior's P.
    pub fn ln_q_rest(&self, q: &MeanFieldGaussian, omega: &[f64]) -> f64 {
        let mut quad = 0.0;
        for &p in &self.rest {
            let z = (omega[p] - q.mu()[p]) * q.inv_sigma()[p];
            quad += z * z;
        }
        let ln_sigma: f64 = self.rest.iter().map(|&p| q.ln_sigma()[p]).sum();
        -0.5 * quad - ln_sigma - self.rest.len() as f64 * HALF_LN_2PI
    }
}

/// `Σ_i C[i, τ(i)]` for a `d × d` row-major `C`.
#[inline]
pub(crate) fn assignment_sum(c: &[f64], d: usize, tau: &[usize]) -> f64 {
    tau.iter().enumerate().map(|(i, &t)| c[i * d + t]).sum()
}

/// `out[k] = assignment_sum(c, d, τ_k) − shift` for the permutations `τ_k` stored one
/// after another in `taus`, with the same bits. Four permutations at a time: each sum
/// is still added in the order `i = 0, 1, …`, but four independent chains of additions
/// keep the adder busy where one chain waited on each addition's latency.
///
/// # Panics
///
/// If `taus.len() != d · out.len()`, or an entry indexes outside `c`.
pub(crate) fn assignment_sums(c: &[f64], d: usize, taus: &[usize], shift: f64, out: &mut [f64]) {
    assert_eq!(taus.len(), d * out.len());
    let mut quads = out.chunks_exact_mut(4);
    let mut perms = taus.chunks_exact(4 * d);
    for (o, t) in (&mut quads).zip(&mut perms) {
        let (t0, rest) = t.split_at(d);
        let (t1, rest) = rest.split_at(d);
        let (t2, t3) = rest.split_at(d);
        let mut acc = [-0.0_f64; 4];
        for (i, row) in c.chunks_exact(d).take(d).enumerate() {
            acc[0] += row[t0[i]];
            acc[1] += row[t1[i]];
            acc[2] += row[t2[i]];
            acc[3] += row[t3[i]];
        }
        for (o, a) in o.iter_mut().zip(acc) {
            *o = a - shift;
        }
    }
    for (o, tau) in quads
        .into_remainder()
        .iter_mut()
        .zip(perms.remainder().chunks_exact(d))
    {
        *o = assignment_sum(c, d, tau) - shift;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::symmetry::{ActionMap, Group};
    use crate::weights::Arch;
    use rand::RngExt;

    #[test]
    fn unit_costs_reproduce_permuted_log_density() {
        for (bias, fixed) in [(true, false), (false, false), (true, true), (false, true)] {
            let mut b = Arch::builder(vec![3, 4, 2]).bias(bias);
            if fixed {
                b = b.fixed_layer(1, vec![1.0; 8], bias.then(|| vec![0.5, -0.5]));
            }
            let arch = b.check().unwrap();
            let mut rng = stream(3, 0);
            let p = arch.n_params();
            let mu = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
            let sigma = (0..p).map(|_| rng.random_range(0.1..1.0)).collect();
            let q = MeanFieldGaussian::from_mu_sigma(arch.clone(), mu, sigma).unwrap();
            let uc = UnitCost::new(&q).unwrap();
            let w = q.sample(&mut rng);
            let c = uc.matrix(&w);
            let rest = uc.ln_q_rest(&q, &w);
            let group = Group::of(&arch);
            for _ in 0..20 {
                let g = group.random(&mut rng);
                let direct = q
                    .ln_q_inverse_permuted(&w, &ActionMap::new(&arch, &g))
                    .unwrap();
                let fast = rest + assignment_sum(&c, 4, g.layer(0).forward());
                assert!(
                    (direct - fast).abs() < 1e-10 * direct.abs().max(1.0),
                    "{direct} vs {fast}"
                );
            }
        }
    }

    #[test]
    fn needed_entries_have_the_bits_of_the_full_matrix() {
        let arch = Arch::builder(vec![5, 6, 3]).check().unwrap();
        let mut rng = stream(4, 0);
        let p = arch.n_params();
        let mu = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
        let sigma = (0..p).map(|_| rng.random_range(0.1..1.0)).collect();
        let q = MeanFieldGaussian::from_mu_sigma(arch, mu, sigma).unwrap();
        let uc = UnitCost::new(&q).unwrap();
        let w = q.sample(&mut rng);
        let full = uc.matrix(&w);
        let needed: Vec<bool> = (0..36).map(|_| rng.random_range(0..3) == 0).collect();
        let mut theta = vec![0.0; 6 * uc.n_per_unit()];
        let mut c = vec![f64::NAN; 36];
        uc.fill_needed(&w, &mut theta, &mut c, &needed);
        for (k, &want) in needed.iter().enumerate() {
            if want {
                assert_eq!(c[k].to_bits(), full[k].to_bits(), "entry {k}");
            } else {
                assert!(c[k].is_nan(), "entry {k} was written");
            }
        }
        assert!(needed.iter().any(|&b| b) && !needed.iter().all(|&b| b));
    }

    #[test]
    fn batched_assignment_sums_have_the_bits_of_single_ones() {
        let mut rng = stream(4, 0);
        for d in [1usize, 2, 5, 30] {
            let c: Vec<f64> = (0..d * d).map(|_| rng.random_range(-900.0..10.0)).collect();
            for count in [1usize, 3, 4, 9] {
                let mut taus = vec![0; d * count];
                crate::rng::shuffled_identities(&mut rng, d, &mut taus);
                let mut got = vec![0.0; count];
                assignment_sums(&c, d, &taus, 1.5, &mut got);
                for (g, tau) in got.iter().zip(taus.chunks(d)) {
                    assert_eq!(g.to_bits(), (assignment_sum(&c, d, tau) - 1.5).to_bits());
                }
            }
        }
    }

    #[test]
    fn deeper_nets_are_refused() {
        let arch = Arch::builder(vec![2, 3, 3, 1]).check().unwrap();
        let q = MeanFieldGaussian::new(arch, vec![0.0; 25], vec![0.0; 25]).unwrap();
        assert!(matches!(
            UnitCost::new(&q),
            Err(Error::UnsupportedArchitecture { .. })
        ));
    }
}
