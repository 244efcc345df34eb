//! Sandwich bounds on `I(g; ω)` with a proposal over permutations (docs/mathematics.md §6, eqs. 14–16;
//! issue 7, items 1, 2 and 5), for any number of hidden layers.
//!
//! With `S(τ) = ln q(τ⁻¹·ω) − ln q_rest(ω)` (for one hidden layer `Σ_i C[i, τ(i)]` with the
//! unit cost matrix `C` of [`UnitCost`](super::UnitCost)),
//! `Z(ω) = Σ_g q(g⁻¹·ω) = q_rest · Σ_τ e^{S(τ)}` and `I = E_ω[S(id) − ln Σ_τ e^{S(τ)}] + ln|G|`.
//!
//! **Proposal** `r(τ | ω) = (1 − λ) r_T(τ | ω) + λ / |G|`, layer by layer, row by row
//! (module `proposal`): it approximates the permutation posterior `p(τ | ω) ∝ e^{S(τ)}`,
//! has an exact `ln r`, full support, and is *equivariant*:
//! `r(g ∘ τ | g·ω) = r(τ | ω)`.
//!
//! **Lower bound.** With `w(τ) = e^{S(τ)}/r(τ | ω)`, a draw `τ_0` from the posterior and
//! `τ_1..τ_{K−1} ~ r`, `E[ln (1/K) Σ_k w(τ_k)] ≥ ln Σ_τ e^{S(τ)}`: the gap is the KL
//! divergence between the extended distributions in which a uniformly chosen index holds
//! the posterior draw (Grosse et al.'s bidirectional sandwich). Under the joint
//! `g ~ U(G)`, `ω = g·ω_0`, `g` *is* a posterior draw given ω; with an equivariant
//! proposal the bound is unchanged by relabelling, so `g` may be taken as the identity
//! and `ω = ω_0 ~ q`:
//!
//! `I ≥ E[S(id) − ln (1/K)(w(id) + Σ_{k=1}^{K−1} w(τ_k)) ] + ln|G|`.
//!
//! With the uniform proposal (`λ = 1`) this is exactly the paper's `I^K`.
//!
//! **Upper bound.** `(1/M) Σ_{m=1}^{M} w(τ_m)` with `τ_m ~ r` is an unbiased estimate of
//! `Σ_τ e^{S(τ)}` (full support), so by Jensen `E[ln of it] ≤ ln Σ_τ e^{S(τ)}` and
//!
//! `I ≤ E[S(id) − ln (1/M) Σ_m w(τ_m)] + ln|G|`, with `M = K − 1`.
//!
//! Both use the same draws of ω and of the proposal, so their difference is a paired
//! estimate of the interval's width.
//!
//! **Gradient of the lower bound** (one hidden layer; [`MiGradient`] for
//! [`SandwichBound`] with [`Side::Lower`]). The per-draw term
//! `ℓ = S(id) − ln Σ_k e^{a_k} + ln K + ln|G|`, `a_k = S(τ_k) − ln r(τ_k | ω)`, depends on
//! the variational parameters φ through ω = μ + σ ⊙ ε and through the densities in C,
//! and the draws τ_k ~ r(· | ω) are discrete, so the unbiased gradient of `E[ℓ]` is the
//! pathwise part with τ held fixed plus a score part:
//!
//! `∇E[ℓ] = E[∂ℓ/∂C · dC/dφ + Σ_{k≥1} (ℓ − b_k) ∇ ln r(τ_k | ω)]`,
//!
//! with the VIMCO leave-one-out baseline `b_k` (ℓ with `a_k` replaced by the mean of the
//! other `a_j`), which does not depend on `τ_k` and so leaves the estimate unbiased.
//! Writing `w̃_k = softmax_k(a)` and `ρ_k = ∂ ln r/∂ ln r_T = (1 − λ) r_T(τ_k)/r(τ_k)`,
//!
//! `∂ℓ/∂C = E_id − Σ_k w̃_k E_{τ_k} + Σ_k c_k ∇_C ln r_T(τ_k)`, `c_0 = w̃_0 ρ_0`,
//! `c_k = (w̃_k + ℓ − b_k) ρ_k`,
//!
//! (`E_τ` the 0/1 matrix of τ), back-propagated through C to μ and σ. The test checks
//! its expectation — the exact sum over all tuples of draws — against finite differences
//! of the exactly summed `E[ℓ]`.

use crate::estimators::EstimatorId;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::estimators::proposal::{GroupProposal, GroupWorkspace, mixture_slope};
use crate::estimators::unit_cost::UnitCost;
use crate::estimators::{Estimate, EstimateParts, LnSumExp, MiEstimator, MiGradient};
use crate::posterior::MeanFieldGaussian;
use crate::rng::DrawRng;

/// Per permutation (hidden layer), its width and parameters per unit, for the cost
/// estimate: an MLP's from its widths (assuming biases), a spec's counted.
fn unit_shapes(q: &MeanFieldGaussian) -> Vec<(f64, f64)> {
    match (q.space().kernel_arch(), q.space().spec_space()) {
        (Some(arch), _) => {
            let (widths, hidden) = (arch.widths(), arch.hidden_widths().len());
            (0..hidden)
                .map(|h| {
                    let n = widths[h] + 1 + if h + 1 == hidden { widths[h + 2] } else { 0 };
                    (widths[h + 1] as f64, n as f64)
                })
                .collect()
        }
        (None, Some(spec)) => (0..q.space().n_perms())
            .filter_map(|k| spec.units(k))
            .map(|u| (u.width as f64, u.n_per_unit as f64))
            .collect(),
        (None, None) => Vec::new(),
    }
}

/// The proposal-based sandwich: `K − 1` proposal draws per weight draw.
///
/// Defaults (set by [`Sandwich::new`]): 1000 draws, seed 0, temperature 1, uniform
/// mixing λ = 0 (the softmax proposal already has full support; see
/// [`mix`](Self::mix)), 20 rounds of Sinkhorn balancing.
#[derive(Clone, Debug)]
pub struct Sandwich {
    k: usize,
    n_samples: usize,
    seed: u64,
    temperature: f64,
    mix: f64,
    balance: usize,
}

/// Which side of the sandwich an [`MiEstimator`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The importance-weighted contrastive lower bound.
    Lower,
    /// The nested importance-sampling upper bound.
    Upper,
}

/// One side of a [`Sandwich`] as an estimator.
#[derive(Clone, Debug)]
pub struct SandwichBound {
    sandwich: Sandwich,
    side: Side,
}

impl Sandwich {
    /// `K` terms: the identity and `K − 1` proposal draws (the upper bound uses the
    /// `K − 1` draws alone); S = 1000, seed 0, T = 1, λ = 0 and 20 balancing rounds until
    /// set.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `k` for K < 2.
    pub fn new(k: usize) -> Result<Self> {
        if k < 2 {
            return Err(Error::invalid(
                "k",
                k,
                "the sandwich needs K >= 2 (K − 1 >= 1 proposal draws)",
            ));
        }
        Ok(Sandwich {
            k,
            n_samples: 1000,
            seed: 0,
            temperature: 1.0,
            mix: 0.0,
            balance: 20,
        })
    }

    /// Rounds of Sinkhorn balancing of the proposal's logits (0: the plain row-by-row
    /// softmax). The gradient ([`MiGradient`]) differentiates `ln r` through the
    /// unrolled rounds.
    pub fn balance(mut self, rounds: usize) -> Self {
        self.balance = rounds;
        self
    }

    /// Softmax temperature T of the proposal.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `temperature` unless T is finite and > 0.
    pub fn temperature(mut self, temperature: f64) -> Result<Self> {
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::invalid(
                "temperature",
                temperature,
                "must be finite and > 0",
            ));
        }
        self.temperature = temperature;
        Ok(self)
    }

    /// Uniform mixing weight λ of the proposal (λ = 1: uniform, the paper's I^K).
    ///
    /// The row-by-row softmax gives every permutation a positive probability (finite
    /// logits, computed in log space), so both bounds are valid at λ = 0; λ > 0 is a
    /// defensive mixture that caps the importance weights at `|G| e^{S}/λ`. It costs an
    /// offset of about `ln(1 − λ)` on a saturated posterior, where every draw is the
    /// identity: the upper bound's expectation is then rescued only by rare uniform
    /// draws, which a short run does not see.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `mix` unless λ is in [0, 1].
    pub fn mix(mut self, mix: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&mix) {
            return Err(Error::invalid(
                "mix",
                mix,
                "must be in [0, 1] (a probability)",
            ));
        }
        self.mix = mix;
        Ok(self)
    }

    /// The lower bound as an estimator.
    pub fn lower(&self) -> SandwichBound {
        SandwichBound {
            sandwich: self.clone(),
            side: Side::Lower,
        }
    }

    /// The upper bound as an estimator.
    pub fn upper(&self) -> SandwichBound {
        SandwichBound {
            sandwich: self.clone(),
            side: Side::Upper,
        }
    }

    /// Both bounds from the same draws: `(lower, upper)`.
    ///
    /// # Errors
    ///
    /// [`Error::ResourceLimit`] for work beyond the limits, and the proposal's errors for
    /// architectures it cannot handle.
    pub fn estimate_both(&self, q: &MeanFieldGaussian) -> Result<(Estimate, Estimate)> {
        self.estimate_both_within(q, &crate::resources::Limits::default())
    }

    /// Both bounds from the same draws, within `limits`.
    ///
    /// # Errors
    ///
    /// As [`estimate_both`](Self::estimate_both).
    pub fn estimate_both_within(
        &self,
        q: &MeanFieldGaussian,
        limits: &crate::resources::Limits,
    ) -> Result<(Estimate, Estimate)> {
        // Fixed tensors that pin units: estimate on their stabilizer.
        if let Some(both) = super::on_stabilizer_both(
            q,
            EstimatorId::SandwichLower,
            Some(self.k),
            self.n_samples,
            self.seed,
            |r| self.estimate_both_within(r, limits),
        )? {
            return Ok(super::paired(both));
        }
        let started = Instant::now();
        if !q.space().factorizes() {
            return Err(Error::UnsupportedArchitecture {
                estimator: "the sandwich bounds",
                needs: "a group whose permutations' units own disjoint parameters (no permutation on two axes of one tensor it is the last to act on)",
                architecture: q.space().describe(),
            });
        }
        crate::resources::check("the sandwich bounds", self.cost(q), limits)?;
        let prop = GroupProposal::new(q, self.temperature, self.mix, self.balance);
        let ln_order = prop.ln_order();
        let p = q.n_params();
        let ln_k = (self.k as f64).ln();
        let ln_m = ((self.k - 1) as f64).ln();
        let pairs: Vec<(f64, f64)> = crate::estimators::per_draw_terms(
            self.n_samples,
            self.seed,
            || (vec![0.0; p], vec![0.0; p], prop.workspace()),
            |rng, (eps, omega, ws)| {
                q.sample_in_place(rng, eps, omega);
                prop.begin(omega, ws);
                let (s_id, _, ln_r_id) = prop.identity(omega, ws);
                let mut all = LnSumExp::default();
                let mut draws = LnSumExp::default();
                all.push(s_id - ln_r_id);
                for _ in 1..self.k {
                    let (s, _, ln_r) = prop.draw(omega, ws, rng);
                    all.push(s - ln_r);
                    draws.push(s - ln_r);
                }
                let lower = s_id - (all.value() - ln_k) + ln_order;
                let upper = s_id - (draws.value() - ln_m) + ln_order;
                (lower, upper)
            },
        );
        let parts = |name| EstimateParts {
            estimator: name,
            k: Some(self.k),
            seed: self.seed,
            ln_cap: ln_order,
            ln_group_order: ln_order,
        };
        let lower = parts(EstimatorId::SandwichLower).finish(
            q,
            pairs.iter().map(|p| p.0).collect(),
            started,
        );
        let upper = parts(EstimatorId::SandwichUpper).finish(
            q,
            pairs.iter().map(|p| p.1).collect(),
            started,
        );
        Ok(super::paired((lower, upper)))
    }

    /// Estimated memory and time of [`estimate_both`](Self::estimate_both): per draw and
    /// hidden layer the unit costs, the balancing rounds and the `K` softmax draws
    /// (recomputing the costs of deeper layers per draw).
    pub fn cost(&self, q: &MeanFieldGaussian) -> crate::resources::Cost {
        if let Some(r) = super::stabilized(q) {
            return self.cost(&r);
        }
        use crate::resources::{Cost, NS_SOFTMAX, NS_UNIT_COST};
        let (s, k) = (self.n_samples as f64, self.k as f64);
        let mut per_draw = Cost::default();
        // Per thread, each layer's d × d costs, balanced log-probabilities and scratch.
        let mut matrices = 0.0;
        for (h, (d, n)) in unit_shapes(q).into_iter().enumerate() {
            matrices += 3.0 * d * d;
            let refills = if h == 0 { 1.0 } else { k };
            per_draw = per_draw
                .then(Cost::ops(refills * d * d * n, NS_UNIT_COST))
                .then(Cost::ops(
                    refills * 2.0 * self.balance as f64 * d * d + k * d * d,
                    NS_SOFTMAX,
                ));
        }
        Cost::ops(s * per_draw.seconds * 1e9, 1.0).then(crate::estimators::base_cost(
            q,
            2 * self.n_samples,
            matrices,
        ))
    }

    /// The lower-bound term of one draw and its gradient for given proposal draws
    /// `taus` (`K − 1` permutations of the one hidden layer), added into `grad_mu` and
    /// `grad_sigma` (see the module docs). `ws` must hold this ω's costs and balancing
    /// tape from [`GroupProposal::begin`] (one hidden layer: drawing and evaluating leave
    /// them in place).
    // The draw, its noise, the proposal's draws and state, and the two gradient halves:
    // each is needed, and bundling them would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn lower_term_and_grad_given(
        &self,
        prop: &GroupProposal,
        omega: &[f64],
        eps: &[f64],
        taus: &[Vec<usize>],
        ws: &mut GroupWorkspace,
        grad_mu: &mut [f64],
        grad_sigma: &mut [f64],
    ) -> f64 {
        let uc: &UnitCost = prop.first();
        let d = uc.width();
        let k = taus.len() + 1;
        // (a_k, ln r_T, ln r) for the identity (k = 0) and each draw.
        let mut terms = Vec::with_capacity(k);
        let (s_id, soft, ln_r) = prop.identity(omega, ws);
        terms.push((s_id - ln_r, soft, ln_r));
        for tau in taus {
            ws.taus[0].copy_from_slice(tau);
            let (s, soft, ln_r) = prop.evaluate(omega, ws);
            terms.push((s - ln_r, soft, ln_r));
        }
        let a: Vec<f64> = terms.iter().map(|t| t.0).collect();
        let lse = crate::estimators::ln_sum_exp(&a);
        let ln_k = (k as f64).ln();
        let base = s_id + ln_k + prop.ln_order();
        let ell = base - lse;
        let mut m = vec![0.0; d * d];
        let mut g_logits = vec![0.0; d * d];
        for i in 0..d {
            m[i * d + i] += 1.0;
        }
        for (j, &(aj, soft, ln_r)) in terms.iter().enumerate() {
            let w = (aj - lse).exp();
            let score = if j == 0 {
                0.0
            } else {
                // VIMCO: a_j replaced by the mean of the others.
                let mean_others = (a.iter().sum::<f64>() - aj) / (k - 1) as f64;
                let mut acc = LnSumExp::default();
                a.iter()
                    .enumerate()
                    .for_each(|(i, &x)| acc.push(if i == j { mean_others } else { x }));
                ell - (base - acc.value())
            };
            let tau: &[usize] = if j == 0 { &[] } else { &taus[j - 1] };
            if j == 0 {
                (0..d).for_each(|i| m[i * d + i] -= w);
                ws.taus[0].iter_mut().enumerate().for_each(|(i, t)| *t = i);
            } else {
                tau.iter().enumerate().for_each(|(i, &t)| m[i * d + t] -= w);
                ws.taus[0].copy_from_slice(tau);
            }
            let coef = (w + score) * mixture_slope(soft, ln_r, self.mix);
            if coef != 0.0 {
                prop.add_soft_grad(ws, coef, &mut g_logits);
            }
        }
        prop.logits_backward(ws, &g_logits, &mut m);
        uc.backprop_in_place(&ws.thetas[0], eps, &m, grad_mu, grad_sigma);
        ell
    }
}

impl MiEstimator for SandwichBound {
    fn cost(&self, q: &MeanFieldGaussian) -> crate::resources::Cost {
        self.sandwich.cost(q)
    }

    fn id(&self) -> EstimatorId {
        match self.side {
            Side::Lower => EstimatorId::SandwichLower,
            Side::Upper => EstimatorId::SandwichUpper,
        }
    }

    fn sampling(&self) -> (Option<usize>, usize, u64) {
        (
            Some(self.sandwich.k),
            self.sandwich.n_samples,
            self.sandwich.seed,
        )
    }

    /// Both bounds come from [`Sandwich::estimate_both_within`], which handles pinned
    /// units itself (both bounds from the same draws of the stabilizer).
    fn estimate_within(
        &self,
        q: &MeanFieldGaussian,
        limits: &crate::resources::Limits,
    ) -> Result<Estimate> {
        self.estimate_unpinned(q, limits)
    }

    /// # Errors
    ///
    /// As [`Sandwich::estimate_both`].
    fn estimate_unpinned(
        &self,
        q: &MeanFieldGaussian,
        limits: &crate::resources::Limits,
    ) -> Result<Estimate> {
        let (lower, upper) = self.sandwich.estimate_both_within(q, limits)?;
        Ok(match self.side {
            Side::Lower => lower,
            Side::Upper => upper,
        })
    }
}

sampling_setters!(Sandwich);

impl MiGradient for SandwichBound {
    fn id(&self) -> EstimatorId {
        EstimatorId::SandwichLower
    }

    fn ln_cap(&self) -> f64 {
        // One term can exceed ln|G| (by up to ln K); only its mean is bounded.
        f64::INFINITY
    }

    /// The lower-bound term for the draw `ω = μ + σ ⊙ ε` with `K − 1` proposal draws
    /// from `rng`, and its unbiased gradient (pathwise plus score part; module docs).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for the upper side or bad settings (as
    /// [`Sandwich::estimate_both`]), [`Error::UnsupportedArchitecture`] without exactly
    /// one hidden layer, [`Error::LengthMismatch`] for buffers of the wrong length.
    fn term_and_grad(
        &self,
        q: &MeanFieldGaussian,
        eps: &[f64],
        rng: &mut DrawRng,
        grad_mu: &mut [f64],
        grad_sigma: &mut [f64],
    ) -> Result<f64> {
        let sw = &self.sandwich;
        if self.side != Side::Lower {
            return Err(Error::invalid(
                "side",
                "upper",
                "only the lower bound is an objective to maximize",
            ));
        }
        UnitCost::check_one_layer(q)?;
        q.space().check_len("grad_mu", grad_mu)?;
        q.space().check_len("grad_sigma", grad_sigma)?;
        let omega = q.reparameterize(eps)?;
        let prop = GroupProposal::new(q, sw.temperature, sw.mix, sw.balance);
        let mut ws = prop.workspace();
        prop.begin(&omega, &mut ws);
        let taus: Vec<Vec<usize>> = (1..sw.k)
            .map(|_| {
                prop.draw(&omega, &mut ws, rng);
                ws.taus[0].clone()
            })
            .collect();
        Ok(sw.lower_term_and_grad_given(&prop, &omega, eps, &taus, &mut ws, grad_mu, grad_sigma))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::weights::Arch;
    use rand::RngExt;

    /// All `d!^(K−1)` tuples of proposal draws for one hidden layer of width `d`.
    fn tuples(d: usize, n: usize) -> Vec<Vec<Vec<usize>>> {
        let mut perms = Vec::new();
        let mut p: Vec<usize> = (0..d).collect();
        loop {
            perms.push(p.clone());
            let Some(i) = (0..d - 1).rev().find(|&i| p[i] < p[i + 1]) else {
                break;
            };
            let j = (i + 1..d).rev().find(|&j| p[j] > p[i]).unwrap();
            p.swap(i, j);
            p[i + 1..].reverse();
        }
        let mut out = vec![Vec::new()];
        for _ in 0..n {
            out = out
                .into_iter()
                .flat_map(|t| {
                    perms.iter().map(move |p| {
                        let mut t = t.clone();
                        t.push(p.clone());
                        t
                    })
                })
                .collect();
        }
        out
    }

    /// `E_τ[ℓ]` summed exactly over all tuples of draws, and the expectation of the
    /// gradient estimate, for fixed ε.
    fn expected(sw: &Sandwich, q: &MeanFieldGaussian, eps: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        let prop = GroupProposal::new(q, sw.temperature, sw.mix, sw.balance);
        let mut ws = prop.workspace();
        let omega = q.reparameterize(eps).unwrap();
        let d = prop.first().width();
        let p = q.n_params();
        let (mut value, mut g_mu, mut g_sigma) = (0.0, vec![0.0; p], vec![0.0; p]);
        for taus in tuples(d, sw.k - 1) {
            prop.begin(&omega, &mut ws);
            let prob: f64 = taus
                .iter()
                .map(|t| {
                    ws.taus[0].copy_from_slice(t);
                    prop.evaluate(&omega, &mut ws).2.exp()
                })
                .product();
            let (mut gm, mut gs) = (vec![0.0; p], vec![0.0; p]);
            let ell =
                sw.lower_term_and_grad_given(&prop, &omega, eps, &taus, &mut ws, &mut gm, &mut gs);
            value += prob * ell;
            g_mu.iter_mut().zip(&gm).for_each(|(a, b)| *a += prob * b);
            g_sigma
                .iter_mut()
                .zip(&gs)
                .for_each(|(a, b)| *a += prob * b);
        }
        (value, g_mu, g_sigma)
    }

    #[test]
    fn lower_bound_gradient_is_unbiased_against_finite_differences() {
        for (widths, bias, k, t, mix, balance) in [
            (vec![2, 3, 1], true, 3, 1.0, 0.05, 0),
            (vec![1, 3, 2], false, 2, 0.6, 0.3, 0),
            (vec![2, 3, 1], true, 3, 1.0, 0.0, 20),
            (vec![1, 3, 2], false, 3, 0.8, 0.1, 5),
        ] {
            let arch = Arch::builder(widths).bias(bias).check().unwrap();
            let p = arch.n_params();
            let mut rng = stream(21, 0);
            // Overlapping units: means close together relative to σ.
            let mu: Vec<f64> = (0..p).map(|_| rng.random_range(-0.6..0.6)).collect();
            let sigma: Vec<f64> = (0..p).map(|_| rng.random_range(0.4..0.9)).collect();
            let eps: Vec<f64> = (0..p).map(|_| rng.random_range(-1.5..1.5)).collect();
            let sw = Sandwich::new(k)
                .unwrap()
                .temperature(t)
                .unwrap()
                .mix(mix)
                .unwrap()
                .balance(balance);
            let q =
                MeanFieldGaussian::from_mu_sigma(arch.clone(), mu.clone(), sigma.clone()).unwrap();
            let (_, g_mu, g_sigma) = expected(&sw, &q, &eps);
            let norm: f64 = g_mu
                .iter()
                .chain(&g_sigma)
                .map(|g| g * g)
                .sum::<f64>()
                .sqrt();
            assert!(norm > 1e-2, "vacuous check: gradient norm {norm}");
            let h = 1e-5;
            let mut worst: f64 = 0.0;
            for which in 0..2 {
                for i in 0..p {
                    let f = |delta: f64| {
                        let (mut m, mut s) = (mu.clone(), sigma.clone());
                        if which == 0 {
                            m[i] += delta
                        } else {
                            s[i] += delta
                        }
                        let q = MeanFieldGaussian::from_mu_sigma(arch.clone(), m, s).unwrap();
                        expected(&sw, &q, &eps).0
                    };
                    let fd = (f(h) - f(-h)) / (2.0 * h);
                    let an = if which == 0 { g_mu[i] } else { g_sigma[i] };
                    let err = (fd - an).abs() / (fd.abs().max(an.abs()).max(1e-3));
                    worst = worst.max(err);
                    assert!(err < 1e-5, "param {i} ({which}): fd {fd} vs {an}");
                }
            }
            eprintln!("sandwich-lower gradient: worst relative error {worst:.2e}, |g| = {norm:.3}");
        }
    }
}
