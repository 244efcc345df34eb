//! The hidden-unit permutation group and its action on weight space (docs/mathematics.md §2,
//! paper Def. 2.1).
//!
//! A group element is `g = (τ_1, …, τ_{L−1})`, one permutation per hidden layer. With
//! `P_τ[i, τ(i)] = 1` the action is
//! `W_1' = P_1ᵀ W_1`, `b_1' = P_1ᵀ b_1`, `W_l' = P_lᵀ W_l P_{l−1}`, `b_l' = P_lᵀ b_l`,
//! `W_L' = W_L P_{L−1}`: hidden unit `i` of a layer moves to position `τ(i)`, taking its
//! incoming row, its bias and its outgoing column with it. In index form
//! `(g·ω)[W_l][a, b] = ω[W_l][τ_l⁻¹(a), τ_{l−1}⁻¹(b)]`. The action is a coordinate
//! permutation of ω, hence linear and orthogonal, and `f_{g·ω} = f_ω` for any
//! pointwise activation. `|G| = Π_l d_l!`, handled as `ln|G| = Σ_l ln Γ(d_l + 1)`.
//!
//! Composition: `(g ∘ h)·ω = g·(h·ω)`, i.e. `(g ∘ h).τ_l = g.τ_l ∘ h.τ_l`.

use crate::error::{Error, Result};
use crate::rng::shuffle;
use crate::weights::Arch;

/// A permutation of `0..n` storing both directions: `forward[i] = τ(i)` and
/// `inverse[τ(i)] = i`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permutation {
    forward: Vec<usize>,
    inverse: Vec<usize>,
}

impl Permutation {
    /// The identity on `0..n`.
    pub fn identity(n: usize) -> Self {
        Permutation {
            forward: (0..n).collect(),
            inverse: (0..n).collect(),
        }
    }

    /// The permutation with `forward[i] = τ(i)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `forward` is not a permutation of `0..n`.
    pub fn from_forward(forward: Vec<usize>) -> Result<Self> {
        let n = forward.len();
        let mut inverse = vec![usize::MAX; n];
        for (i, &t) in forward.iter().enumerate() {
            if t >= n || inverse[t] != usize::MAX {
                return Err(Error::invalid(
                    "permutation",
                    format!("{forward:?}"),
                    format!("not a permutation of 0..{n}"),
                ));
            }
            inverse[t] = i;
        }
        Ok(Permutation { forward, inverse })
    }

    /// A uniformly random permutation of `0..n` (Fisher–Yates).
    pub fn random<R: rand::Rng + ?Sized>(n: usize, rng: &mut R) -> Self {
        let mut p = Self::identity(n);
        p.randomize(rng);
        p
    }

    /// Overwrites `self` with a uniformly random permutation of the same length, without
    /// allocating (Fisher–Yates on the forward array, then the inverse is rebuilt).
    pub fn randomize<R: rand::Rng + ?Sized>(&mut self, rng: &mut R) {
        for (i, f) in self.forward.iter_mut().enumerate() {
            *f = i;
        }
        shuffle(&mut self.forward, rng);
        for (i, &t) in self.forward.iter().enumerate() {
            self.inverse[t] = i;
        }
    }

    /// Length `n`.
    pub fn len(&self) -> usize {
        self.forward.len()
    }

    /// Whether `n = 0`.
    pub fn is_empty(&self) -> bool {
        self.forward.is_empty()
    }

    /// `forward[i] = τ(i)`.
    pub fn forward(&self) -> &[usize] {
        &self.forward
    }

    /// `inverse[j] = τ⁻¹(j)`.
    pub fn inverse_map(&self) -> &[usize] {
        &self.inverse
    }

    /// Whether this is the identity.
    pub fn is_identity(&self) -> bool {
        self.forward.iter().enumerate().all(|(i, &t)| i == t)
    }

    /// `τ⁻¹`.
    pub fn inverse(&self) -> Self {
        Permutation {
            forward: self.inverse.clone(),
            inverse: self.forward.clone(),
        }
    }

    /// `self ∘ other`: apply `other` first, `(self ∘ other)(i) = self(other(i))`.
    ///
    /// # Panics
    ///
    /// If the lengths differ.
    pub fn compose(&self, other: &Permutation) -> Self {
        assert_eq!(
            self.len(),
            other.len(),
            "composing permutations of different lengths"
        );
        let forward: Vec<usize> = other.forward.iter().map(|&i| self.forward[i]).collect();
        let mut inverse = vec![0; forward.len()];
        for (i, &t) in forward.iter().enumerate() {
            inverse[t] = i;
        }
        Permutation { forward, inverse }
    }

    /// Advances to the next permutation in lexicographic order of `forward`; returns
    /// `false` (leaving the identity) after the last one.
    fn advance_lexicographic(&mut self) -> bool {
        let f = &mut self.forward;
        let n = f.len();
        let more = match (0..n.saturating_sub(1)).rev().find(|&i| f[i] < f[i + 1]) {
            Some(i) => {
                let j = (i + 1..n)
                    .rev()
                    .find(|&j| f[j] > f[i])
                    .expect("a larger suffix element exists");
                f.swap(i, j);
                f[i + 1..].reverse();
                true
            }
            None => {
                f.reverse();
                false
            }
        };
        for (i, &t) in self.forward.iter().enumerate() {
            self.inverse[t] = i;
        }
        more
    }
}

/// An element of the permutation group: one permutation per hidden layer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupElement {
    perms: Vec<Permutation>,
}

impl GroupElement {
    /// The element with the given per-hidden-layer permutations.
    pub fn new(perms: Vec<Permutation>) -> Self {
        GroupElement { perms }
    }

    /// The permutation of hidden layer `h` (0-based among the hidden layers).
    pub fn layer(&self, h: usize) -> &Permutation {
        &self.perms[h]
    }

    /// All per-layer permutations.
    pub fn perms(&self) -> &[Permutation] {
        &self.perms
    }

    /// Whether every layer's permutation is the identity.
    pub fn is_identity(&self) -> bool {
        self.perms.iter().all(Permutation::is_identity)
    }

    /// `g⁻¹`.
    pub fn inverse(&self) -> Self {
        GroupElement {
            perms: self.perms.iter().map(Permutation::inverse).collect(),
        }
    }

    /// `self ∘ other`, so that `(self ∘ other)·ω = self·(other·ω)`.
    ///
    /// # Panics
    ///
    /// If the elements belong to different groups.
    pub fn compose(&self, other: &GroupElement) -> Self {
        assert_eq!(
            self.perms.len(),
            other.perms.len(),
            "elements of different groups"
        );
        GroupElement {
            perms: self
                .perms
                .iter()
                .zip(&other.perms)
                .map(|(a, b)| a.compose(b))
                .collect(),
        }
    }
}

/// Default largest group [`Group::elements`] enumerates.
pub const DEFAULT_MAX_ENUMERATION: u64 = 1_000_000;

/// The hidden-unit permutation group of an [`Arch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    hidden: Vec<usize>,
}

impl Group {
    /// The group of `arch`: `S_{d_1} × … × S_{d_{L−1}}`.
    pub fn of(arch: &Arch) -> Self {
        Group {
            hidden: arch.hidden_widths().to_vec(),
        }
    }

    /// The group `S_{n_1} × … × S_{n_m}` of a permutation spec's sizes.
    pub fn from_sizes(sizes: Vec<usize>) -> Self {
        Group { hidden: sizes }
    }

    /// The sizes of the symmetric groups that make up G (an MLP's hidden widths).
    pub fn hidden_widths(&self) -> &[usize] {
        &self.hidden
    }

    /// `ln|G| = Σ_l ln(d_l!)`, via ln Γ.
    pub fn ln_order(&self) -> f64 {
        self.hidden.iter().map(|&d| ln_factorial(d)).sum()
    }

    /// `|G|` if it fits in a `u64`.
    pub fn order(&self) -> Option<u64> {
        self.hidden.iter().try_fold(1u64, |acc, &d| {
            (1..=d as u64).try_fold(acc, |a, k| a.checked_mul(k))
        })
    }

    /// The identity element.
    pub fn identity(&self) -> GroupElement {
        GroupElement {
            perms: self
                .hidden
                .iter()
                .map(|&d| Permutation::identity(d))
                .collect(),
        }
    }

    /// A uniformly random element.
    pub fn random<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> GroupElement {
        let mut g = self.identity();
        self.randomize(&mut g, rng);
        g
    }

    /// Overwrites `g` with a uniformly random element without allocating.
    ///
    /// # Panics
    ///
    /// If `g` is not an element of this group.
    pub fn randomize<R: rand::Rng + ?Sized>(&self, g: &mut GroupElement, rng: &mut R) {
        assert_eq!(g.perms.len(), self.hidden.len(), "element of another group");
        for p in &mut g.perms {
            p.randomize(rng);
        }
    }

    /// Checks that `|G| ≤ limit`.
    ///
    /// # Errors
    ///
    /// [`Error::GroupTooLarge`] with ln|G| and the limit.
    pub fn check_enumerable(&self, limit: u64) -> Result<u64> {
        match self.order() {
            Some(n) if n <= limit => Ok(n),
            _ => Err(Error::GroupTooLarge {
                ln_order: self.ln_order(),
                order: self.ln_order().exp(),
                limit,
            }),
        }
    }

    /// Every element, in a fixed order starting with the identity, if `|G| ≤ limit`.
    ///
    /// # Errors
    ///
    /// [`Error::GroupTooLarge`] above `limit` (use [`DEFAULT_MAX_ENUMERATION`] unless
    /// there is a reason not to).
    pub fn elements(&self, limit: u64) -> Result<Elements> {
        let remaining = self.check_enumerable(limit)?;
        Ok(Elements {
            current: self.identity(),
            remaining,
        })
    }
}

/// Iterator over all elements of a [`Group`] (odometer over the layers, lexicographic
/// within each layer). [`Elements::for_each_ref`] lends each element without
/// allocating; [`Iterator::next`] clones it.
#[derive(Clone, Debug)]
pub struct Elements {
    current: GroupElement,
    remaining: u64,
}

impl Elements {
    fn step(&mut self) {
        for p in self.current.perms.iter_mut().rev() {
            if p.advance_lexicographic() {
                return;
            }
        }
    }

    /// Number of elements not yet visited.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Calls `f` on every remaining element, borrowing each.
    pub fn for_each_ref(mut self, mut f: impl FnMut(&GroupElement)) {
        while self.remaining > 0 {
            f(&self.current);
            self.remaining -= 1;
            if self.remaining > 0 {
                self.step();
            }
        }
    }
}

impl Iterator for Elements {
    type Item = GroupElement;
    fn next(&mut self) -> Option<GroupElement> {
        if self.remaining == 0 {
            return None;
        }
        let g = self.current.clone();
        self.remaining -= 1;
        if self.remaining > 0 {
            self.step();
        }
        Some(g)
    }
}

/// `ln(n!) = ln Γ(n + 1)`.
pub fn ln_factorial(n: usize) -> f64 {
    statrs::function::gamma::ln_gamma(n as f64 + 1.0)
}

mod action;
pub mod pinned;
pub use action::ActionMap;
pub mod space;
pub mod spec;
mod spec_space;

pub use space::WeightSpace;
pub use spec_space::SpecSpace;

#[cfg(test)]
mod tests;
