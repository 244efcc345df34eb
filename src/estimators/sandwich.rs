//! Sandwich bounds on `I(g; ω)` with a proposal over permutations (DESIGN §3 item 4;
//! issue 7, items 1–2), for one hidden layer.
//!
//! With the unit cost matrix `C` ([`UnitCost`]) and `S(τ) = Σ_i C[i, τ(i)]`,
//! `Z(ω) = Σ_g q(g⁻¹·ω) = q_rest · Σ_τ e^{S(τ)}` and `I = E_ω[S(id) − ln Σ_τ e^{S(τ)}] + ln d!`.
//!
//! **Proposal** `r(τ | ω) = (1 − λ) r_T(τ | ω) + λ / d!`: with probability λ a uniform
//! permutation, otherwise rows in a fixed order, row `i` picking a column `j` among those
//! left with probability `softmax_j(C[i, j]/T)`. `ln r_T` is the exact sum of the chosen
//! log-probabilities and `ln r` their log-sum-exp mixture with `ln λ − ln d!`; `λ > 0`
//! keeps the support full. (Mixing per permutation rather than per row keeps
//! `r(id | ω) ≥ 1 − λ` when the posterior is concentrated on the identity, so a
//! saturated posterior gives a tight interval.) It
//! approximates the permutation posterior `p(τ | ω) ∝ e^{S(τ)}`, and it is *equivariant*:
//! relabelling ω's hidden units permutes the columns of `C` (the rows are q's units) and
//! the draws are relabelled the same way.
//!
//! **Lower bound.** With `w(τ) = e^{S(τ)}/r(τ | ω)`, a draw `τ_0` from the posterior and
//! `τ_1..τ_{K−1} ~ r`, `E[ln (1/K) Σ_k w(τ_k)] ≥ ln Σ_τ e^{S(τ)}`: the gap is the KL
//! divergence between the extended distributions in which a uniformly chosen index holds
//! the posterior draw (Grosse et al.'s bidirectional sandwich). Under the joint
//! `g ~ U(G)`, `ω = g·ω_0`, `g` *is* a posterior draw given ω; with an equivariant
//! proposal the bound is unchanged by relabelling, so `g` may be taken as the identity
//! and `ω = ω_0 ~ q`:
//!
//! `I ≥ E[S(id) − ln (1/K)(w(id) + Σ_{k=1}^{K−1} w(τ_k)) ] + ln d!`.
//!
//! With the uniform proposal (`λ = 1`) this is exactly the paper's `I^K`.
//!
//! **Upper bound.** `(1/M) Σ_{m=1}^{M} w(τ_m)` with `τ_m ~ r` is an unbiased estimate of
//! `Σ_τ e^{S(τ)}` (full support), so by Jensen `E[ln of it] ≤ ln Σ_τ e^{S(τ)}` and
//!
//! `I ≤ E[S(id) − ln (1/M) Σ_m w(τ_m)] + ln d!`, with `M = K − 1`.
//!
//! Both use the same draws of ω and of the proposal, so their difference is a paired
//! estimate of the interval's width.

use rand::RngExt;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::estimators::unit_cost::UnitCost;
use crate::estimators::{Estimate, EstimateParts, LnSumExp, MiEstimator, check_samples};
use crate::posterior::MeanFieldGaussian;
use crate::rng::DrawRng;
use crate::symmetry::ln_factorial;

/// The proposal-based sandwich: `K − 1` proposal draws per weight draw.
///
/// Defaults (set by [`Sandwich::new`]): 1000 draws, seed 0, temperature 1, uniform
/// mixing λ = 0.01.
#[derive(Clone, Debug)]
pub struct Sandwich {
    k: usize,
    n_samples: usize,
    seed: u64,
    temperature: f64,
    mix: f64,
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
    /// `K − 1` draws alone).
    pub fn new(k: usize) -> Self {
        Sandwich {
            k,
            n_samples: 1000,
            seed: 0,
            temperature: 1.0,
            mix: 0.05,
        }
    }

    /// Softmax temperature T of the proposal.
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Uniform mixing weight λ of the proposal (λ = 1: uniform, the paper's I^K).
    pub fn mix(mut self, mix: f64) -> Self {
        self.mix = mix;
        self
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

    fn check(&self) -> Result<()> {
        if self.k < 2 {
            return Err(Error::invalid(
                "k",
                self.k,
                "the sandwich needs K >= 2 (K − 1 >= 1 proposal draws)",
            ));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::invalid(
                "temperature",
                self.temperature,
                "must be finite and > 0",
            ));
        }
        if !(self.mix > 0.0 && self.mix <= 1.0) {
            return Err(Error::invalid(
                "mix",
                self.mix,
                "must be in (0, 1] so the proposal has full support",
            ));
        }
        check_samples(self.n_samples)
    }

    /// Both bounds from the same draws: `(lower, upper)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for K < 2, a temperature ≤ 0, λ outside (0, 1] or
    /// S = 0; [`Error::UnsupportedArchitecture`] without exactly one hidden layer.
    pub fn estimate_both(&self, q: &MeanFieldGaussian) -> Result<(Estimate, Estimate)> {
        let started = Instant::now();
        self.check()?;
        let uc = UnitCost::new(q)?;
        let d = uc.width();
        let ln_order = ln_factorial(d);
        let p = q.n_params();
        let ln_k = (self.k as f64).ln();
        let ln_m = ((self.k - 1) as f64).ln();
        let pairs: Vec<(f64, f64)> = crate::estimators::per_draw_terms(
            self.n_samples,
            self.seed,
            || {
                (
                    vec![0.0; p],
                    vec![0.0; p],
                    vec![0.0; d * uc.n_per_unit()],
                    vec![0.0; d * d],
                    ProposalWorkspace::new(d),
                )
            },
            |rng, (eps, omega, theta, c, ws)| {
                q.sample_in_place(rng, eps, omega);
                uc.fill_in_place(omega, theta, c);
                let s_id: f64 = (0..d).map(|i| c[i * d + i]).sum();
                let ln_r_id = ws.ln_prob_identity(c, d, self.temperature, self.mix);
                let mut all = LnSumExp::default();
                let mut draws = LnSumExp::default();
                all.push(s_id - ln_r_id);
                for _ in 1..self.k {
                    let (s, ln_r) = ws.draw(c, d, self.temperature, self.mix, rng);
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
        let lower = parts("sandwich-lower").finish(q, pairs.iter().map(|p| p.0).collect(), started);
        let upper = parts("sandwich-upper").finish(q, pairs.iter().map(|p| p.1).collect(), started);
        Ok((lower, upper))
    }
}

impl MiEstimator for SandwichBound {
    fn name(&self) -> &'static str {
        match self.side {
            Side::Lower => "sandwich-lower",
            Side::Upper => "sandwich-upper",
        }
    }

    /// # Errors
    ///
    /// As [`Sandwich::estimate_both`].
    fn estimate(&self, q: &MeanFieldGaussian) -> Result<Estimate> {
        let (lower, upper) = self.sandwich.estimate_both(q)?;
        Ok(match self.side {
            Side::Lower => lower,
            Side::Upper => upper,
        })
    }
}

/// Buffers of the row-by-row proposal.
#[derive(Clone, Debug)]
pub(crate) struct ProposalWorkspace {
    left: Vec<usize>,
    logits: Vec<f64>,
}

impl ProposalWorkspace {
    pub(crate) fn new(d: usize) -> Self {
        ProposalWorkspace {
            left: Vec::with_capacity(d),
            logits: Vec::with_capacity(d),
        }
    }

    /// Softmax log-probabilities of choosing each remaining column for row `i`.
    fn row_ln_probs(&mut self, c: &[f64], d: usize, i: usize, t: f64) {
        self.logits.clear();
        self.logits
            .extend(self.left.iter().map(|&j| c[i * d + j] / t));
        let lse = crate::estimators::ln_sum_exp(&self.logits);
        self.logits.iter_mut().for_each(|l| *l -= lse);
    }

    /// `ln r(τ | ω)` from `ln r_T(τ | ω)`.
    fn mixture(ln_soft: f64, d: usize, mix: f64) -> f64 {
        let mut acc = LnSumExp::default();
        if mix < 1.0 {
            acc.push((1.0 - mix).ln() + ln_soft);
        }
        acc.push(mix.ln() - ln_factorial(d));
        acc.value()
    }

    /// `(S(τ), ln r_T(τ | ω))` of a given assignment.
    fn soft_of(&mut self, c: &[f64], d: usize, tau: &[usize], t: f64) -> (f64, f64) {
        self.left.clear();
        self.left.extend(0..d);
        let (mut s, mut total) = (0.0, 0.0);
        for (i, &j) in tau.iter().enumerate() {
            self.row_ln_probs(c, d, i, t);
            let pos = self
                .left
                .iter()
                .position(|&x| x == j)
                .expect("a permutation");
            total += self.logits[pos];
            s += c[i * d + j];
            self.left.remove(pos);
        }
        (s, total)
    }

    /// `ln r(τ | ω)` of a given assignment.
    pub(crate) fn ln_prob(&mut self, c: &[f64], d: usize, tau: &[usize], t: f64, mix: f64) -> f64 {
        let (_, soft) = self.soft_of(c, d, tau, t);
        Self::mixture(soft, d, mix)
    }

    /// `ln r(id | ω)`.
    pub(crate) fn ln_prob_identity(&mut self, c: &[f64], d: usize, t: f64, mix: f64) -> f64 {
        let identity: Vec<usize> = (0..d).collect();
        self.ln_prob(c, d, &identity, t, mix)
    }

    /// A draw τ ~ r(· | ω): returns `(S(τ), ln r(τ | ω))`.
    pub(crate) fn draw(
        &mut self,
        c: &[f64],
        d: usize,
        t: f64,
        mix: f64,
        rng: &mut DrawRng,
    ) -> (f64, f64) {
        let uniform = rng.random::<f64>() < mix;
        let mut tau: Vec<usize> = (0..d).collect();
        if uniform {
            crate::rng::shuffle(&mut tau, rng);
        } else {
            self.left.clear();
            self.left.extend(0..d);
            for slot in tau.iter_mut() {
                let i = d - self.left.len();
                self.row_ln_probs(c, d, i, t);
                let u: f64 = rng.random();
                let mut acc = 0.0;
                let mut pos = self.left.len() - 1;
                for (k, l) in self.logits.iter().enumerate() {
                    acc += l.exp();
                    if u < acc {
                        pos = k;
                        break;
                    }
                }
                *slot = self.left.remove(pos);
            }
        }
        let (s, soft) = self.soft_of(c, d, &tau, t);
        (s, Self::mixture(soft, d, mix))
    }
}

sampling_setters!(Sandwich);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::symmetry::Permutation;

    #[test]
    fn proposal_probabilities_sum_to_one_and_match_draw_frequencies() {
        let d = 4;
        let mut rng = stream(1, 0);
        let c: Vec<f64> = (0..d * d).map(|_| 3.0 * rng.random::<f64>()).collect();
        let mut ws = ProposalWorkspace::new(d);
        // Every permutation of 0..4, summed: probabilities total 1.
        let mut all = Vec::new();
        let mut p = Permutation::identity(d);
        let mut rng2 = stream(2, 0);
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 24 {
            p.randomize(&mut rng2);
            if seen.insert(p.forward().to_vec()) {
                all.push(p.forward().to_vec());
            }
        }
        let total: f64 = all
            .iter()
            .map(|t| ws.ln_prob(&c, d, t, 0.7, 0.1).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        assert!(
            (ws.ln_prob_identity(&c, d, 0.7, 0.1) - ws.ln_prob(&c, d, &[0, 1, 2, 3], 0.7, 0.1))
                .abs()
                < 1e-14
        );
        // Draws: ln r returned equals ln_prob of the drawn assignment, and frequencies match.
        let n = 60_000;
        let mut counts = std::collections::HashMap::new();
        for _ in 0..n {
            let (s, ln_r) = ws.draw(&c, d, 0.7, 0.1, &mut rng);
            *counts
                .entry(((s * 1e9) as i64, (ln_r * 1e9) as i64))
                .or_insert(0usize) += 1;
        }
        for ((_, ln_r), k) in counts {
            let prob = (ln_r as f64 / 1e9).exp();
            let sd = (prob * (1.0 - prob) / n as f64).sqrt();
            assert!(
                (k as f64 / n as f64 - prob).abs() < 5.0 * sd + 1e-4,
                "{prob} vs {}",
                k as f64 / n as f64
            );
        }
    }
}
