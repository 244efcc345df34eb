//! Estimators of the mutual information `I(g; ω)` between a uniformly random
//! hidden-unit permutation `g` and the weights `ω ~ q` (docs/mathematics.md §3–§7).
//!
//! `I(g; ω) = H(q^G) − H(q) = E_{ω~q}[ln q(ω) − ln q^G(ω)]`, with the symmetrized
//! posterior `q^G(ω) = (1/|G|) Σ_g q(g⁻¹·ω)`. Every estimator here averages a per-draw
//! term over `S` reparameterized draws `ω_s = μ + σ ⊙ ε_s` and reports the mean, its
//! Monte Carlo standard error, and the largest single term's share of the sum (per-draw
//! values are heavy tailed for large groups, so a naive SE can understate the error).
//!
//! * [`InfoNce`] — the paper's `I^K` (Theorem 4.3): `K − 1` fresh uniform permutations per
//!   draw; biased low, `≤ ln K` on every draw, increasing to `I` as `K → ∞`.
//! * [`ExactEnumeration`] — `ln q^G` by summing over all of G (small groups).
//! * [`ExactPermanent`] — one hidden layer: `Σ_g q(g·ω) = q_rest(ω) · perm(exp C)` with the
//!   unit cost matrix `C[i, j] = ln q_i(θ_j)`, by a dynamic program over subsets.
//!
//! Draw `s` takes its generator from [`stream(seed, s)`](crate::rng::stream): the weights
//! first, then the permutations. Draws run in parallel with rayon and the reduction is
//! sequential, so a seed gives the same bits at any thread count.

/// The `samples` and `seed` builder setters every estimator shares (fields `n_samples`
/// and `seed`); `samples` refuses S = 0, so a built estimator always holds valid settings.
macro_rules! sampling_setters {
    ($t:ty) => {
        impl $t {
            /// Number of weight draws S (at least one).
            ///
            /// # Errors
            ///
            /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) naming
            /// `samples` for S = 0.
            pub fn samples(mut self, n_samples: usize) -> crate::Result<Self> {
                crate::estimators::check_samples(n_samples)?;
                self.n_samples = n_samples;
                Ok(self)
            }

            /// Seed of the draws.
            pub fn seed(mut self, seed: u64) -> Self {
                self.seed = seed;
                self
            }
        }
    };
}

mod enumeration;
mod exact;
mod infonce;
mod pairwise;
mod permanent;
mod proposal;
mod pruned;
mod sandwich;
mod unit_cost;

mod annealed;
mod by_name;
mod gradient;
pub use annealed::{Annealed, AnnealedBound};
pub use by_name::{ESTIMATOR_NAMES, EstimatorKind, EstimatorSpec, estimator_by_name};
pub use gradient::{GRADIENT_NAMES, TermGrad, mi_gradient, term_and_grad_at};

pub use enumeration::ExactEnumeration;
pub use exact::{ExactLimits, exact_estimate, exact_estimator};
pub use infonce::{InfoNce, InfoNcePath};
pub use pairwise::PairwiseBound;
pub use permanent::{
    ExactPermanent, MAX_PERMANENT_WIDTH, PermanentWorkspace, ln_permanent, ln_permanent_in_place,
    ln_permanent_marginals,
};
pub use pruned::{DEFAULT_MARGIN, ExactPruned, PrunedPermanent, ln_permanent_pruned};
pub use sandwich::{Sandwich, SandwichBound, Side};
pub use unit_cost::UnitCost;

use rayon::prelude::*;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::posterior::MeanFieldGaussian;
use crate::resources::{Cost, Limits};
use crate::rng::{DrawRng, stream};

/// The result of one estimate of `I(g; ω)`. All values in nats.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Which estimator produced it.
    pub estimator: EstimatorId,
    /// The estimate of `I(g; ω)` (for [`InfoNce`], of `I^K ≤ I`).
    pub value: f64,
    /// Monte Carlo standard error of `value` over the weight draws (`None` for S = 1).
    pub std_err: Option<f64>,
    /// Number of weight draws S.
    pub n_samples: usize,
    /// Number of contrast terms K (the identity plus K − 1 permutations), if any.
    pub k: Option<usize>,
    /// Seed of the draws.
    pub seed: u64,
    /// Wall time of the estimate, seconds.
    pub wall_s: f64,
    /// `H(q)` in closed form.
    pub entropy_q: f64,
    /// `Ĥ = value + H(q)`, the corresponding estimate of `H(q^G)` (the paper's `Ĥ^K`).
    pub entropy_sym: f64,
    /// `ln|G|`.
    pub ln_group_order: f64,
    /// The largest value a single per-draw term can take (`ln K` or `ln|G|`).
    pub ln_cap: f64,
    /// The largest per-draw term's share of the sum of per-draw terms (`None` unless the
    /// sum is positive); near 1/S means evenly spread, near 1 means one draw carries it.
    pub max_term_share: Option<f64>,
    /// For estimators that are exact only up to a proven error (the pruned permanent):
    /// the largest per-draw width of the bracket around each term, nats. The true mean
    /// lies within `[value − bracket, value]` up to Monte Carlo error.
    pub bracket: Option<f64>,
    /// The per-draw terms, in draw order.
    pub terms: Vec<f64>,
    /// For the two sides of an interval from the same draws (the sandwich): both bounds,
    /// carried by each side's estimate.
    pub interval: Option<Interval>,
}

/// A lower and an upper bound on `I(g; ω)` from the same draws, as computed (a Monte
/// Carlo bound can fall outside [0, ln|G|], where `I` always lies: [`Interval::cut`]),
/// with their standard errors and the paired standard error of their width.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// The lower bound's estimate.
    pub lower: f64,
    /// The upper bound's estimate.
    pub upper: f64,
    /// The lower bound's Monte Carlo standard error (`None` for one draw).
    pub lower_std_err: Option<f64>,
    /// The upper bound's Monte Carlo standard error (`None` for one draw).
    pub upper_std_err: Option<f64>,
    /// The mean of `upper − lower` over the paired draws (`upper − lower` up to rounding).
    pub width: f64,
    /// The standard error of `upper − lower` over the paired draws (`None` for one draw).
    pub width_std_err: Option<f64>,
    /// `ln|G|`, the largest value `I` takes.
    pub ln_group_order: f64,
    /// The upper bound's per-draw terms, in draw order (the lower bound's are the
    /// estimate's `terms`).
    pub upper_terms: Vec<f64>,
}

impl Interval {
    /// The interval of `lower` and `upper`, estimates from the same draws (their terms
    /// paired draw by draw).
    pub fn of(lower: &Estimate, upper: &Estimate) -> Self {
        let (width, width_std_err) =
            if lower.terms.len() == upper.terms.len() && !lower.terms.is_empty() {
                let d: Vec<f64> = upper
                    .terms
                    .iter()
                    .zip(&lower.terms)
                    .map(|(u, l)| u - l)
                    .collect();
                let s = summarize(&d);
                (s.mean, s.std_err)
            } else {
                (upper.value - lower.value, None)
            };
        Interval {
            lower: lower.value,
            upper: upper.value,
            lower_std_err: lower.std_err,
            upper_std_err: upper.std_err,
            width,
            width_std_err,
            ln_group_order: lower.ln_group_order,
            upper_terms: upper.terms.clone(),
        }
    }

    /// The bounds cut to [0, ln|G|], where `I` lies: what a reader quotes (the raw ones
    /// stay in `lower` and `upper`); [`cut_to_group`], as every report's cut.
    pub fn cut(&self) -> (f64, f64) {
        (
            cut_to_group(self.lower, self.ln_group_order),
            cut_to_group(self.upper, self.ln_group_order),
        )
    }

    /// Whether a raw bound lies outside [0, ln|G|] (the cut changed it).
    pub fn was_cut(&self) -> bool {
        self.cut() != (self.lower, self.upper)
    }
}

/// A bound on `I(g; ω)` cut to [0, ln|G|], where `I` always lies (`0 ≤ I ≤ H(g) = ln|G|`):
/// a lower bound below 0 or an upper bound above ln|G| says nothing more than the cut one.
/// The one cut of the library: [`Interval::cut`], the reports' tables
/// ([`EstimatorId::cut`]) and the studies use it.
pub fn cut_to_group(bound: f64, ln_group_order: f64) -> f64 {
    bound.clamp(0.0, ln_group_order)
}

/// Which estimator produced an estimate: the one spelling of each estimator's name, in
/// reports, journals and on the command line (`Display`, `FromStr` and serde all use
/// [`EstimatorId::name`]).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum EstimatorId {
    /// [`InfoNce`]: the paper's `I^K`, a lower bound.
    #[serde(rename = "infonce")]
    InfoNce,
    /// [`ExactEnumeration`]: `I` by summing over the whole group.
    #[serde(rename = "exact-enumeration")]
    ExactEnumeration,
    /// [`ExactPermanent`]: `I` through the permanent of the unit cost matrix.
    #[serde(rename = "exact-permanent")]
    ExactPermanent,
    /// [`ExactPruned`]: the permanent with far units pruned, within a proven bracket.
    #[serde(rename = "exact-pruned")]
    ExactPruned,
    /// [`Sandwich`]'s lower bound.
    #[serde(rename = "sandwich-lower")]
    SandwichLower,
    /// [`Sandwich`]'s upper bound.
    #[serde(rename = "sandwich-upper")]
    SandwichUpper,
    /// [`Annealed`]'s lower bound (reverse chains from the identity).
    #[serde(rename = "annealed-lower")]
    AnnealedLower,
    /// [`Annealed`]'s upper bound (forward chains from the uniform distribution).
    #[serde(rename = "annealed-upper")]
    AnnealedUpper,
    /// [`PairwiseBound::Bhattacharyya`], a deterministic lower bound.
    #[serde(rename = "pairwise-bhattacharyya-lower")]
    PairwiseBhattacharyyaLower,
    /// [`PairwiseBound::Kl`], a deterministic upper bound.
    #[serde(rename = "pairwise-kl-upper")]
    PairwiseKlUpper,
}

impl EstimatorId {
    /// Every estimator.
    pub const ALL: [EstimatorId; 10] = [
        EstimatorId::InfoNce,
        EstimatorId::ExactEnumeration,
        EstimatorId::ExactPermanent,
        EstimatorId::ExactPruned,
        EstimatorId::SandwichLower,
        EstimatorId::SandwichUpper,
        EstimatorId::AnnealedLower,
        EstimatorId::AnnealedUpper,
        EstimatorId::PairwiseBhattacharyyaLower,
        EstimatorId::PairwiseKlUpper,
    ];

    /// The name in reports (`infonce`, `exact-permanent`, `sandwich-lower`, …).
    pub const fn name(self) -> &'static str {
        match self {
            EstimatorId::InfoNce => "infonce",
            EstimatorId::ExactEnumeration => "exact-enumeration",
            EstimatorId::ExactPermanent => "exact-permanent",
            EstimatorId::ExactPruned => "exact-pruned",
            EstimatorId::SandwichLower => "sandwich-lower",
            EstimatorId::SandwichUpper => "sandwich-upper",
            EstimatorId::AnnealedLower => "annealed-lower",
            EstimatorId::AnnealedUpper => "annealed-upper",
            EstimatorId::PairwiseBhattacharyyaLower => "pairwise-bhattacharyya-lower",
            EstimatorId::PairwiseKlUpper => "pairwise-kl-upper",
        }
    }

    /// The label of the estimator a table names (a report's `estimator` column): its
    /// [`label`](Self::label), or the name as given where it is not an estimator's
    /// (`sandwich`, both bounds of one row).
    pub fn label_of(name: &str) -> String {
        name.parse::<EstimatorId>()
            .map_or_else(|_| name.to_string(), |id| id.label().to_string())
    }

    /// The label of its estimates in plots and pages (`I^K`, `sandwich lower bound`, …).
    pub const fn label(self) -> &'static str {
        match self {
            EstimatorId::InfoNce => "I^K",
            EstimatorId::ExactEnumeration => "exact I (enumeration)",
            EstimatorId::ExactPermanent => "exact I (permanent)",
            EstimatorId::ExactPruned => "exact I (pruned permanent)",
            EstimatorId::SandwichLower => "sandwich lower bound",
            EstimatorId::SandwichUpper => "sandwich upper bound",
            EstimatorId::AnnealedLower => "annealed lower bound",
            EstimatorId::AnnealedUpper => "annealed upper bound",
            EstimatorId::PairwiseBhattacharyyaLower => "pairwise lower bound",
            EstimatorId::PairwiseKlUpper => "pairwise upper bound",
        }
    }

    /// Whether it computes `I` itself (up to Monte Carlo error, and for
    /// [`ExactPruned`](EstimatorId::ExactPruned) its bracket).
    pub const fn is_exact(self) -> bool {
        matches!(
            self,
            EstimatorId::ExactEnumeration | EstimatorId::ExactPermanent | EstimatorId::ExactPruned
        )
    }

    /// Whether it is an upper bound on `I` (which is never above ln|G|, so reports cut
    /// its value there and keep the raw value beside it).
    pub const fn is_upper(self) -> bool {
        matches!(
            self,
            EstimatorId::SandwichUpper | EstimatorId::AnnealedUpper | EstimatorId::PairwiseKlUpper
        )
    }

    /// Its value as a reader quotes it: an interval's side or an upper bound cut to
    /// [0, ln|G|] ([`cut_to_group`]); any other estimate (I^K, whose bias the reports
    /// measure, or an exact one) as computed.
    pub fn cut(self, value: f64, ln_group_order: f64) -> f64 {
        if self.interval_of().is_some() || self.is_upper() {
            cut_to_group(value, ln_group_order)
        } else {
            value
        }
    }

    /// The estimator of which it is one side, where both sides come from the same draws
    /// (the sandwich, the annealed bounds): a report's row of that estimator carries both.
    pub const fn interval_of(self) -> Option<EstimatorKind> {
        match self {
            EstimatorId::SandwichLower | EstimatorId::SandwichUpper => {
                Some(EstimatorKind::Sandwich)
            }
            EstimatorId::AnnealedLower | EstimatorId::AnnealedUpper => {
                Some(EstimatorKind::Annealed)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for EstimatorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EstimatorId {
    type Err = Error;

    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `estimator` and the accepted names.
    fn from_str(s: &str) -> Result<Self> {
        EstimatorId::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = EstimatorId::ALL.iter().map(|e| e.name()).collect();
                Error::invalid(
                    "estimator",
                    s,
                    format!("expected one of {}", names.join(", ")),
                )
            })
    }
}

/// An estimator of `I(g; ω)` for a mean-field posterior.
pub trait MiEstimator: Send + Sync {
    /// Which estimator this is.
    fn id(&self) -> EstimatorId;

    /// Short name used in reports (`infonce`, `exact-enumeration`, …).
    fn name(&self) -> &'static str {
        self.id().name()
    }

    /// The draws it makes: K (where it has one), the number of draws S and the seed (an
    /// estimate on a stabilizer records them).
    fn sampling(&self) -> (Option<usize>, usize, u64);

    /// Estimates `I(g; ω)` for a `q` whose fixed tensors pin no unit, refusing work
    /// beyond `limits`: what each estimator computes.
    ///
    /// # Errors
    ///
    /// As [`estimate_within`](Self::estimate_within).
    fn estimate_unpinned(&self, q: &MeanFieldGaussian, limits: &Limits) -> Result<Estimate>;

    /// Estimates `I(g; ω)` for `q` within `limits`. Where `q`'s fixed tensors pin units,
    /// on their stabilizer (`on_stabilizer`): every estimator alike.
    ///
    /// # Errors
    ///
    /// Architectures the estimator cannot handle and work beyond `limits`, each as a
    /// named [`Error`]. Settings cannot be invalid here: the constructors and setters
    /// refuse bad ones, naming them.
    fn estimate_within(&self, q: &MeanFieldGaussian, limits: &Limits) -> Result<Estimate> {
        let (k, n_samples, seed) = self.sampling();
        match on_stabilizer(q, self.id(), k, n_samples, seed, |r| {
            self.estimate_within(r, limits)
        })? {
            Some(e) => Ok(e),
            None => self.estimate_unpinned(q, limits),
        }
    }

    /// [`estimate_within`](Self::estimate_within) the machine's limits
    /// ([`Limits::default`]).
    ///
    /// # Errors
    ///
    /// As [`estimate_within`](Self::estimate_within).
    fn estimate(&self, q: &MeanFieldGaussian) -> Result<Estimate> {
        self.estimate_within(q, &Limits::default())
    }

    /// The estimated peak memory and single-thread time of [`estimate`](Self::estimate)
    /// on `q` ([`crate::resources`]); `estimate_within` refuses with
    /// [`Error::ResourceLimit`] what exceeds its limits.
    fn cost(&self, q: &MeanFieldGaussian) -> Cost;
}

/// Estimates on the stabilizer of `q`'s fixed tensors when they pin units
/// ([`crate::symmetry::pinned`]): `f` runs on the reduced posterior (every estimator's own
/// `estimate`, which then meets no pins) and its estimate is lifted by ln|G| − ln|S|, with
/// ln|G| of the full group; where no permutation is left, I = ln|G| − ln|S| exactly.
/// `None` when nothing is pinned (the caller estimates on `q` itself).
///
/// # Errors
///
/// Those of `f`, and a reduced spec that does not check (not expected).
pub(crate) fn on_stabilizer(
    q: &MeanFieldGaussian,
    id: EstimatorId,
    k: Option<usize>,
    n_samples: usize,
    seed: u64,
    f: impl FnOnce(&MeanFieldGaussian) -> Result<Estimate>,
) -> Result<Option<Estimate>> {
    Ok(
        on_stabilizer_both(q, id, k, n_samples, seed, |r| f(r).map(|e| (e.clone(), e)))?
            .map(|(e, _)| e),
    )
}

/// The stabilizer of `q`'s pinning fixed tensors ([`crate::symmetry::pinned`]) with the
/// posterior on its space (`None` where no permutation is left); `None` when nothing is
/// pinned.
///
/// # Errors
///
/// A reduced spec or posterior that does not check (not expected).
pub(crate) fn stabilizer_of(
    q: &MeanFieldGaussian,
) -> Result<
    Option<(
        crate::symmetry::pinned::Stabilizer,
        Option<MeanFieldGaussian>,
    )>,
> {
    let Some(space) = q.space().spec_space() else {
        return Ok(None);
    };
    let Some(stab) = crate::symmetry::pinned::Stabilizer::of(space)? else {
        return Ok(None);
    };
    let reduced = match &stab.space {
        Some(reduced) => {
            let gather = |v: &[f64]| stab.gather.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            Some(MeanFieldGaussian::with_transform(
                reduced.clone(),
                gather(q.mu()),
                gather(q.rho()),
                q.transform(),
            )?)
        }
        None => None,
    };
    Ok(Some((stab, reduced)))
}

/// The posterior on the stabilizer of `q`'s pinning fixed tensors (for cost estimates:
/// every estimator's work is done there), or `None` when nothing is pinned or no
/// permutation is left.
pub(crate) fn stabilized(q: &MeanFieldGaussian) -> Option<MeanFieldGaussian> {
    stabilizer_of(q).ok()??.1
}

/// [`on_stabilizer`] for an estimator that gives two estimates from one set of draws
/// (the sandwich's lower and upper bound).
pub(crate) fn on_stabilizer_both(
    q: &MeanFieldGaussian,
    id: EstimatorId,
    k: Option<usize>,
    n_samples: usize,
    seed: u64,
    f: impl FnOnce(&MeanFieldGaussian) -> Result<(Estimate, Estimate)>,
) -> Result<Option<(Estimate, Estimate)>> {
    let Some((stab, reduced)) = stabilizer_of(q)? else {
        return Ok(None);
    };
    let lift = |mut e: Estimate| {
        e.value += stab.ln_offset;
        e.entropy_sym += stab.ln_offset;
        e.ln_cap += stab.ln_offset;
        e.ln_group_order = stab.ln_group_order;
        e.terms.iter_mut().for_each(|t| *t += stab.ln_offset);
        let sum: f64 = e.terms.iter().sum();
        let max = e.terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        e.max_term_share = (sum > 0.0).then(|| max / sum);
        e
    };
    match reduced {
        Some(r) => {
            let (a, b) = f(&r)?;
            Ok(Some((lift(a), lift(b))))
        }
        None => {
            // No permutation left: every g with q(g⁻¹·ω) > 0 fixes ω, for every ω.
            let entropy_q = q.entropy();
            let e = Estimate {
                estimator: id,
                value: stab.ln_offset,
                std_err: (n_samples > 1).then_some(0.0),
                n_samples,
                k,
                seed,
                wall_s: 0.0,
                entropy_q,
                entropy_sym: entropy_q + stab.ln_offset,
                ln_group_order: stab.ln_group_order,
                ln_cap: stab.ln_offset,
                max_term_share: (stab.ln_offset > 0.0).then(|| 1.0 / n_samples.max(1) as f64),
                bracket: None,
                terms: vec![stab.ln_offset; n_samples],
                interval: None,
            };
            let mut upper = e.clone();
            if let Some((_, up)) = id.interval_of().and_then(EstimatorKind::sides) {
                upper.estimator = up;
            }
            Ok(Some((e, upper)))
        }
    }
}

/// Both sides' estimates of an interval estimator, each carrying the [`Interval`] of the
/// two.
pub(crate) fn paired((mut lower, mut upper): (Estimate, Estimate)) -> (Estimate, Estimate) {
    let interval = Interval::of(&lower, &upper);
    upper.interval = Some(interval.clone());
    lower.interval = Some(interval);
    (lower, upper)
}

/// The shared parts of every estimator's cost: `S` terms kept, and per-thread buffers of
/// two weight vectors plus `extra` floats.
pub(crate) fn base_cost(q: &MeanFieldGaussian, n_samples: usize, extra: f64) -> Cost {
    let threads = rayon::current_num_threads() as f64;
    Cost::default()
        .with_bytes(8.0 * (n_samples as f64 + threads * (2.0 * q.n_params() as f64 + extra)))
}

/// `(d, n)`: hidden width and parameters per unit for one hidden layer.
pub(crate) fn unit_shape(q: &MeanFieldGaussian) -> (f64, f64) {
    let d = q
        .space()
        .group()
        .hidden_widths()
        .first()
        .copied()
        .unwrap_or(0) as f64;
    let n = (q.n_params() as f64 / d.max(1.0)).max(1.0);
    (d, n)
}

/// A one-draw estimate of a lower bound on `I(g; ω)` with its reparameterized gradient,
/// the interface through which the trainer maximizes `L + Î` (the symmetrized
/// objective) without knowing which estimator it uses.
pub trait MiGradient: Send + Sync {
    /// Which estimator's term this is.
    fn id(&self) -> EstimatorId;

    /// Short name used in reports.
    fn name(&self) -> &'static str {
        self.id().name()
    }

    /// The largest value one term can take (`ln K` for [`InfoNce`]); a term within 10⁻³
    /// of it is *saturated* and carries no gradient.
    fn ln_cap(&self) -> f64;

    /// The term for the draw `ω = μ + σ ⊙ ε` (any further randomness from `rng`), with
    /// its gradient with respect to μ and σ *added* into `grad_mu` and `grad_sigma`.
    ///
    /// # Errors
    ///
    /// Invalid settings or buffers of the wrong length, as named errors.
    fn term_and_grad(
        &self,
        q: &MeanFieldGaussian,
        eps: &[f64],
        rng: &mut DrawRng,
        grad_mu: &mut [f64],
        grad_sigma: &mut [f64],
    ) -> Result<f64>;

    /// As [`term_and_grad`](Self::term_and_grad), keeping the estimator's buffers in
    /// `scratch` between calls: a training loop passes the same [`GradScratch`] at every
    /// step and the step allocates nothing. Same numbers as `term_and_grad`; the default
    /// ignores `scratch`.
    ///
    /// # Errors
    ///
    /// As [`term_and_grad`](Self::term_and_grad).
    fn term_and_grad_in(
        &self,
        q: &MeanFieldGaussian,
        eps: &[f64],
        rng: &mut DrawRng,
        grad_mu: &mut [f64],
        grad_sigma: &mut [f64],
        scratch: &mut GradScratch,
    ) -> Result<f64> {
        let _ = scratch;
        self.term_and_grad(q, eps, rng, grad_mu, grad_sigma)
    }
}

/// Buffers a [`MiGradient`] keeps between calls ([`MiGradient::term_and_grad_in`]). The
/// caller owns it and starts from `GradScratch::default()`; the estimator fills it on
/// first use and rebuilds it when it finds buffers of another type or shape.
#[derive(Default)]
pub struct GradScratch(Option<Box<dyn std::any::Any + Send>>);

impl std::fmt::Debug for GradScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "GradScratch(filled)"
        } else {
            "GradScratch(empty)"
        })
    }
}

impl GradScratch {
    /// The buffers of type `T`, built by `init` when missing, of another type, or not
    /// `fits` (e.g. built for another architecture).
    ///
    /// # Errors
    ///
    /// Those of `init`.
    pub(crate) fn get<T: std::any::Any + Send>(
        &mut self,
        fits: impl FnOnce(&T) -> bool,
        init: impl FnOnce() -> Result<T>,
    ) -> Result<&mut T> {
        let reuse = self
            .0
            .as_ref()
            .and_then(|b| b.downcast_ref::<T>())
            .is_some_and(fits);
        if !reuse {
            self.0 = Some(Box::new(init()?));
        }
        Ok(self
            .0
            .as_mut()
            .and_then(|b| b.downcast_mut::<T>())
            .expect("just stored a T"))
    }
}

/// Streaming `ln Σ exp(x_i)` without storing the terms.
#[derive(Clone, Copy, Debug)]
pub struct LnSumExp {
    max: f64,
    sum: f64,
}

impl Default for LnSumExp {
    fn default() -> Self {
        LnSumExp {
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }
}

impl LnSumExp {
    /// Adds `exp(x)` to the sum.
    #[inline]
    pub fn push(&mut self, x: f64) {
        if x == f64::NEG_INFINITY {
            return;
        }
        if x <= self.max {
            self.sum += (x - self.max).exp();
        } else if x.is_finite() || self.max == f64::NEG_INFINITY {
            self.sum = self.sum * (self.max - x).exp() + 1.0;
            self.max = x;
        } else {
            // x = +inf or NaN: propagate.
            self.max = x;
            self.sum = 1.0;
        }
    }

    /// Adds `exp(x)` for every `x` in `xs` (overwritten as scratch): one maximum and one
    /// vectorized pass of [`crate::vmath::exp`] for the block, then one rescaling to
    /// merge it. The sum equals that of pushing the values one by one up to rounding
    /// (the exponentials are those of `vmath`, and the block is summed first).
    pub fn push_all(&mut self, xs: &mut [f64]) {
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return;
        }
        if !max.is_finite() || xs.iter().any(|x| x.is_nan()) {
            // +∞ or NaN: the one-by-one rules propagate them.
            xs.iter().for_each(|&x| self.push(x));
            return;
        }
        crate::linalg::with_avx2(
            #[inline(always)]
            || {
                for x in xs.iter_mut() {
                    *x = crate::vmath::exp(*x - max);
                }
            },
        );
        let sum: f64 = xs.iter().sum();
        self.merge(LnSumExp { max, sum });
    }

    /// Adds the terms summed in `other`.
    pub fn merge(&mut self, other: LnSumExp) {
        if other.max == f64::NEG_INFINITY || other.sum == 0.0 {
            return;
        }
        if self.max == f64::NEG_INFINITY || self.sum == 0.0 {
            *self = other;
        } else if !(other.max.is_finite() && self.max.is_finite()) {
            // +∞ or NaN on either side: as pushing them would.
            self.push(other.max);
        } else if other.max <= self.max {
            self.sum += other.sum * (other.max - self.max).exp();
        } else {
            self.sum = self.sum * (self.max - other.max).exp() + other.sum;
            self.max = other.max;
        }
    }

    /// `ln Σ exp(x_i)` (−∞ for no terms).
    #[inline]
    pub fn value(&self) -> f64 {
        if self.sum == 0.0 {
            f64::NEG_INFINITY
        } else {
            self.max + self.sum.ln()
        }
    }
}

/// `ln Σ exp(x_i)` of a slice.
pub fn ln_sum_exp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || !max.is_finite() {
        return max;
    }
    max + xs.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// The one check that a weight-draw count S is at least 1.
pub(crate) fn check_samples(n_samples: usize) -> Result<()> {
    if n_samples == 0 {
        return Err(Error::invalid(
            "samples",
            0,
            "need at least one weight draw",
        ));
    }
    Ok(())
}

/// Runs `term(s, rng, workspace)` for draws `s = 0..n` in parallel, each with its own
/// generator `stream(seed, s)`, and returns the terms in draw order.
pub(crate) fn per_draw_terms<T, W, I, F>(n: usize, seed: u64, init: I, term: F) -> Vec<T>
where
    T: Send,
    W: Send,
    I: Fn() -> W + Sync + Send,
    F: Fn(&mut DrawRng, &mut W) -> T + Sync + Send,
{
    (0..n)
        .into_par_iter()
        .map_init(&init, |ws, s| term(&mut stream(seed, s as u64), ws))
        .collect()
}

/// Mean, standard error and largest-term share of the per-draw terms, reduced
/// sequentially so the bits do not depend on the thread count.
pub(crate) struct Summary {
    pub mean: f64,
    pub std_err: Option<f64>,
    pub max_term_share: Option<f64>,
}

pub(crate) fn summarize(terms: &[f64]) -> Summary {
    let n = terms.len() as f64;
    let sum: f64 = terms.iter().sum();
    let mean = sum / n;
    let std_err = (terms.len() > 1).then(|| {
        let var = terms.iter().map(|t| (t - mean) * (t - mean)).sum::<f64>() / (n - 1.0);
        (var / n).sqrt()
    });
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let max_term_share = (sum > 0.0).then(|| max / sum);
    Summary {
        mean,
        std_err,
        max_term_share,
    }
}

/// Assembles an [`Estimate`] from per-draw terms.
pub(crate) struct EstimateParts {
    pub estimator: EstimatorId,
    pub k: Option<usize>,
    pub seed: u64,
    pub ln_cap: f64,
    pub ln_group_order: f64,
}

impl EstimateParts {
    pub(crate) fn finish(
        self,
        q: &MeanFieldGaussian,
        terms: Vec<f64>,
        started: Instant,
    ) -> Estimate {
        let s = summarize(&terms);
        let entropy_q = q.entropy();
        Estimate {
            estimator: self.estimator,
            value: s.mean,
            std_err: s.std_err,
            n_samples: terms.len(),
            k: self.k,
            seed: self.seed,
            wall_s: started.elapsed().as_secs_f64(),
            entropy_q,
            entropy_sym: s.mean + entropy_q,
            ln_group_order: self.ln_group_order,
            ln_cap: self.ln_cap,
            max_term_share: s.max_term_share,
            bracket: None,
            terms,
            interval: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimator_ids_have_one_spelling_everywhere() {
        for id in EstimatorId::ALL {
            assert_eq!(id.name().parse::<EstimatorId>().unwrap(), id);
            assert_eq!(id.to_string(), id.name());
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{}\"", id.name()));
            assert_eq!(serde_json::from_str::<EstimatorId>(&json).unwrap(), id);
        }
        let e = "magic".parse::<EstimatorId>().unwrap_err().to_string();
        assert!(
            e.contains("estimator") && e.contains("sandwich-lower"),
            "{e}"
        );
        // Each estimator reports its own id (the demo posterior needs `train`).
        #[cfg(feature = "train")]
        {
            let q =
                crate::demo::demo_posterior(&[2, 3, 1], crate::weights::Activation::Relu, 0, 0.0)
                    .unwrap();
            let ests: [(&dyn MiEstimator, EstimatorId); 4] = [
                (
                    &InfoNce::new(2).unwrap().samples(2).unwrap(),
                    EstimatorId::InfoNce,
                ),
                (
                    &ExactEnumeration::new().samples(2).unwrap(),
                    EstimatorId::ExactEnumeration,
                ),
                (
                    &ExactPermanent::new().samples(2).unwrap(),
                    EstimatorId::ExactPermanent,
                ),
                (&PairwiseBound::Kl, EstimatorId::PairwiseKlUpper),
            ];
            for (est, id) in ests {
                assert_eq!(est.estimate(&q).unwrap().estimator, id);
            }
        }
    }

    #[test]
    fn bad_settings_are_refused_at_construction_and_named() {
        let bad: [(Result<()>, &str); 9] = [
            (InfoNce::new(0).map(drop), "`k`"),
            (
                InfoNce::new(4).and_then(|e| e.samples(0)).map(drop),
                "`samples`",
            ),
            (ExactEnumeration::new().samples(0).map(drop), "`samples`"),
            (ExactPermanent::new().samples(0).map(drop), "`samples`"),
            (ExactPruned::new().margin(f64::NAN).map(drop), "`margin`"),
            (ExactPruned::new().margin(0.0).map(drop), "`margin`"),
            (Sandwich::new(1).map(drop), "`k`"),
            (
                Sandwich::new(8).and_then(|s| s.temperature(0.0)).map(drop),
                "`temperature`",
            ),
            (Sandwich::new(8).and_then(|s| s.mix(1.5)).map(drop), "`mix`"),
        ];
        for (i, (result, field)) in bad.into_iter().enumerate() {
            let e = result.unwrap_err().to_string();
            assert!(e.contains(field), "case {i}: {e}");
        }
        // The boundary values are accepted.
        InfoNce::new(1).unwrap().samples(1).unwrap();
        let sw = Sandwich::new(2).unwrap().temperature(1e-3).unwrap();
        sw.mix(0.0).unwrap().mix(1.0).unwrap();
    }

    #[test]
    fn blocks_and_merges_match_the_slice_version() {
        use rand::RngExt;
        let mut rng = stream(21, 0);
        for case in 0..200 {
            let n = rng.random_range(1..300);
            let spread = [1.0, 50.0, 800.0][case % 3];
            let xs: Vec<f64> = (0..n).map(|_| rng.random_range(-spread..spread)).collect();
            let want = ln_sum_exp(&xs);
            // Blocks of random sizes, each pushed at once, merged in order.
            let (mut acc, mut i) = (LnSumExp::default(), 0);
            while i < n {
                let j = (i + rng.random_range(1..40)).min(n);
                let mut part = LnSumExp::default();
                part.push_all(&mut xs[i..j].to_vec());
                acc.merge(part);
                i = j;
            }
            let got = acc.value();
            assert!(
                (got - want).abs() <= 1e-13 * want.abs().max(1.0),
                "{got} vs {want}"
            );
        }
        let value = |xs: &[f64]| {
            let mut l = LnSumExp::default();
            l.push_all(&mut xs.to_vec());
            l.value()
        };
        assert_eq!(value(&[]), f64::NEG_INFINITY);
        assert_eq!(
            value(&[f64::NEG_INFINITY, f64::NEG_INFINITY]),
            f64::NEG_INFINITY
        );
        assert_eq!(value(&[1.0, f64::INFINITY]), f64::INFINITY);
        assert!(value(&[1.0, f64::NAN]).is_nan());
        let mut l = LnSumExp::default();
        l.push(0.0);
        l.merge(LnSumExp::default());
        assert_eq!(l.value(), 0.0);
    }

    #[test]
    fn streaming_ln_sum_exp_matches_slice_version() {
        let xs = [
            f64::NEG_INFINITY,
            -1000.0,
            -3.0,
            2.5,
            700.0,
            699.0,
            -1e300,
            f64::NEG_INFINITY,
        ];
        let mut acc = LnSumExp::default();
        xs.iter().for_each(|&x| acc.push(x));
        let expect = 700.0 + (1.0 + (-1f64).exp()).ln();
        assert!((acc.value() - expect).abs() < 1e-12);
        assert!((ln_sum_exp(&xs) - expect).abs() < 1e-12);
        assert_eq!(LnSumExp::default().value(), f64::NEG_INFINITY);
        let mut one = LnSumExp::default();
        one.push(-5.25);
        assert_eq!(one.value(), -5.25);
    }
}
