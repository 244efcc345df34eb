//! A group element's action on flat weight vectors, precomputed as a coordinate
//! permutation.

use super::*;

/// The action of one group element on flat vectors of an [`Arch`], as a coordinate
/// permutation precomputed once and reusable for ω, μ and σ alike.
///
/// `source[p]` is the coordinate of `v` that lands at `p` in `g·v`, and `target[p]` the
/// coordinate of `g·v` that `v[p]` lands at; so `(g·v)[p] = v[source[p]]` and
/// `(g⁻¹·v)[p] = v[target[p]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionMap {
    pub(super) source: Vec<u32>,
    pub(super) target: Vec<u32>,
}

impl ActionMap {
    /// The map of `g` on `arch`'s flat vectors.
    ///
    /// # Panics
    ///
    /// If `g` is not an element of `Group::of(arch)`.
    pub fn new(arch: &Arch, g: &GroupElement) -> Self {
        let mut m = ActionMap {
            source: vec![0; arch.n_params()],
            target: vec![0; arch.n_params()],
        };
        m.assign(arch, g);
        m
    }

    /// Recomputes the map for another element without allocating.
    ///
    /// # Panics
    ///
    /// If `g` is not an element of `Group::of(arch)` or the map was built for an
    /// architecture with another parameter count.
    pub fn assign(&mut self, arch: &Arch, g: &GroupElement) {
        let widths = arch.widths();
        let n_hidden = widths.len() - 2;
        assert_eq!(g.perms.len(), n_hidden, "element of another group");
        assert_eq!(
            self.source.len(),
            arch.n_params(),
            "map of another architecture"
        );
        // Permutation of width index k (0 and L are the fixed input/output).
        let perm_of = |k: usize| (k >= 1 && k <= n_hidden).then(|| &g.perms[k - 1]);
        for i in 0..arch.n_layers() {
            let Some(o) = arch.offsets(i) else { continue };
            let (d_in, d_out) = (widths[i], widths[i + 1]);
            let (p_in, p_out) = (perm_of(i), perm_of(i + 1));
            let fwd = |p: Option<&Permutation>, k: usize| p.map_or(k, |p| p.forward[k]);
            let inv = |p: Option<&Permutation>, k: usize| p.map_or(k, |p| p.inverse[k]);
            for a in 0..d_out {
                let (ra_src, ra_dst) = (inv(p_out, a), fwd(p_out, a));
                let row = o.weight + a * d_in;
                for b in 0..d_in {
                    self.source[row + b] = (o.weight + ra_src * d_in + inv(p_in, b)) as u32;
                    self.target[row + b] = (o.weight + ra_dst * d_in + fwd(p_in, b)) as u32;
                }
                if let Some(ob) = o.bias {
                    self.source[ob + a] = (ob + ra_src) as u32;
                    self.target[ob + a] = (ob + ra_dst) as u32;
                }
            }
        }
    }

    /// The map whose `target` is given (`target[p]`: where `v[p]` lands), its `source`
    /// computed as the inverse.
    ///
    /// # Panics
    ///
    /// If `target` is not a permutation of `0..target.len()`.
    pub fn from_target(target: Vec<u32>) -> Self {
        let mut source = vec![u32::MAX; target.len()];
        for (p, &t) in target.iter().enumerate() {
            assert_eq!(source[t as usize], u32::MAX, "not a permutation");
            source[t as usize] = p as u32;
        }
        ActionMap { source, target }
    }

    /// `source[p]`: the coordinate of `v` that lands at `p` in `g·v`.
    pub fn source(&self) -> &[u32] {
        &self.source
    }

    /// `target[p]`: the coordinate of `g·v` that `v[p]` lands at.
    pub fn target(&self) -> &[u32] {
        &self.target
    }

    /// Writes `g·v` into `out`.
    ///
    /// # Panics
    ///
    /// If `v` or `out` does not have the map's length.
    pub fn apply_in_place(&self, v: &[f64], out: &mut [f64]) {
        assert_eq!(v.len(), self.source.len());
        assert_eq!(out.len(), self.source.len());
        for (o, &s) in out.iter_mut().zip(&self.source) {
            *o = v[s as usize];
        }
    }

    /// Writes `g⁻¹·v` into `out`.
    ///
    /// # Panics
    ///
    /// If `v` or `out` does not have the map's length.
    pub fn apply_inverse_in_place(&self, v: &[f64], out: &mut [f64]) {
        assert_eq!(v.len(), self.target.len());
        assert_eq!(out.len(), self.target.len());
        for (o, &t) in out.iter_mut().zip(&self.target) {
            *o = v[t as usize];
        }
    }

    /// `g·v`.
    ///
    /// # Panics
    ///
    /// If `v` does not have the map's length.
    pub fn apply(&self, v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; v.len()];
        self.apply_in_place(v, &mut out);
        out
    }
}
