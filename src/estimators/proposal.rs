//! The proposal `r(g | ω)` over hidden-unit permutations (issue 7 item 1), used by the
//! [`Sandwich`](super::Sandwich) bounds.
//!
//! Hidden layers are visited in order `h = 0, 1, …`. For layer `h`, with the earlier layers'
//! permutations `τ_0..τ_{h−1}` already chosen, the layer's unit cost matrix
//! `C_h[i, j] = ln q_i(θ_j)` compares q's unit `i` with ω's unit `j` whose incoming columns
//! are relabelled by `τ_{h−1}` (its incoming row, its bias and — last layer only — its
//! outgoing column; [`UnitCost::for_layer`]). Then `τ_h` is drawn row by row: row `i`, in a
//! fixed order, picks a column `j` among those left with probability
//! `softmax_j(C_h[i, j] / T)`. Every weight belongs to exactly one layer's units, so
//! `Σ_h Σ_i C_h[i, τ_h(i)] = ln q(τ⁻¹·ω) − ln q_rest`. With one hidden layer this is the
//! softmax approximation of the permutation posterior `p(τ | ω) ∝ e^{S(τ)}`; for deeper
//! nets each layer sees its neighbours below as already chosen and ignores the
//! not-yet-chosen layers above, which costs proposal quality, never validity.
//!
//! `ln r_T(τ | ω)` is the exact sum of the chosen log-probabilities (recomputed for any
//! given τ by the same sequence), and the proposal mixes in the uniform distribution per
//! group element: `r = (1 − λ) r_T + λ / |G|`. `r_T` already has full support (every
//! row's softmax over finite logits is positive); λ > 0 additionally caps the importance
//! weights. Mixing per element rather than per row keeps `r(id | ω) ≥ 1 − λ` when `r_T`
//! is concentrated.
//!
//! **Equivariance.** Relabelling ω by `g` permutes the columns of `C_0` by `g_0`; a draw
//! `τ_0` on `ω` corresponds to `g_0 ∘ τ_0` on `g·ω` with the same probability, after which
//! `C_1` of `g·ω` given `g_0 ∘ τ_0` is `C_1` of ω given `τ_0` with columns permuted by
//! `g_1`, and so on up the layers: `r(g ∘ τ | g·ω) = r(τ | ω)`, which is what the
//! identity-only form of the lower bound needs.

use rand::RngExt;

use crate::estimators::LnSumExp;
use crate::estimators::unit_cost::UnitCost;
use crate::posterior::MeanFieldGaussian;
use crate::rng::DrawRng;
use crate::symmetry::ln_factorial;

/// Buffers of the row-by-row softmax proposal on one `d × d` cost matrix.
#[derive(Clone, Debug)]
pub(crate) struct ProposalWorkspace {
    left: Vec<usize>,
    logits: Vec<f64>,
    /// `exp` of `logits` (the probabilities), after [`row_ln_probs`](Self::row_ln_probs).
    probs: Vec<f64>,
}

/// `ln Σ exp(x_i)` with the vectorized exponential ([`LnSumExp::push_all`]); `xs` is
/// overwritten.
fn ln_sum_exp_of(xs: &mut [f64]) -> f64 {
    let mut acc = LnSumExp::default();
    acc.push_all(xs);
    acc.value()
}

/// `ln Σ exp(x_i)` with the maximum and the sum in eight fixed lanes (vectorized, the
/// same bits at any vector width); `xs` is overwritten. −∞ for an empty or all −∞
/// slice; NaN propagates.
#[inline(always)]
fn lanes_ln_sum_exp(xs: &mut [f64]) -> f64 {
    const LANES: usize = 8;
    let mut m = [f64::NEG_INFINITY; LANES];
    for (k, &x) in xs.iter().enumerate() {
        m[k % LANES] = m[k % LANES].max(x);
    }
    let max = m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || xs.iter().any(|x| x.is_nan()) {
        return if xs.iter().any(|x| x.is_nan()) {
            f64::NAN
        } else {
            max
        };
    }
    let mut s = [0.0; LANES];
    for (k, x) in xs.iter_mut().enumerate() {
        *x = crate::vmath::exp(*x - max);
        s[k % LANES] += *x;
    }
    max + crate::vmath::ln(s.iter().sum::<f64>())
}

impl ProposalWorkspace {
    pub(crate) fn new(d: usize) -> Self {
        ProposalWorkspace {
            left: Vec::with_capacity(d),
            logits: Vec::with_capacity(d),
            probs: Vec::with_capacity(d),
        }
    }

    /// Softmax log-probabilities of choosing each remaining column for row `i`, and the
    /// probabilities themselves (both vectorized).
    fn row_ln_probs(&mut self, logits: &[f64], d: usize, i: usize) {
        self.logits.clear();
        self.logits
            .extend(self.left.iter().map(|&j| logits[i * d + j]));
        self.probs.clear();
        self.probs.extend_from_slice(&self.logits);
        let lse = ln_sum_exp_of(&mut self.probs);
        self.logits.iter_mut().for_each(|l| *l -= lse);
        self.probs.clear();
        self.probs.extend_from_slice(&self.logits);
        crate::vmath::exp_in_place(&mut self.probs);
    }

    /// `(S(τ), ln r_T(τ))` of a given assignment: `S = Σ_i C[i, τ(i)]` and the sum of the
    /// row-by-row softmax log-probabilities of `logits`.
    pub(crate) fn soft_of(
        &mut self,
        c: &[f64],
        logits: &[f64],
        d: usize,
        tau: &[usize],
    ) -> (f64, f64) {
        self.left.clear();
        self.left.extend(0..d);
        let (mut s, mut total) = (0.0, 0.0);
        for (i, &j) in tau.iter().enumerate() {
            self.row_ln_probs(logits, d, i);
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

    /// Adds `coef · ∂ ln r_T(τ) / ∂Λ` into `g` (`d × d`) for the logits `Λ`: row `i`
    /// contributes `δ_{j, τ(i)} − softmax_i(j)` over the columns `j` still left at row `i`.
    pub(crate) fn add_soft_grad(
        &mut self,
        logits: &[f64],
        d: usize,
        tau: &[usize],
        coef: f64,
        g: &mut [f64],
    ) {
        self.left.clear();
        self.left.extend(0..d);
        for (i, &j) in tau.iter().enumerate() {
            self.row_ln_probs(logits, d, i);
            for (&col, &p) in self.left.iter().zip(&self.probs) {
                g[i * d + col] -= coef * p;
            }
            g[i * d + j] += coef;
            let pos = self
                .left
                .iter()
                .position(|&x| x == j)
                .expect("a permutation");
            self.left.remove(pos);
        }
    }

    /// Draws `τ` row by row from the softmax of `logits` into `tau`; returns
    /// `(S(τ), ln r_T(τ))` as [`soft_of`](Self::soft_of) would, accumulated on the way.
    pub(crate) fn sample_soft(
        &mut self,
        c: &[f64],
        logits: &[f64],
        d: usize,
        rng: &mut DrawRng,
        tau: &mut [usize],
    ) -> (f64, f64) {
        self.left.clear();
        self.left.extend(0..d);
        let (mut s, mut total) = (0.0, 0.0);
        for (i, slot) in tau.iter_mut().enumerate() {
            self.row_ln_probs(logits, d, i);
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut pos = self.left.len() - 1;
            for (k, p) in self.probs.iter().enumerate() {
                acc += p;
                if u < acc {
                    pos = k;
                    break;
                }
            }
            total += self.logits[pos];
            *slot = self.left.remove(pos);
            s += c[i * d + *slot];
        }
        (s, total)
    }
}

/// Writes the proposal's logits `Λ = C/T + v` into `logits`, with column offsets `v`
/// from `iters` rounds of log-space Sinkhorn balancing of `exp(C/T)` (`iters = 0`: plain
/// `C/T`). Row offsets do not change a row's softmax; column offsets move probability
/// toward columns that no other row claims, which the greedy row-by-row draw cannot see
/// otherwise. Balancing is equivariant (permuting C's columns permutes `v`), so the
/// proposal stays equivariant.
///
/// `tape` receives the iterates `u^1..u^n` and `v^0 = 0..v^n` (`(2n + 1)·d` values) for
/// [`balanced_logits_backward`].
pub(crate) fn balanced_logits(
    c: &[f64],
    d: usize,
    t: f64,
    iters: usize,
    tape: &mut Vec<f64>,
    logits: &mut [f64],
) {
    logits.iter_mut().zip(c).for_each(|(l, &x)| *l = x / t);
    tape.clear();
    if iters == 0 || d < 2 {
        return;
    }
    tape.resize((2 * iters + 1) * d, 0.0);
    // Row and column log-sum-exps as passes over whole rows (contiguous, vectorized):
    // per column, a running maximum and then a running sum over the rows in order.
    let (mut max, mut sum) = (vec![0.0; d], vec![0.0; d]);
    for it in 0..iters {
        // Layout: v^0 | u^1 v^1 | u^2 v^2 | …
        let (done, rest) = tape.split_at_mut((2 * it + 1) * d);
        let v_prev = &done[2 * it * d..];
        let (u, v) = rest[..2 * d].split_at_mut(d);
        crate::linalg::with_avx2(
            #[inline(always)]
            || {
                // u_i = −ln Σ_j exp(Λ_ij + v_j).
                for (ui, row) in u.iter_mut().zip(logits.chunks_exact(d)) {
                    for ((m, &l), &vp) in max.iter_mut().zip(row).zip(v_prev) {
                        *m = l + vp;
                    }
                    *ui = -lanes_ln_sum_exp(&mut max);
                }
                // v_j = −ln Σ_i exp(Λ_ij + u_i).
                max.fill(f64::NEG_INFINITY);
                for (row, &ui) in logits.chunks_exact(d).zip(&*u) {
                    for (m, &l) in max.iter_mut().zip(row) {
                        *m = m.max(l + ui);
                    }
                }
                sum.fill(0.0);
                for (row, &ui) in logits.chunks_exact(d).zip(&*u) {
                    for ((s, &l), &m) in sum.iter_mut().zip(row).zip(&max) {
                        *s += crate::vmath::exp(l + ui - m);
                    }
                }
                for ((vj, &m), &s) in v.iter_mut().zip(&max).zip(&sum) {
                    *vj = if m == f64::NEG_INFINITY {
                        f64::INFINITY
                    } else {
                        -(m + crate::vmath::ln(s))
                    };
                }
            },
        );
    }
    let v = &tape[2 * iters * d..];
    for row in logits.chunks_exact_mut(d) {
        row.iter_mut().zip(v).for_each(|(l, vj)| *l += vj);
    }
}

/// Back-propagates `g_logits = ∂f/∂Λ` through [`balanced_logits`] (unrolled Sinkhorn
/// iterations recorded in `tape`) and *adds* `∂f/∂C` into `g_c`. `logits` are the
/// forward output `Λ`.
///
/// With `p = exp(L_ij + u_i + v_j)` (the softmax each update normalizes),
/// `v_j = −LSE_i(L_ij + u_i)` gives `∂v_j/∂L_ij = ∂v_j/∂u_i = −p`, and likewise for `u`.
pub(crate) fn balanced_logits_backward(
    logits: &[f64],
    d: usize,
    t: f64,
    iters: usize,
    tape: &[f64],
    g_logits: &[f64],
    g_c: &mut [f64],
) {
    if iters == 0 || d < 2 {
        g_c.iter_mut()
            .zip(g_logits)
            .for_each(|(g, gl)| *g += gl / t);
        return;
    }
    let v_final = &tape[2 * iters * d..];
    // L = Λ − v^n.
    let l: Vec<f64> = logits
        .chunks_exact(d)
        .flat_map(|row| row.iter().zip(v_final).map(|(x, v)| x - v))
        .collect();
    let mut g_l = g_logits.to_vec();
    let mut g_v: Vec<f64> = (0..d)
        .map(|j| (0..d).map(|i| g_logits[i * d + j]).sum())
        .collect();
    let mut g_u = vec![0.0; d];
    for it in (0..iters).rev() {
        let v_prev = &tape[2 * it * d..(2 * it + 1) * d];
        let u = &tape[(2 * it + 1) * d..(2 * it + 2) * d];
        let v = &tape[(2 * it + 2) * d..(2 * it + 3) * d];
        g_u.iter_mut().for_each(|g| *g = 0.0);
        for j in 0..d {
            if g_v[j] == 0.0 {
                continue;
            }
            for i in 0..d {
                let p = (l[i * d + j] + u[i] + v[j]).exp();
                g_l[i * d + j] -= g_v[j] * p;
                g_u[i] -= g_v[j] * p;
            }
        }
        g_v.iter_mut().for_each(|g| *g = 0.0);
        for i in 0..d {
            if g_u[i] == 0.0 {
                continue;
            }
            for j in 0..d {
                let p = (l[i * d + j] + v_prev[j] + u[i]).exp();
                g_l[i * d + j] -= g_u[i] * p;
                g_v[j] -= g_u[i] * p;
            }
        }
    }
    g_c.iter_mut().zip(&g_l).for_each(|(g, gl)| *g += gl / t);
}

/// `ln r = ln((1 − λ) r_T + λ/|G|)` from `ln r_T`.
pub(crate) fn mixture(ln_soft: f64, ln_order: f64, mix: f64) -> f64 {
    let mut acc = LnSumExp::default();
    if mix < 1.0 {
        acc.push((1.0 - mix).ln() + ln_soft);
    }
    acc.push(mix.ln() - ln_order);
    acc.value()
}

/// `∂ ln r / ∂ ln r_T = (1 − λ) r_T / r`.
pub(crate) fn mixture_slope(ln_soft: f64, ln_r: f64, mix: f64) -> f64 {
    if mix >= 1.0 {
        0.0
    } else {
        ((1.0 - mix).ln() + ln_soft - ln_r).exp()
    }
}

/// The layer-by-layer proposal of a posterior with any number of hidden layers.
#[derive(Clone, Debug)]
pub(crate) struct GroupProposal {
    layers: Vec<UnitCost>,
    ln_order: f64,
    temperature: f64,
    mix: f64,
    balance: usize,
}

/// Per-draw buffers of a [`GroupProposal`]; `taus[h]` holds the last element visited.
#[derive(Clone, Debug)]
pub(crate) struct GroupWorkspace {
    pub(crate) taus: Vec<Vec<usize>>,
    /// `C_h` of the last element visited (`C_0` does not depend on it).
    pub(crate) costs: Vec<Vec<f64>>,
    /// The proposal's logits for `C_h` ([`balanced_logits`]).
    pub(crate) logits: Vec<Vec<f64>>,
    scratch: Vec<f64>,
    pub(crate) thetas: Vec<Vec<f64>>,
    index: Vec<usize>,
    rows: ProposalWorkspace,
    /// `filled_after[h]`: the earlier permutations (`τ_{h−1}` for an MLP; those of the
    /// layer's [`UnitCost::deps`], one after another) for which `costs[h]` and
    /// `logits[h]` hold (for this ω), or `None`. A concentrated proposal draws the same
    /// lower permutations again and again; building `C_h` and balancing it was nearly all
    /// of a draw's time.
    filled_after: Vec<Option<Vec<usize>>>,
}

impl GroupProposal {
    /// `balance`: Sinkhorn rounds of [`balanced_logits`] (0 for the plain softmax).
    pub(crate) fn new(q: &MeanFieldGaussian, temperature: f64, mix: f64, balance: usize) -> Self {
        let layers: Vec<UnitCost> = (0..q.space().n_perms())
            .map(|h| UnitCost::for_layer(q, h))
            .collect();
        let ln_order = layers.iter().map(|l| ln_factorial(l.width())).sum();
        GroupProposal {
            layers,
            ln_order,
            temperature,
            mix,
            balance,
        }
    }

    /// `ln|G|`.
    pub(crate) fn ln_order(&self) -> f64 {
        self.ln_order
    }

    /// The one-hidden-layer cost (layer 0).
    pub(crate) fn first(&self) -> &UnitCost {
        &self.layers[0]
    }

    pub(crate) fn workspace(&self) -> GroupWorkspace {
        let widest = self.layers.iter().map(|l| l.width()).max().unwrap_or(0);
        GroupWorkspace {
            taus: self
                .layers
                .iter()
                .map(|l| (0..l.width()).collect())
                .collect(),
            costs: self
                .layers
                .iter()
                .map(|l| vec![0.0; l.width() * l.width()])
                .collect(),
            logits: self
                .layers
                .iter()
                .map(|l| vec![0.0; l.width() * l.width()])
                .collect(),
            scratch: Vec::new(),
            thetas: self
                .layers
                .iter()
                .map(|l| vec![0.0; l.width() * l.n_per_unit()])
                .collect(),
            index: Vec::new(),
            rows: ProposalWorkspace::new(widest),
            filled_after: vec![None; self.layers.len()],
        }
    }

    /// Starts a new weight draw: fills `C_0` (which no permutation changes).
    pub(crate) fn begin(&self, omega: &[f64], ws: &mut GroupWorkspace) {
        ws.filled_after.iter_mut().for_each(|f| *f = None);
        self.layers[0].fill_in_place(omega, &mut ws.thetas[0], &mut ws.costs[0]);
        self.fill_logits(0, ws);
    }

    fn fill_logits(&self, h: usize, ws: &mut GroupWorkspace) {
        let d = self.layers[h].width();
        balanced_logits(
            &ws.costs[h],
            d,
            self.temperature,
            self.balance,
            &mut ws.scratch,
            &mut ws.logits[h],
        );
    }

    /// Fills `C_h` and its logits for `h ≥ 1` given `ws.taus[h − 1]`, unless they already
    /// hold for that `τ_{h−1}` (and this ω: [`begin`](Self::begin) forgets them).
    fn fill_layer(&self, omega: &[f64], h: usize, ws: &mut GroupWorkspace) {
        let GroupWorkspace {
            taus,
            costs,
            thetas,
            index,
            filled_after,
            ..
        } = ws;
        let deps = self.layers[h].deps();
        let key = deps.iter().flat_map(|&e| taus[e].iter().copied());
        if filled_after[h]
            .as_deref()
            .is_some_and(|f| f.iter().copied().eq(key.clone()))
        {
            return;
        }
        let f = filled_after[h].get_or_insert_with(Vec::new);
        f.clear();
        f.extend(key);
        self.layers[h].fill_after(omega, taus, index, &mut thetas[h], &mut costs[h]);
        self.fill_logits(h, ws);
    }

    /// `(S(τ), ln r_T(τ), ln r(τ))` of the element in `ws.taus` (after
    /// [`begin`](Self::begin) for this ω), with `S(τ) = ln q(τ⁻¹·ω) − ln q_rest(ω)`.
    pub(crate) fn evaluate(&self, omega: &[f64], ws: &mut GroupWorkspace) -> (f64, f64, f64) {
        let (mut s, mut soft) = (0.0, 0.0);
        for h in 0..self.layers.len() {
            if h > 0 {
                self.fill_layer(omega, h, ws);
            }
            let d = self.layers[h].width();
            let (sh, rh) = ws.rows.soft_of(&ws.costs[h], &ws.logits[h], d, &ws.taus[h]);
            s += sh;
            soft += rh;
        }
        (s, soft, mixture(soft, self.ln_order, self.mix))
    }

    /// Sets `ws.taus` to the identity and evaluates it.
    pub(crate) fn identity(&self, omega: &[f64], ws: &mut GroupWorkspace) -> (f64, f64, f64) {
        for tau in &mut ws.taus {
            tau.iter_mut().enumerate().for_each(|(i, t)| *t = i);
        }
        self.evaluate(omega, ws)
    }

    /// Draws `τ ~ r(· | ω)` into `ws.taus` and evaluates it.
    pub(crate) fn draw(
        &self,
        omega: &[f64],
        ws: &mut GroupWorkspace,
        rng: &mut DrawRng,
    ) -> (f64, f64, f64) {
        if rng.random::<f64>() < self.mix {
            for tau in &mut ws.taus {
                tau.iter_mut().enumerate().for_each(|(i, t)| *t = i);
                crate::rng::shuffle(tau, rng);
            }
            return self.evaluate(omega, ws);
        }
        let (mut s, mut soft) = (0.0, 0.0);
        for h in 0..self.layers.len() {
            if h > 0 {
                self.fill_layer(omega, h, ws);
            }
            let d = self.layers[h].width();
            let GroupWorkspace {
                taus,
                costs,
                logits,
                rows,
                ..
            } = ws;
            let (sh, rh) = rows.sample_soft(&costs[h], &logits[h], d, rng, &mut taus[h]);
            s += sh;
            soft += rh;
        }
        (s, soft, mixture(soft, self.ln_order, self.mix))
    }

    /// Adds `coef · ∂ ln r_T(τ)/∂Λ_0` for the element in `ws.taus` into `g_logits`
    /// (one hidden layer).
    pub(crate) fn add_soft_grad(&self, ws: &mut GroupWorkspace, coef: f64, g_logits: &mut [f64]) {
        let d = self.layers[0].width();
        let GroupWorkspace {
            taus, logits, rows, ..
        } = ws;
        rows.add_soft_grad(&logits[0], d, &taus[0], coef, g_logits);
    }

    /// Adds `∂f/∂C_0` into `m` given `g_logits = ∂f/∂Λ_0`, through the balancing of the
    /// last [`begin`](Self::begin) (one hidden layer).
    pub(crate) fn logits_backward(&self, ws: &GroupWorkspace, g_logits: &[f64], m: &mut [f64]) {
        let d = self.layers[0].width();
        balanced_logits_backward(
            &ws.logits[0],
            d,
            self.temperature,
            self.balance,
            &ws.scratch,
            g_logits,
            m,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::symmetry::{ActionMap, Group, GroupElement};
    use crate::weights::Arch;

    /// After balancing, the last row offsets `u` and the column offsets `v` make every
    /// column of `exp(C/T + u_i + v_j)` sum to 1 (checked with the standard library's
    /// `exp`), on a matrix with entries thousands of nats apart.
    #[test]
    fn balancing_normalizes_the_columns() {
        let mut rng = stream(31, 0);
        for (d, t) in [(2usize, 1.0), (7, 0.5), (40, 2.0)] {
            let c: Vec<f64> = (0..d * d)
                .map(|k| {
                    if k % (d + 1) == 0 {
                        0.0
                    } else {
                        -rng.random_range(0.0..3000.0)
                    }
                })
                .collect();
            let iters = 5;
            let (mut tape, mut logits) = (Vec::new(), vec![0.0; d * d]);
            balanced_logits(&c, d, t, iters, &mut tape, &mut logits);
            let u = &tape[(2 * iters - 1) * d..2 * iters * d];
            for j in 0..d {
                let col: f64 = (0..d).map(|i| (logits[i * d + j] + u[i]).exp()).sum();
                assert!((col - 1.0).abs() < 1e-12, "d {d}, column {j}: {col}");
            }
        }
    }

    fn posterior(widths: Vec<usize>, bias: bool, seed: u64) -> MeanFieldGaussian {
        let arch = Arch::builder(widths).bias(bias).check().unwrap();
        let mut rng = stream(seed, 0);
        let p = arch.n_params();
        let mu = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
        let sigma = (0..p).map(|_| rng.random_range(0.3..1.0)).collect();
        MeanFieldGaussian::from_mu_sigma(arch, mu, sigma).unwrap()
    }

    /// Every element of a small two- and three-hidden-layer group: probabilities sum to
    /// one, `S(τ)` is `ln q(τ⁻¹·ω) − ln q_rest` computed through the action map, and
    /// draw frequencies match `r`.
    #[test]
    fn layered_proposal_is_a_distribution_with_exact_log_density() {
        for (widths, bias, balance) in [
            (vec![2, 4, 1], true, 0),
            (vec![2, 4, 1], true, 10),
            (vec![2, 3, 3, 1], true, 0),
            (vec![3, 2, 3, 2], false, 5),
            (vec![2, 2, 3, 2, 1], true, 0),
        ] {
            let q = posterior(widths, bias, 5);
            let prop = GroupProposal::new(&q, 0.8, 0.1, balance);
            let mut ws = prop.workspace();
            let mut rng = stream(9, 0);
            let omega = q.sample(&mut rng);
            prop.begin(&omega, &mut ws);
            let (s_id, _, _) = prop.identity(&omega, &mut ws);
            let ln_q = q.ln_q(&omega).unwrap();
            let group = Group::of(q.arch().unwrap());
            let mut total = 0.0;
            let mut probs = std::collections::HashMap::new();
            group.elements(10_000).unwrap().for_each_ref(|g| {
                for (h, tau) in ws.taus.iter_mut().enumerate() {
                    tau.copy_from_slice(g.layer(h).forward());
                }
                let (s, _, ln_r) = prop.evaluate(&omega, &mut ws);
                let direct = q
                    .ln_q_inverse_permuted(&omega, &ActionMap::new(q.arch().unwrap(), g))
                    .unwrap();
                assert!(
                    ((s - s_id) - (direct - ln_q)).abs() < 1e-10 * direct.abs().max(1.0),
                    "{} vs {}",
                    s - s_id,
                    direct - ln_q
                );
                total += ln_r.exp();
                probs.insert(ws.taus.clone(), ln_r.exp());
            });
            assert!((total - 1.0).abs() < 1e-12, "total {total}");
            let n = 40_000;
            let mut counts = std::collections::HashMap::new();
            for _ in 0..n {
                let (_, _, ln_r) = prop.draw(&omega, &mut ws, &mut rng);
                assert!((ln_r.exp() - probs[&ws.taus]).abs() < 1e-12);
                *counts.entry(ws.taus.clone()).or_insert(0usize) += 1;
            }
            for (taus, p) in &probs {
                let f = *counts.get(taus).unwrap_or(&0) as f64 / n as f64;
                let sd = (p * (1.0 - p) / n as f64).sqrt();
                assert!((f - p).abs() < 5.0 * sd + 1e-4, "{p} vs {f}");
            }
        }
    }

    /// A workspace that has seen other elements (and kept their upper-layer costs) gives
    /// the bits of a fresh one, for draws and evaluations alike, across weight draws.
    #[test]
    fn kept_layer_costs_give_the_bits_of_fresh_ones() {
        for (widths, balance) in [(vec![2, 3, 3, 1], 0), (vec![3, 2, 3, 2, 2], 4)] {
            let q = posterior(widths, true, 6);
            // Concentrated and diffuse: repeats and changes of the lower permutations.
            for temperature in [0.05, 5.0] {
                let prop = GroupProposal::new(&q, temperature, 0.2, balance);
                let mut ws = prop.workspace();
                let mut rng = stream(8, 0);
                for _ in 0..3 {
                    let omega = q.sample(&mut rng);
                    prop.begin(&omega, &mut ws);
                    for step in 0..30 {
                        let got = if step % 3 == 0 {
                            prop.identity(&omega, &mut ws)
                        } else {
                            prop.draw(&omega, &mut ws, &mut rng)
                        };
                        let mut fresh = prop.workspace();
                        prop.begin(&omega, &mut fresh);
                        fresh.taus.clone_from(&ws.taus);
                        let want = prop.evaluate(&omega, &mut fresh);
                        assert_eq!(
                            (got.0.to_bits(), got.1.to_bits(), got.2.to_bits()),
                            (want.0.to_bits(), want.1.to_bits(), want.2.to_bits()),
                            "step {step}"
                        );
                    }
                }
            }
        }
    }

    /// `r(g ∘ τ | g·ω) = r(τ | ω)` for every `τ`, at random `g`.
    #[test]
    fn layered_proposal_is_equivariant() {
        let q = posterior(vec![2, 3, 3, 2], true, 11);
        let prop = GroupProposal::new(&q, 1.3, 0.05, 7);
        let (mut ws, mut ws_g) = (prop.workspace(), prop.workspace());
        let mut rng = stream(4, 0);
        let omega = q.sample(&mut rng);
        let group = Group::of(q.arch().unwrap());
        for _ in 0..10 {
            let g = group.random(&mut rng);
            let g_omega = ActionMap::new(q.arch().unwrap(), &g).apply(&omega);
            prop.begin(&omega, &mut ws);
            prop.begin(&g_omega, &mut ws_g);
            group.elements(100).unwrap().for_each_ref(|tau| {
                let g_tau: GroupElement = g.compose(tau);
                for h in 0..2 {
                    ws.taus[h].copy_from_slice(tau.layer(h).forward());
                    ws_g.taus[h].copy_from_slice(g_tau.layer(h).forward());
                }
                let (_, _, a) = prop.evaluate(&omega, &mut ws);
                let (_, _, b) = prop.evaluate(&g_omega, &mut ws_g);
                assert!((a - b).abs() < 1e-10, "{a} vs {b}");
            });
        }
    }

    #[test]
    fn soft_gradient_matches_finite_differences() {
        let d = 4;
        let mut rng = stream(3, 0);
        let c: Vec<f64> = (0..d * d).map(|_| 2.0 * rng.random::<f64>()).collect();
        let tau = [2, 0, 3, 1];
        let mut ws = ProposalWorkspace::new(d);
        for iters in [0, 1, 6] {
            let logits_of = |c: &[f64]| {
                let (mut tape, mut l) = (Vec::new(), vec![0.0; d * d]);
                balanced_logits(c, d, 0.7, iters, &mut tape, &mut l);
                (l, tape)
            };
            let (l, tape) = logits_of(&c);
            let mut g = vec![0.0; d * d];
            ws.add_soft_grad(&l, d, &tau, 1.0, &mut g);
            let mut m = vec![0.0; d * d];
            balanced_logits_backward(&l, d, 0.7, iters, &tape, &g, &mut m);
            for k in 0..d * d {
                let h = 1e-6;
                let (mut up, mut dn) = (c.clone(), c.clone());
                up[k] += h;
                dn[k] -= h;
                let fd = (ws.soft_of(&up, &logits_of(&up).0, d, &tau).1
                    - ws.soft_of(&dn, &logits_of(&dn).0, d, &tau).1)
                    / (2.0 * h);
                assert!(
                    (fd - m[k]).abs() < 1e-7,
                    "iters {iters}, {k}: {fd} vs {}",
                    m[k]
                );
            }
        }
    }
}
