//! Draws from q and its log densities, at ω and at permuted weights (eq. 4, and
//! `ln q(g⁻¹·v)` straight from an [`ActionMap`]).

use super::*;

impl MeanFieldGaussian {
    /// Draws `ω = μ + σ ⊙ ε` into `out`, writing the standard normal ε into `eps`.
    ///
    /// # Panics
    ///
    /// If `eps` or `out` is not of length P.
    pub fn sample_in_place<R: rand::Rng + ?Sized>(
        &self,
        rng: &mut R,
        eps: &mut [f64],
        out: &mut [f64],
    ) {
        assert_eq!(eps.len(), self.n_params());
        assert_eq!(out.len(), self.n_params());
        crate::rng::fill_standard_normal(rng, eps);
        for (((o, e), m), s) in out.iter_mut().zip(&*eps).zip(&self.mu).zip(&self.sigma) {
            *o = m + s * e;
        }
    }

    /// `ω = μ + σ ⊙ ε` for a given standard-normal `eps`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `eps` is not of length P.
    pub fn reparameterize(&self, eps: &[f64]) -> Result<Vec<f64>> {
        let mut omega = Vec::with_capacity(eps.len());
        self.reparameterize_into(eps, &mut omega)?;
        Ok(omega)
    }

    /// [`reparameterize`](Self::reparameterize) into `omega` (cleared first; no
    /// allocation once it has the capacity).
    ///
    /// # Errors
    ///
    /// As [`reparameterize`](Self::reparameterize).
    pub fn reparameterize_into(&self, eps: &[f64], omega: &mut Vec<f64>) -> Result<()> {
        self.space.check_len("eps", eps)?;
        omega.clear();
        omega.extend(
            self.mu
                .iter()
                .zip(&self.sigma)
                .zip(eps)
                .map(|((m, s), e)| m + s * e),
        );
        Ok(())
    }

    /// A reparameterized draw `ω = μ + σ ⊙ ε`.
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Vec<f64> {
        let mut eps = vec![0.0; self.n_params()];
        let mut out = vec![0.0; self.n_params()];
        self.sample_in_place(rng, &mut eps, &mut out);
        out
    }

    /// `ln q(v)`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `v` is not of length P.
    pub fn ln_q(&self, v: &[f64]) -> Result<f64> {
        self.space.check_len("v", v)?;
        Ok(self.ln_q_unchecked(v))
    }

    /// `ln q(v)` without the length check (the estimators' kernel).
    #[inline]
    pub(crate) fn ln_q_unchecked(&self, v: &[f64]) -> f64 {
        let mut quad = 0.0;
        for ((x, m), is) in v.iter().zip(&self.mu).zip(&self.inv_sigma) {
            let z = (x - m) * is;
            quad += z * z;
        }
        self.ln_normalizer() - 0.5 * quad
    }

    /// `ln q(g⁻¹·v) = ln (g·q)(v)` for the element whose map is `map`, read straight
    /// from the map: `(g⁻¹·v)[p] = v[target[p]]`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `v` is not of length P.
    ///
    /// # Panics
    ///
    /// If `map` was built for another architecture.
    pub fn ln_q_inverse_permuted(&self, v: &[f64], map: &ActionMap) -> Result<f64> {
        self.space.check_len("v", v)?;
        Ok(self.ln_q_inverse_permuted_unchecked(v, map))
    }

    #[inline]
    pub(crate) fn ln_q_inverse_permuted_unchecked(&self, v: &[f64], map: &ActionMap) -> f64 {
        let target = map.target();
        assert_eq!(target.len(), v.len(), "map of another architecture");
        let mut quad = 0.0;
        for ((t, m), is) in target.iter().zip(&self.mu).zip(&self.inv_sigma) {
            let z = (v[*t as usize] - m) * is;
            quad += z * z;
        }
        self.ln_normalizer() - 0.5 * quad
    }

    /// `ln q(g⁻¹·v)` computed from `g`'s permutations directly, without an
    /// [`ActionMap`]: row `a` of each layer's density meets row `τ_out(a)` of `v`, its
    /// columns through `τ_in` (rows of the first layer are contiguous), and each row's
    /// sum runs over eight accumulator lanes in AVX code. The generic path of the
    /// estimators (`O(P)` per permutation, any depth); equal to
    /// [`ln_q_inverse_permuted`](Self::ln_q_inverse_permuted) up to the order of the
    /// additions.
    ///
    /// # Panics
    ///
    /// If `v` is not of length P or `g` is not an element of this architecture's group.
    pub fn ln_q_inverse_permuted_by(&self, v: &[f64], g: &GroupElement) -> f64 {
        use crate::linalg::{scaled_square_distance, scaled_square_distance_gathered};
        let Some(arch) = self.space.kernel_arch() else {
            assert_eq!(v.len(), self.n_params(), "v of another space");
            return self.ln_q_inverse_permuted_unchecked(v, &self.space.action(g));
        };
        let widths = arch.widths();
        let n_hidden = widths.len() - 2;
        assert_eq!(v.len(), self.n_params(), "v of another architecture");
        assert_eq!(g.perms().len(), n_hidden, "element of another group");
        let perm_of = |k: usize| (k >= 1 && k <= n_hidden).then(|| g.layer(k - 1).forward());
        let quad = crate::linalg::with_avx(
            #[inline(always)]
            || {
                let mut quad = 0.0;
                for i in 0..arch.n_layers() {
                    let Some(o) = arch.offsets(i) else { continue };
                    let (d_in, d_out) = (widths[i], widths[i + 1]);
                    let (p_in, p_out) = (perm_of(i), perm_of(i + 1));
                    for a in 0..d_out {
                        let fa = p_out.map_or(a, |p| p[a]);
                        let src = &v[o.weight + fa * d_in..o.weight + (fa + 1) * d_in];
                        let row = o.weight + a * d_in..o.weight + (a + 1) * d_in;
                        let (m, s) = (&self.mu[row.clone()], &self.inv_sigma[row]);
                        quad += match p_in {
                            None => scaled_square_distance(src, m, s),
                            Some(p) => scaled_square_distance_gathered(src, p, m, s),
                        };
                        if let Some(ob) = o.bias {
                            let z = (v[ob + fa] - self.mu[ob + a]) * self.inv_sigma[ob + a];
                            quad += z * z;
                        }
                    }
                }
                quad
            },
        );
        self.ln_normalizer() - 0.5 * quad
    }

    /// `g·q = N(g·μ, diag (g·σ)²)`, the posterior with its hidden units relabelled.
    ///
    /// # Panics
    ///
    /// If `g` is not an element of this architecture's group.
    pub fn permuted(&self, g: &GroupElement) -> Self {
        let map = self.space.action(g);
        let mu = map.apply(&self.mu);
        let rho = map.apply(&self.rho);
        let sigma = map.apply(&self.sigma);
        let inv_sigma = map.apply(&self.inv_sigma);
        MeanFieldGaussian {
            space: self.space.clone(),
            mu,
            rho,
            transform: self.transform,
            sigma,
            inv_sigma,
            ln_sigma: map.apply(&self.ln_sigma),
            dsigma_drho: map.apply(&self.dsigma_drho),
            sum_ln_sigma: self.sum_ln_sigma,
        }
    }
}
