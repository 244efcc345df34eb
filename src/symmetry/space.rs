//! The weight space of a posterior: how its flat vector is laid out and which permutation
//! group acts on it (docs/mathematics.md §2; docs/specs.md).
//!
//! A [`WeightSpace`] is either an MLP given by its widths ([`Arch`]), whose group is one
//! symmetric group per hidden layer, or any architecture described by a
//! [`PermutationSpec`] over named tensors laid out one after another ([`SpecSpace`]).
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

use crate::error::{Error, Result};
use crate::symmetry::spec::{AxisPerm, PermutationSpec};
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

/// A tensor of a [`SpecSpace`].
#[derive(Clone, Debug, PartialEq)]
struct Tensor {
    name: String,
    shape: Vec<usize>,
    /// Offset of its first coordinate in the flat vector.
    base: usize,
    axes: Vec<Option<AxisPerm>>,
    /// The last permutation acting on it, if any.
    owner: Option<usize>,
}

impl Tensor {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Where the tensor's row-major index `flat` lands under the permutations `perm(k)`
    /// (`None`: identity).
    fn moved<'a>(&self, mut flat: usize, perm: impl Fn(usize) -> Option<&'a [usize]>) -> usize {
        let mut out = 0;
        let mut stride = 1;
        for (&len, a) in self.shape.iter().zip(&self.axes).rev() {
            let i = flat % len;
            flat /= len;
            let j = match a.and_then(|a| perm(a.perm).map(|p| (p, a.block))) {
                Some((p, b)) => p[i / b] * b + i % b,
                None => i,
            };
            out += j * stride;
            stride *= len;
        }
        out
    }
}

/// A permutation spec checked against the tensors of a flat vector laid out one after
/// another (row-major within a tensor).
#[derive(Clone, Debug, PartialEq)]
pub struct SpecSpace {
    spec: PermutationSpec,
    tensors: Vec<Tensor>,
    n_params: usize,
    fixed: Vec<(String, Vec<usize>, Vec<f64>)>,
    /// The MLP this spec describes, if it is one (an MLP's spec under other names): the
    /// estimators then take the MLP's kernels, with the widths path's numbers bit for
    /// bit. Its activation is a placeholder: the forward pass stays unavailable.
    mlp: Option<Arch>,
    /// Per permutation, the classes of units that its fixed tensors leave free to trade
    /// places (a label per unit, [`crate::symmetry::pinned`]); `None` where the fixed
    /// tensors do not tell units apart.
    pins: Vec<Option<Vec<usize>>>,
}

impl SpecSpace {
    /// The space of `layout` (variational tensors, in flat order, as (name, shape)) under
    /// `spec`. `fixed` lists deterministic tensors (name, shape, values) that are not part
    /// of ω: point masses of q. One that a permutation moves to different values (a
    /// BatchNorm gain whose channels differ) *pins* it: only the permutations that keep
    /// its values have q(g⁻¹·ω) > 0 ([`crate::symmetry::pinned`]).
    ///
    /// # Errors
    ///
    /// Those of [`PermutationSpec::check_layout`] (with the fixed tensors counted as
    /// present); [`Error::Spec`] naming a fixed tensor that a permutation would change
    /// on more than one of its axes (its stabilizer is not read), or a spec that names no
    /// variational tensor.
    pub fn new(
        spec: PermutationSpec,
        layout: &[(String, Vec<usize>)],
        fixed: &[(String, Vec<usize>, Vec<f64>)],
    ) -> Result<Self> {
        let mut all: Vec<(String, Vec<usize>)> = layout.to_vec();
        all.extend(fixed.iter().map(|(n, s, _)| (n.clone(), s.clone())));
        spec.check_layout(&all)?;
        let mut tensors = Vec::with_capacity(layout.len());
        let mut base = 0;
        for (name, shape) in layout {
            let axes = spec.axes(name).expect("checked").to_vec();
            let owner = axes.iter().flatten().map(|a| a.perm).max();
            let t = Tensor {
                name: name.clone(),
                shape: shape.clone(),
                base,
                axes,
                owner,
            };
            base += t.len();
            tensors.push(t);
        }
        if base == 0 {
            return Err(Error::Spec(
                "the posterior has no variational parameters".into(),
            ));
        }
        // Per permutation, each unit's values in every fixed tensor it moves.
        let mut signatures: Vec<Option<Vec<Vec<u64>>>> = vec![None; spec.permutations().len()];
        for (name, shape, values) in fixed {
            let axes = spec.axes(name).expect("checked");
            if check_invariant(&spec, name, shape, axes, values).is_ok() {
                continue;
            }
            let (k, rows) = crate::symmetry::pinned::unit_values(&spec, name, shape, axes, values)?;
            let sig = signatures[k].get_or_insert_with(|| vec![Vec::new(); rows.len()]);
            for (s, r) in sig.iter_mut().zip(rows) {
                s.extend(r);
            }
        }
        let pins = signatures
            .into_iter()
            .map(|sig| sig.map(|s| crate::symmetry::pinned::classes(&s)))
            .collect();
        let mlp = if fixed.is_empty() {
            mlp_equivalent(&spec, &tensors)
        } else {
            None
        };
        Ok(SpecSpace {
            spec,
            tensors,
            n_params: base,
            fixed: fixed.to_vec(),
            mlp,
            pins,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &PermutationSpec {
        &self.spec
    }

    /// The variational tensors as (name, shape), in flat order.
    pub fn layout(&self) -> Vec<(String, Vec<usize>)> {
        self.tensors
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect()
    }

    /// The fixed tensors as (name, shape, values).
    pub fn fixed(&self) -> &[(String, Vec<usize>, Vec<f64>)] {
        &self.fixed
    }

    /// Per permutation, the class of each unit among those its fixed tensors leave free
    /// to trade places, or `None` where they pin nothing.
    pub fn pins(&self) -> &[Option<Vec<usize>>] {
        &self.pins
    }

    /// The variational tensors as (name, shape, offset in the flat vector, axes).
    pub(crate) fn tensor_parts(
        &self,
    ) -> impl Iterator<Item = (&str, &[usize], usize, &[Option<AxisPerm>])> {
        self.tensors.iter().map(|t| {
            (
                t.name.as_str(),
                t.shape.as_slice(),
                t.base,
                t.axes.as_slice(),
            )
        })
    }

    /// `target[p]`: where coordinate `p` lands under `g`. Per tensor, one table per axis
    /// holds each index's destination times the axis's stride, so a coordinate's target is
    /// a sum of table entries, walked row by row.
    fn fill_target(&self, g: &GroupElement, target: &mut [u32]) {
        let perms = g.perms();
        assert_eq!(
            perms.len(),
            self.spec.permutations().len(),
            "element of another group"
        );
        for (p, (_, n)) in perms.iter().zip(self.spec.permutations()) {
            assert_eq!(p.len(), *n, "element of another group");
        }
        let mut tables: Vec<usize> = Vec::new();
        let mut starts: Vec<usize> = Vec::new();
        for t in &self.tensors {
            tables.clear();
            starts.clear();
            let mut stride: usize = t.len();
            for (&len, a) in t.shape.iter().zip(&t.axes) {
                stride /= len;
                starts.push(tables.len());
                tables.extend((0..len).map(|i| {
                    let j = match a {
                        Some(a) => perms[a.perm].forward()[i / a.block] * a.block + i % a.block,
                        None => i,
                    };
                    t.base + j * stride
                }));
            }
            // All but the last axis: an odometer over the rows; the last axis: one table.
            let rank = t.shape.len();
            let last = &tables[starts[rank - 1]..];
            let row_len = t.shape[rank - 1];
            let mut idx = vec![0usize; rank - 1];
            for row in target[t.base..t.base + t.len()].chunks_exact_mut(row_len) {
                // `base` is in every table entry: count it once.
                let offset: usize = idx
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| tables[starts[a] + i] - t.base)
                    .sum();
                for (o, &l) in row.iter_mut().zip(last) {
                    *o = (l + offset) as u32;
                }
                for (i, &len) in idx.iter_mut().zip(&t.shape).rev() {
                    *i += 1;
                    if *i < len {
                        break;
                    }
                    *i = 0;
                }
            }
        }
    }

    fn factorizes(&self) -> bool {
        self.tensors.iter().all(|t| match t.owner {
            Some(k) => t.axes.iter().flatten().filter(|a| a.perm == k).count() == 1,
            None => true,
        })
    }

    /// The units of permutation `k` (module docs), or `None` when `k` acts on two axes of
    /// a tensor it owns.
    pub(crate) fn units(&self, k: usize) -> Option<SpecUnits> {
        let width = self.spec.permutations()[k].1;
        let mut per_unit: Vec<Vec<usize>> = vec![Vec::new(); width];
        let mut deps = Vec::new();
        let mut owned = Vec::new();
        for (ti, t) in self.tensors.iter().enumerate() {
            if t.owner != Some(k) {
                continue;
            }
            let mut on_k = t
                .axes
                .iter()
                .enumerate()
                .filter_map(|(x, a)| a.filter(|a| a.perm == k).map(|a| (x, a.block)));
            let (axis, block) = on_k.next().expect("k owns the tensor");
            if on_k.next().is_some() {
                return None;
            }
            let inner: usize = t.shape[axis + 1..].iter().product();
            for flat in 0..t.len() {
                let i = (flat / inner) % t.shape[axis];
                per_unit[i / block].push(t.base + flat);
            }
            deps.extend(t.axes.iter().flatten().map(|a| a.perm).filter(|&e| e != k));
            owned.push(ti);
        }
        deps.sort_unstable();
        deps.dedup();
        let n_per_unit = per_unit[0].len();
        Some(SpecUnits {
            width,
            n_per_unit,
            index: per_unit.concat(),
            deps,
        })
    }

    /// Coordinates no permutation moves, in flat order.
    pub(crate) fn rest(&self) -> Vec<usize> {
        self.tensors
            .iter()
            .filter(|t| t.owner.is_none())
            .flat_map(|t| t.base..t.base + t.len())
            .collect()
    }

    /// Where coordinate `p` lands when the permutations `k` with `taus[k]` given are
    /// applied (the others, and `k ≥ taus.len()`, held at the identity).
    pub(crate) fn relabel(&self, p: usize, taus: &[Vec<usize>]) -> usize {
        let ti = self.tensors.partition_point(|t| t.base <= p) - 1;
        let t = &self.tensors[ti];
        t.base + t.moved(p - t.base, |k| taus.get(k).map(Vec::as_slice))
    }
}

/// The MLP whose derived spec ([`PermutationSpec::mlp`]) equals `spec` on `tensors` up
/// to the tensors' names: weights `[out, in]` that chain, each optionally followed by its
/// bias, with the hidden permutations in layer order.
fn mlp_equivalent(spec: &PermutationSpec, tensors: &[Tensor]) -> Option<Arch> {
    let mut widths: Vec<usize> = Vec::new();
    let mut biases = Vec::new();
    let mut i = 0;
    while i < tensors.len() {
        let w = &tensors[i];
        let [out, inp] = w.shape[..] else { return None };
        match widths.last() {
            None => widths.extend([inp, out]),
            Some(&prev) if prev == inp => widths.push(out),
            Some(_) => return None,
        }
        let bias = tensors.get(i + 1).is_some_and(|b| b.shape == [out]);
        biases.push(bias);
        i += 1 + usize::from(bias);
    }
    let mut builder = Arch::builder(widths);
    for (l, &b) in biases.iter().enumerate() {
        builder = builder.layer_bias(l, b);
    }
    let arch = builder.check().ok()?;
    let derived = PermutationSpec::mlp(&arch);
    let names = crate::symmetry::spec::mlp_layout(&arch);
    let same = derived
        .permutations()
        .iter()
        .map(|p| p.1)
        .eq(spec.permutations().iter().map(|p| p.1))
        && names.len() == tensors.len()
        && names
            .iter()
            .zip(tensors)
            .all(|((n, shape), t)| *shape == t.shape && derived.axes(n) == Some(&t.axes[..]));
    same.then_some(arch)
}

/// The units of one permutation of a [`SpecSpace`].
#[derive(Clone, Debug)]
pub(crate) struct SpecUnits {
    pub(crate) width: usize,
    pub(crate) n_per_unit: usize,
    /// `index[j · n + m]`: flat index of unit `j`'s `m`-th parameter.
    pub(crate) index: Vec<usize>,
    /// The earlier permutations that relabel these units.
    pub(crate) deps: Vec<usize>,
}

/// Checks that every permutation the spec puts on a fixed tensor leaves it unchanged:
/// invariance under a transposition and a full cycle of each permutation (which generate
/// its symmetric group), applied on all its axes at once.
fn check_invariant(
    spec: &PermutationSpec,
    name: &str,
    shape: &[usize],
    axes: &[Option<AxisPerm>],
    values: &[f64],
) -> Result<()> {
    let t = Tensor {
        name: name.to_string(),
        shape: shape.to_vec(),
        base: 0,
        axes: axes.to_vec(),
        owner: None,
    };
    let mut acting: Vec<usize> = axes.iter().flatten().map(|a| a.perm).collect();
    acting.sort_unstable();
    acting.dedup();
    for k in acting {
        let (perm_name, n) = &spec.permutations()[k];
        if *n < 2 {
            continue;
        }
        let swap: Vec<usize> = (0..*n)
            .map(|i| match i {
                0 => 1,
                1 => 0,
                _ => i,
            })
            .collect();
        let cycle: Vec<usize> = (0..*n).map(|i| (i + 1) % n).collect();
        for generator in [&swap, &cycle] {
            let perm = |j: usize| (j == k).then_some(generator.as_slice());
            for (flat, &v) in values.iter().enumerate() {
                if values[t.moved(flat, perm)] != v {
                    return Err(Error::Spec(format!(
                        "fixed tensor `{name}` is not invariant under `{perm_name}`: a permutation of its axes changes its values"
                    )));
                }
            }
        }
    }
    Ok(())
}
