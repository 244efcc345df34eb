//! The weight space of a posterior: how its flat vector is laid out and which permutation
//! group acts on it (docs/mathematics.md §2; docs/specs.md).
//!
//! A [`WeightSpace`] is either an MLP given by its widths ([`Arch`]), whose group is one
//! symmetric group per hidden layer, or any architecture described by a
//! [`PermutationSpec`](crate::symmetry::spec::PermutationSpec) over named tensors laid out one after another ([`SpecSpace`]).
//! The estimators ask the space for the group, the action of an element and, where the
//! group's units own disjoint sets of parameters, for those units (the fast paths).
//!
//! **Units of a spec.** Visit the permutations in the spec's order. A tensor belongs to
//! the *last* permutation acting on any of its axes (its *owner*); tensors no permutation
//! touches are the *rest*. Unit `i` of permutation `k` is every coordinate of `k`'s tensors
//! whose `k`-axis index lies in block `i`. When `k` acts on one axis of each tensor it owns,
//! relabelling the earlier permutations first and then `τ_k` gives
//! `ln q(g⁻¹·ω) = ln q_rest(ω) + Σ_k Σ_i C_k[i, τ_k(i)]`, with `C_k` computed after the
//! earlier permutations (docs/mathematics.md §5): the spec *factorizes*. For an MLP the
//! owner of `W_l` is layer `l`'s permutation, so unit `i` is `W_l[i, :]`, `b_l[i]` and, for
//! the last hidden layer, `W_L[:, i]`: the unit cost matrix as it always was.

use std::sync::Arc;

use super::spec_space::SpecSpace;
use crate::error::{Error, Result};
use crate::symmetry::{ActionMap, Group, GroupElement};
use crate::weights::Arch;

/// The layout and group of a posterior's weights.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightSpace {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Mlp(Arch),
    Spec(Arc<SpecSpace>),
}

impl From<Arch> for WeightSpace {
    fn from(arch: Arch) -> Self {
        WeightSpace {
            kind: Kind::Mlp(arch),
        }
    }
}

impl From<SpecSpace> for WeightSpace {
    fn from(space: SpecSpace) -> Self {
        WeightSpace {
            kind: Kind::Spec(Arc::new(space)),
        }
    }
}

impl WeightSpace {
    /// The MLP, if this space is given by widths.
    pub fn arch(&self) -> Option<&Arch> {
        match &self.kind {
            Kind::Mlp(a) => Some(a),
            Kind::Spec(_) => None,
        }
    }

    /// The MLP layout the estimators' kernels may use: the MLP itself, or the MLP a spec
    /// turns out to describe.
    pub(crate) fn kernel_arch(&self) -> Option<&Arch> {
        match &self.kind {
            Kind::Mlp(a) => Some(a),
            Kind::Spec(s) => s.mlp.as_ref(),
        }
    }

    /// The spec and tensor layout, if this space is given by a permutation spec.
    pub fn spec_space(&self) -> Option<&SpecSpace> {
        match &self.kind {
            Kind::Mlp(_) => None,
            Kind::Spec(s) => Some(s),
        }
    }

    pub(crate) fn spec_arc(&self) -> Option<&Arc<SpecSpace>> {
        match &self.kind {
            Kind::Mlp(_) => None,
            Kind::Spec(s) => Some(s),
        }
    }

    /// Number of variational parameters P.
    pub fn n_params(&self) -> usize {
        match &self.kind {
            Kind::Mlp(a) => a.n_params(),
            Kind::Spec(s) => s.n_params,
        }
    }

    /// Checks that `v` has length P.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] naming `field`.
    pub fn check_len(&self, field: &str, v: &[f64]) -> Result<()> {
        if v.len() == self.n_params() {
            Ok(())
        } else {
            Err(Error::length(field, self.n_params(), v.len()))
        }
    }

    /// The group acting on the weights.
    pub fn group(&self) -> Group {
        match (&self.kind, self.kernel_arch()) {
            (_, Some(a)) => Group::of(a),
            (Kind::Spec(s), None) => {
                Group::from_sizes(s.spec.permutations().iter().map(|p| p.1).collect())
            }
            (Kind::Mlp(_), None) => unreachable!("an MLP is its own kernel layout"),
        }
    }

    /// The action of `g` on flat vectors of this space.
    ///
    /// # Panics
    ///
    /// If `g` is not an element of [`group`](Self::group).
    pub fn action(&self, g: &GroupElement) -> ActionMap {
        match (&self.kind, self.kernel_arch()) {
            (_, Some(a)) => ActionMap::new(a, g),
            (Kind::Spec(s), None) => {
                let mut target = vec![0u32; s.n_params];
                s.fill_target(g, &mut target);
                ActionMap::from_target(target)
            }
            (Kind::Mlp(_), None) => unreachable!("an MLP is its own kernel layout"),
        }
    }

    /// Recomputes `map` for another element without allocating.
    ///
    /// # Panics
    ///
    /// If `g` is not an element of [`group`](Self::group) or `map` belongs to another
    /// space.
    pub fn assign(&self, map: &mut ActionMap, g: &GroupElement) {
        match (&self.kind, self.kernel_arch()) {
            (_, Some(a)) => map.assign(a, g),
            (Kind::Mlp(_), None) => unreachable!("an MLP is its own kernel layout"),
            (Kind::Spec(s), None) => {
                assert_eq!(map.target.len(), s.n_params, "map of another space");
                s.fill_target(g, &mut map.target);
                for (p, &t) in map.target.iter().enumerate() {
                    map.source[t as usize] = p as u32;
                }
            }
        }
    }

    /// The number of permutations (hidden layers of an MLP).
    pub fn n_perms(&self) -> usize {
        match &self.kind {
            Kind::Mlp(a) => a.hidden_widths().len(),
            Kind::Spec(s) => s.spec.permutations().len(),
        }
    }

    /// Whether every permutation's units own disjoint parameter sets (module docs), so
    /// that the unit-cost estimators apply: always for an MLP.
    pub fn factorizes(&self) -> bool {
        match &self.kind {
            Kind::Mlp(_) => true,
            Kind::Spec(s) => s.factorizes(),
        }
    }

    /// Whether the group is one permutation whose units own disjoint parameter sets: the
    /// case of the exact permanent, the pairwise bounds and the one-layer fast paths.
    pub fn single_unit_group(&self) -> bool {
        self.n_perms() == 1 && self.factorizes()
    }

    /// A short description for messages: `widths [2, 3, 1]` or `spec c1 (3), h1 (4)`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Mlp(a) => format!("widths {:?}", a.widths()),
            Kind::Spec(s) => {
                let perms: Vec<String> = s
                    .spec
                    .permutations()
                    .iter()
                    .map(|(n, d)| format!("{n} ({d})"))
                    .collect();
                format!("spec {}", perms.join(", "))
            }
        }
    }
}
