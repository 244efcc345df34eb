//! The paper's `I^K` estimator (Theorem 4.3, DESIGN §3 item 1).
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

use std::time::Instant;

use crate::error::{Error, Result};
use crate::estimators::unit_cost::{UnitCost, assignment_sum};
use crate::estimators::{
    Estimate, EstimateParts, LnSumExp, MiEstimator, check_samples, per_draw_terms,
};
use crate::posterior::MeanFieldGaussian;
use crate::symmetry::{ActionMap, Group};

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
/// let est = InfoNce::new(2).samples(20_000).seed(7).estimate(&q)?;
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
    /// `K` contrast terms: the identity and `K − 1` random permutations.
    pub fn new(k: usize) -> Self {
        InfoNce {
            k,
            n_samples: 1000,
            seed: 0,
            path: InfoNcePath::Auto,
        }
    }

    /// Number of weight draws S.
    pub fn samples(mut self, n_samples: usize) -> Self {
        self.n_samples = n_samples;
        self
    }

    /// Seed of the draws.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Evaluation path.
    pub fn path(mut self, path: InfoNcePath) -> Self {
        self.path = path;
        self
    }
}

struct Workspace {
    eps: Vec<f64>,
    omega: Vec<f64>,
    g: crate::symmetry::GroupElement,
    map: Option<ActionMap>,
    theta: Vec<f64>,
    c: Vec<f64>,
}

impl MiEstimator for InfoNce {
    fn name(&self) -> &'static str {
        "infonce"
    }

    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for `K = 0` or `S = 0`;
    /// [`Error::UnsupportedArchitecture`] for [`InfoNcePath::UnitCost`] on a net without
    /// exactly one hidden layer.
    fn estimate(&self, q: &MeanFieldGaussian) -> Result<Estimate> {
        let started = Instant::now();
        if self.k == 0 {
            return Err(Error::invalid("k", 0, "K counts the identity, so K >= 1"));
        }
        check_samples(self.n_samples)?;
        let arch = q.arch();
        let group = Group::of(arch);
        let unit_cost = match self.path {
            InfoNcePath::Generic => None,
            InfoNcePath::UnitCost => Some(UnitCost::new(q)?),
            InfoNcePath::Auto => UnitCost::new(q).ok(),
        };
        let (k, p) = (self.k, q.n_params());
        let ln_k = (k as f64).ln();
        let init = || Workspace {
            eps: vec![0.0; p],
            omega: vec![0.0; p],
            g: group.identity(),
            map: unit_cost
                .is_none()
                .then(|| ActionMap::new(arch, &group.identity())),
            theta: unit_cost
                .as_ref()
                .map_or(Vec::new(), |u| vec![0.0; u.width() * u.n_per_unit()]),
            c: unit_cost
                .as_ref()
                .map_or(Vec::new(), |u| vec![0.0; u.width() * u.width()]),
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
                    for _ in 1..k {
                        group.randomize(&mut ws.g, rng);
                        lse.push(assignment_sum(&ws.c, d, ws.g.layer(0).forward()) - diag);
                    }
                    return ln_k - lse.value();
                }
                None => q.ln_q_unchecked(&ws.omega),
            };
            let map = ws.map.as_mut().expect("generic path has a map");
            lse.push(0.0);
            for _ in 1..k {
                group.randomize(&mut ws.g, rng);
                map.assign(arch, &ws.g);
                lse.push(q.ln_q_inverse_permuted_unchecked(&ws.omega, map) - ln_q0);
            }
            ln_k - lse.value()
        });
        Ok(EstimateParts {
            estimator: self.name(),
            k: Some(k),
            seed: self.seed,
            ln_cap: ln_k,
            ln_group_order: group.ln_order(),
        }
        .finish(q, terms, started))
    }
}
