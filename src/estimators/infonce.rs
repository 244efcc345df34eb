//! The paper's `I^K` estimator (Theorem 4.3; docs/mathematics.md §4, eq. 9).
//!
//! For each of `S` draws `ω_s ~ q` and `K − 1` fresh uniform permutations `g_{s,j}`,
//!
//! `Î^K = (1/S) Σ_s [ ln q(ω_s) − ln( (1/K) ( q(ω_s) + Σ_{j=1}^{K−1} q(g_{s,j}⁻¹·ω_s) ) ) ]`.
//!
//! This is the InfoNCE bound with the true density ratio as critic; the group structure
//! collapses its `O(K²)` sum to `O(K)` density evaluations per draw. Facts (tested):
//!
//! * every per-draw term is `≤ ln K` (the identity is one of the `K` summands), and equals
//!   `0` exactly for `K = 1`;
//! * `0 ≤ E[Î^K] ≤ I`, and `E[Î^K]` increases to `I` as `K → ∞`. A *single* term can be
//!   negative (when some `q(g⁻¹·ω) > q(ω)`); only its expectation is non-negative.
//!
//! `Ĥ^K = Î^K + H(q)` is reported alongside. The paper writes the estimator as
//! `Ĥ^K − H(q)` with the analytic `H(q)`; that has the same mean but a per-draw spread of
//! about `√(P/2)` nats, so here `ln q(ω_s)` is always paired with its own draw.
//!
//! **Paths.** The generic path evaluates `ln q(g⁻¹·ω)` through an [`ActionMap`] in `O(P)`
//! per permutation, for any depth. For one hidden layer the unit-cost-matrix path
//! ([`UnitCost`]) builds `C` once per draw and then costs `O(d)` per permutation. Both
//! consume the same random numbers in the same order, so they agree to rounding.

use crate::estimators::EstimatorId;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::estimators::unit_cost::{UnitCost, assignment_sum, assignment_sums};
use crate::estimators::{
    Estimate, EstimateParts, GradScratch, LnSumExp, MiEstimator, MiGradient, ln_sum_exp,
    per_draw_terms,
};
use crate::posterior::MeanFieldGaussian;
use crate::recycle::Recycled;
use crate::rng::DrawRng;
use crate::symmetry::{ActionMap, GroupElement};

/// How [`InfoNce`] evaluates permuted densities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InfoNcePath {
    /// The unit-cost-matrix path for one hidden layer, the generic path otherwise.
    #[default]
    Auto,
    /// Always the generic `O(P)`-per-permutation path.
    Generic,
    /// The unit-cost-matrix path (an error unless there is exactly one hidden layer).
    UnitCost,
}

/// The paper's `I^K` estimator with `S` weight draws and `K − 1` fresh uniform
/// permutations per draw.
///
/// Defaults (set by [`InfoNce::new`]): 1000 draws, seed 0, [`InfoNcePath::Auto`].
///
/// # Examples
///
/// ```
/// use mi_est::estimators::{InfoNce, MiEstimator};
/// use mi_est::posterior::MeanFieldGaussian;
/// use mi_est::weights::Arch;
/// // The paper's 2-parameter model: two hidden units whose weights overlap under q.
/// let arch = Arch::builder(vec![1, 2, 1]).bias(false).fixed_layer(1, vec![1.0, 1.0], None).check()?;
/// let q = MeanFieldGaussian::from_mu_sigma(arch, vec![0.5, -0.5], vec![0.5, 0.5])?;
/// let est = InfoNce::new(2)?.samples(20_000)?.seed(7).estimate(&q)?;
/// // For |G| = 2, I^2 = I/2, and I = 0.500072 nats here (2-D quadrature).
/// assert!((est.value - 0.500072 / 2.0).abs() < 4.0 * est.std_err.unwrap());
/// assert!(est.terms.iter().all(|&t| t <= 2f64.ln()));
/// # Ok::<(), mi_est::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct InfoNce {
    k: usize,
    n_samples: usize,
    seed: u64,
    path: InfoNcePath,
}

impl InfoNce {
    /// `K` contrast terms: the identity and `K − 1` random permutations; S = 1000 draws
    /// and seed 0 until set.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `k` for K = 0 (K counts the identity).
    pub fn new(k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::invalid("k", 0, "K counts the identity, so K >= 1"));
        }
        Ok(InfoNce {
            k,
            n_samples: 1000,
            seed: 0,
            path: InfoNcePath::Auto,
        })
    }

    /// Evaluation path.
    pub fn path(mut self, path: InfoNcePath) -> Self {
        self.path = path;
        self
    }
}

struct Workspace {
    eps: Recycled<f64>,
    omega: Recycled<f64>,
    g: crate::symmetry::GroupElement,
    theta: Recycled<f64>,
    c: Recycled<f64>,
    /// A batch of permutations of the unit-cost path, one after another.
    taus: Recycled<usize>,
    /// Their terms `ln q(g⁻¹·ω) − ln q(ω)`.
    terms: Recycled<f64>,
    /// The action of `g` on a space given by a spec (an MLP's path needs none).
    map: Option<ActionMap>,
}

/// Permutations drawn at once on the unit-cost path.
const PERMUTATION_BATCH: usize = 256;

impl MiEstimator for InfoNce {
    fn id(&self) -> EstimatorId {
        EstimatorId::InfoNce
    }

    fn cost(&self, q: &MeanFieldGaussian) -> crate::resources::Cost {
        if let Some(r) = super::stabilized(q) {
            return self.cost(&r);
        }
        use crate::resources::{Cost, NS_PARAM_PERM, NS_UNIT_COST};
        let (s, k) = (self.n_samples as f64, self.k as f64);
        let one_layer = q.space().single_unit_group() && self.path != InfoNcePath::Generic;
        let (d, n) = crate::estimators::unit_shape(q);
        let time = if one_layer {
            Cost::ops(s * (d * d * n + k * d), NS_UNIT_COST)
        } else {
            Cost::ops(s * k * q.n_params() as f64, NS_PARAM_PERM)
        };
        let extra = if one_layer { d * d + d * n } else { 0.0 };
        time.then(crate::estimators::base_cost(q, self.n_samples, extra))
    }

    /// # Errors
    ///
    /// [`Error::UnsupportedArchitecture`] for [`InfoNcePath::UnitCost`] on a net without
    /// exactly one hidden layer.
    fn sampling(&self) -> (Option<usize>, usize, u64) {
        (Some(self.k), self.n_samples, self.seed)
    }

    fn estimate_unpinned(
        &self,
        q: &MeanFieldGaussian,
        limits: &crate::resources::Limits,
    ) -> Result<Estimate> {
        let started = Instant::now();
        crate::resources::check(MiEstimator::name(self), self.cost(q), limits)?;
        let space = q.space();
        let group = space.group();
        let unit_cost = self.unit_cost(q)?;
        let (k, p) = (self.k, q.n_params());
        let ln_k = (k as f64).ln();
        let identity = group.identity();
        let (d, n) = unit_cost
            .as_ref()
            .map_or((0, 0), |u| (u.width(), u.n_per_unit()));
        let batch = PERMUTATION_BATCH.min(k.saturating_sub(1));
        let init = || Workspace {
            eps: Recycled::filled(p, 0.0),
            omega: Recycled::filled(p, 0.0),
            g: group.identity(),
            theta: Recycled::filled(d * n, 0.0),
            c: Recycled::filled(d * d, 0.0),
            taus: Recycled::filled(d * batch, 0),
            terms: Recycled::filled(batch, 0.0),
            map: space
                .kernel_arch()
                .is_none()
                .then(|| space.action(&identity)),
        };
        let terms = per_draw_terms(self.n_samples, self.seed, init, |rng, ws| {
            q.sample_in_place(rng, &mut ws.eps, &mut ws.omega);
            let mut lse = LnSumExp::default();
            let ln_q0 = match &unit_cost {
                Some(uc) => {
                    uc.fill_in_place(&ws.omega, &mut ws.theta, &mut ws.c);
                    let d = uc.width();
                    let diag: f64 = (0..d).map(|i| ws.c[i * d + i]).sum();
                    lse.push(0.0);
                    // The K − 1 permutations in batches (the same draws as one
                    // `randomize` each: one hidden layer, nothing else drawn between).
                    let mut left = k - 1;
                    while left > 0 {
                        let batch = left.min(PERMUTATION_BATCH);
                        let taus = &mut ws.taus[..batch * d];
                        crate::rng::shuffled_identities(rng, d, taus);
                        let terms = &mut ws.terms[..batch];
                        assignment_sums(&ws.c, d, taus, diag, terms);
                        lse.push_all(terms);
                        left -= batch;
                    }
                    return ln_k - lse.value();
                }
                // The identity through the same kernel as the permuted terms.
                None => match &mut ws.map {
                    Some(map) => {
                        space.assign(map, &identity);
                        q.ln_q_inverse_permuted_unchecked(&ws.omega, map)
                    }
                    None => q.ln_q_inverse_permuted_by(&ws.omega, &identity),
                },
            };
            lse.push(0.0);
            for _ in 1..k {
                group.randomize(&mut ws.g, rng);
                let a = match &mut ws.map {
                    Some(map) => {
                        space.assign(map, &ws.g);
                        q.ln_q_inverse_permuted_unchecked(&ws.omega, map)
                    }
                    None => q.ln_q_inverse_permuted_by(&ws.omega, &ws.g),
                };
                lse.push(a - ln_q0);
            }
            ln_k - lse.value()
        });
        Ok(EstimateParts {
            estimator: MiEstimator::id(self),
            k: Some(k),
            seed: self.seed,
            ln_cap: ln_k,
            ln_group_order: group.ln_order(),
        }
        .finish(q, terms, started))
    }
}

impl InfoNce {
    fn unit_cost(&self, q: &MeanFieldGaussian) -> Result<Option<UnitCost>> {
        Ok(match self.path {
            InfoNcePath::Generic => None,
            InfoNcePath::UnitCost => Some(UnitCost::new(q)?),
            InfoNcePath::Auto => UnitCost::new(q).ok(),
        })
    }

    /// One per-draw term for the fixed draw `ω = μ + σ ⊙ ε` and the fixed contrast
    /// elements `perms` (`K − 1` of them; the identity is implicit), and, if `grads` is
    /// given, its gradient with respect to μ and σ added into `(grad_mu, grad_sigma)`.
    ///
    /// With `a_j = ln q(g_j⁻¹·ω)` (`g_0 = e`) and `w = softmax(a)`, the term is
    /// `ln K + a_0 − ln Σ_j e^{a_j}` and its differential is `Σ_j (δ_{j0} − w_j) da_j`,
    /// where each `da_j` counts both the density's own μ, σ and the draw
    /// (`∂ω/∂μ = 1`, `∂ω/∂σ = ε`). The path (`self.path`) decides how `a_j` and `da_j`
    /// are evaluated; both give the same numbers up to rounding.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `eps` or a gradient buffer is not of length P;
    /// [`Error::UnsupportedArchitecture`] for [`InfoNcePath::UnitCost`] without exactly one
    /// hidden layer.
    ///
    /// # Panics
    ///
    /// If an element of `perms` belongs to another group.
    pub fn term_with_permutations(
        &self,
        q: &MeanFieldGaussian,
        eps: &[f64],
        perms: &[GroupElement],
        grads: Option<(&mut [f64], &mut [f64])>,
    ) -> Result<f64> {
        let mut ws = self.grad_workspace(q)?;
        self.term_in(q, eps, perms, grads, &mut ws)
    }

    fn grad_workspace(&self, q: &MeanFieldGaussian) -> Result<GradWorkspace> {
        Ok(GradWorkspace {
            space: q.space().clone(),
            path: self.path,
            unit_cost: self.unit_cost(q)?,
            perms: Vec::new(),
            omega: Vec::new(),
            theta: Vec::new(),
            c: Vec::new(),
            needed: Vec::new(),
            m: Vec::new(),
            a: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// [`term_with_permutations`](Self::term_with_permutations) in the buffers of `ws`
    /// (built for `q`'s architecture and this path).
    fn term_in(
        &self,
        q: &MeanFieldGaussian,
        eps: &[f64],
        perms: &[GroupElement],
        grads: Option<(&mut [f64], &mut [f64])>,
        ws: &mut GradWorkspace,
    ) -> Result<f64> {
        let space = q.space();
        if let Some((gm, gs)) = &grads {
            space.check_len("grad_mu", gm)?;
            space.check_len("grad_sigma", gs)?;
        }
        let k = perms.len() + 1;
        q.reparameterize_into(eps, &mut ws.omega)?;
        let omega = &ws.omega;
        let a = &mut ws.a;
        a.clear();
        match &mut ws.unit_cost {
            Some(uc) => {
                uc.refresh(q);
                let d = uc.width();
                ws.theta.resize(d * uc.n_per_unit(), 0.0);
                ws.c.resize(d * d, 0.0);
                // Only the entries the identity and the K − 1 permutations read.
                let needed = &mut ws.needed;
                needed.clear();
                needed.resize(d * d, false);
                for i in 0..d {
                    needed[i * d + i] = true;
                }
                for g in perms {
                    for (i, &t) in g.layer(0).forward().iter().enumerate() {
                        needed[i * d + t] = true;
                    }
                }
                let c = &mut ws.c;
                uc.fill_needed(omega, &mut ws.theta, c, needed);
                let diag: f64 = (0..d).map(|i| c[i * d + i]).sum();
                a.push(diag);
                a.extend(
                    perms
                        .iter()
                        .map(|g| assignment_sum(c, d, g.layer(0).forward())),
                );
                let lse = ln_sum_exp(a);
                let term = (k as f64).ln() + a[0] - lse;
                if let Some((grad_mu, grad_sigma)) = grads {
                    let m = &mut ws.m;
                    m.clear();
                    m.resize(d * d, 0.0);
                    for i in 0..d {
                        m[i * d + i] += 1.0 - (a[0] - lse).exp();
                    }
                    for (g, &aj) in perms.iter().zip(&a[1..]) {
                        let cj = -(aj - lse).exp();
                        for (i, &t) in g.layer(0).forward().iter().enumerate() {
                            m[i * d + t] += cj;
                        }
                    }
                    uc.backprop_with(&ws.theta, eps, m, grad_mu, grad_sigma, &mut ws.buf);
                }
                Ok(term)
            }
            None => {
                let a0 = q.ln_q_inverse_permuted_by(omega, &space.group().identity());
                a.push(a0);
                a.extend(perms.iter().map(|g| q.ln_q_inverse_permuted_by(omega, g)));
                let lse = ln_sum_exp(a);
                let term = (k as f64).ln() + a0 - lse;
                if let Some((grad_mu, grad_sigma)) = grads {
                    // The identity's a_0 = −½|ε|² − Σ ln σ − const: d a_0/dμ = 0, d a_0/dσ = −1/σ.
                    let c0 = 1.0 - (a0 - lse).exp();
                    for (gs, is) in grad_sigma.iter_mut().zip(q.inv_sigma()) {
                        *gs -= c0 * is;
                    }
                    let g_omega = &mut ws.buf;
                    g_omega.clear();
                    g_omega.resize(omega.len(), 0.0);
                    let maps = perms.iter().map(|g| space.action(g));
                    for (j, map) in maps.enumerate() {
                        let cj = -(a[j + 1] - lse).exp();
                        for (p, &t) in map.target().iter().enumerate() {
                            let t = t as usize;
                            let is = q.inv_sigma()[p];
                            let diff = omega[t] - q.mu()[p];
                            let u = diff * is * is;
                            grad_mu[p] += cj * u;
                            grad_sigma[p] += cj * (diff * u * is - is);
                            g_omega[t] -= cj * u;
                        }
                    }
                    for p in 0..omega.len() {
                        grad_mu[p] += g_omega[p];
                        grad_sigma[p] += g_omega[p] * eps[p];
                    }
                }
                Ok(term)
            }
        }
    }
}

/// The buffers of [`InfoNce`]'s training term, kept between steps in a
/// [`GradScratch`](crate::estimators::GradScratch).
struct GradWorkspace {
    space: crate::symmetry::WeightSpace,
    path: InfoNcePath,
    /// The unit layout (refreshed from q at every call), `None` on the generic path.
    unit_cost: Option<UnitCost>,
    perms: Vec<GroupElement>,
    omega: Vec<f64>,
    theta: Vec<f64>,
    c: Vec<f64>,
    /// Which entries of `c` this call reads.
    needed: Vec<bool>,
    m: Vec<f64>,
    a: Vec<f64>,
    buf: Vec<f64>,
}

impl MiGradient for InfoNce {
    fn id(&self) -> EstimatorId {
        EstimatorId::InfoNce
    }

    fn ln_cap(&self) -> f64 {
        (self.k as f64).ln()
    }

    /// Draws `K − 1` uniform elements from `rng` and evaluates
    /// [`InfoNce::term_with_permutations`] with gradients.
    fn term_and_grad(
        &self,
        q: &MeanFieldGaussian,
        eps: &[f64],
        rng: &mut DrawRng,
        grad_mu: &mut [f64],
        grad_sigma: &mut [f64],
    ) -> Result<f64> {
        self.term_and_grad_in(
            q,
            eps,
            rng,
            grad_mu,
            grad_sigma,
            &mut GradScratch::default(),
        )
    }

    fn term_and_grad_in(
        &self,
        q: &MeanFieldGaussian,
        eps: &[f64],
        rng: &mut DrawRng,
        grad_mu: &mut [f64],
        grad_sigma: &mut [f64],
        scratch: &mut GradScratch,
    ) -> Result<f64> {
        let ws = scratch.get(
            |ws: &GradWorkspace| ws.space == *q.space() && ws.path == self.path,
            || self.grad_workspace(q),
        )?;
        let group = q.space().group();
        ws.perms.resize_with(self.k - 1, || group.identity());
        for g in &mut ws.perms {
            group.randomize(g, rng);
        }
        let perms = std::mem::take(&mut ws.perms);
        let term = self.term_in(q, eps, &perms, Some((grad_mu, grad_sigma)), ws);
        ws.perms = perms;
        term
    }
}

sampling_setters!(InfoNce);
