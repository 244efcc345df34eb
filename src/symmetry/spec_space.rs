//! A weight space given by a permutation spec: tensors, their axes' permutations, and
//! the checks that the spec is a symmetry of the deterministic parts.

use crate::error::{Error, Result};
use crate::symmetry::GroupElement;
use crate::symmetry::spec::{AxisPerm, PermutationSpec};
use crate::weights::Arch;

/// A tensor of a [`SpecSpace`].
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Tensor {
    pub(super) name: String,
    pub(super) shape: Vec<usize>,
    /// Offset of its first coordinate in the flat vector.
    pub(super) base: usize,
    pub(super) axes: Vec<Option<AxisPerm>>,
    /// The last permutation acting on it, if any.
    pub(super) owner: Option<usize>,
}

impl Tensor {
    pub(super) fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Where the tensor's row-major index `flat` lands under the permutations `perm(k)`
    /// (`None`: identity).
    pub(super) fn moved<'a>(
        &self,
        mut flat: usize,
        perm: impl Fn(usize) -> Option<&'a [usize]>,
    ) -> usize {
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
    pub(super) spec: PermutationSpec,
    pub(super) tensors: Vec<Tensor>,
    pub(super) n_params: usize,
    pub(super) fixed: Vec<(String, Vec<usize>, Vec<f64>)>,
    /// The MLP this spec describes, if it is one (an MLP's spec under other names): the
    /// estimators then take the MLP's kernels, with the widths path's numbers bit for
    /// bit. Its activation is a placeholder: the forward pass stays unavailable.
    pub(super) mlp: Option<Arch>,
    /// Per permutation, the classes of units that its fixed tensors leave free to trade
    /// places (a label per unit, [`crate::symmetry::pinned`]); `None` where the fixed
    /// tensors do not tell units apart.
    pub(super) pins: Vec<Option<Vec<usize>>>,
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
    pub(super) fn fill_target(&self, g: &GroupElement, target: &mut [u32]) {
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

    pub(super) fn factorizes(&self) -> bool {
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
pub(super) fn mlp_equivalent(spec: &PermutationSpec, tensors: &[Tensor]) -> Option<Arch> {
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
pub(super) fn check_invariant(
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
