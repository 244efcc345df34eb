//! Deterministic tensors that a permutation moves: the stabilizer (docs/mathematics.md
//! §2, "Pinned units").
//!
//! A deterministic tensor d (a BatchNorm gain, a running mean) is a point mass in q, at
//! d₀. Under a permutation g it lands at g·d₀, so q(g⁻¹·ω) > 0 only if g·d₀ = d₀: g lies
//! in the stabilizer S of d₀. For one permutation acting on one axis of d, S permutes
//! units only within *classes* of units whose slices of d are equal: S = Π_c Sym(c), of
//! order Π_c |c|!. With ω ~ q (the identity's orbit; ln q^G is G-invariant),
//!
//! ```text
//! ln q^G(ω) − ln q(ω) = −ln|G| + ln Σ_{s ∈ S} q(s⁻¹·ω) / q(ω)
//! I(g; ω) = ln|G| − ln|S| + I_S(ω),   I_S = ln|S| − E ln Σ_{s ∈ S} q(s⁻¹·ω) / q(ω),
//! ```
//!
//! the mutual information of the subgroup S acting on the variational tensors alone: a
//! pinned class of one unit contributes its full ln(n!) share, a class of units whose
//! fixed values tie lets them trade places as usual. [`Stabilizer`] is S as a space of its
//! own, so every estimator computes I_S unchanged: each variational tensor is split along
//! a pinned axis into one piece per class (a permutation per class of two or more units,
//! none for a unit alone), the flat vector reordered to match (which changes no density),
//! and a permutation that then moves no variational tensor is dropped (its units are
//! identical under q, so it adds ln of its order to ln|S| and nothing to I_S).

use crate::error::{Error, Result};
use crate::symmetry::SpecSpace;
use crate::symmetry::ln_factorial;
use crate::symmetry::spec::{AxisPerm, PermutationSpec};

/// Each unit's values of a fixed tensor that one permutation moves, as exact bit patterns
/// (−0 as +0), in row-major order within the unit's slice; with the permutation's index.
///
/// # Errors
///
/// [`Error::Spec`] naming the tensor when permutations act on two or more of its axes
/// (its stabilizer is not a product of classes, and is not read).
pub(crate) fn unit_values(
    spec: &PermutationSpec,
    name: &str,
    shape: &[usize],
    axes: &[Option<AxisPerm>],
    values: &[f64],
) -> Result<(usize, Vec<Vec<u64>>)> {
    let permuted: Vec<(usize, AxisPerm)> = axes
        .iter()
        .enumerate()
        .filter_map(|(x, a)| a.map(|a| (x, a)))
        .collect();
    let [(axis, a)] = permuted[..] else {
        let mut perms: Vec<String> = permuted
            .iter()
            .map(|(_, a)| format!("`{}`", spec.permutations()[a.perm].0))
            .collect();
        perms.dedup();
        return Err(Error::Spec(format!(
            "fixed tensor `{name}` is not invariant under {}, acting on {} of its axes: a deterministic tensor is read under a permutation of one axis only (give it a σ, or leave it out of the spec if the model does not permute it)",
            perms.join(" and "),
            permuted.len()
        )));
    };
    let n = spec.permutations()[a.perm].1;
    let inner: usize = shape[axis + 1..].iter().product();
    let mut rows = vec![Vec::new(); n];
    for (flat, &v) in values.iter().enumerate() {
        let unit = (flat / inner) % shape[axis] / a.block;
        let v = if v == 0.0 { 0.0 } else { v };
        rows[unit].push(v.to_bits());
    }
    Ok((a.perm, rows))
}

/// Class labels of units with equal signatures, numbered by first appearance.
pub(crate) fn classes(signatures: &[Vec<u64>]) -> Vec<usize> {
    let mut seen: Vec<&Vec<u64>> = Vec::new();
    signatures
        .iter()
        .map(|s| match seen.iter().position(|t| *t == s) {
            Some(c) => c,
            None => {
                seen.push(s);
                seen.len() - 1
            }
        })
        .collect()
}

/// The stabilizer of a space's fixed tensors as a space of its own.
#[derive(Clone, Debug)]
pub struct Stabilizer {
    /// The variational tensors split by class, under the stabilizer's permutations;
    /// `None` when no permutation is left (every unit pinned alone, or tied only to units
    /// that move no variational tensor): then I = ln|G| − ln|S| for every ω.
    pub space: Option<SpecSpace>,
    /// `gather[j]`: the original flat index of the reduced vector's coordinate `j`.
    pub gather: Vec<usize>,
    /// ln|G| − ln|S|: what the pinned units add to I exactly.
    pub ln_offset: f64,
    /// ln|G| of the full group.
    pub ln_group_order: f64,
}

/// The units of one permuted axis of a reduced tensor: a segment per class (or per unit
/// alone), each the original indices along the axis, and its new permutation, if any.
type Segments = Vec<(Vec<usize>, Option<usize>)>;

impl Stabilizer {
    /// The stabilizer of `space`'s fixed tensors, or `None` when they pin nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Spec`] if the reduced spec does not check (not expected).
    pub fn of(space: &SpecSpace) -> Result<Option<Self>> {
        let pins = space.pins();
        if pins.iter().all(Option::is_none) {
            return Ok(None);
        }
        let perms = space.spec().permutations();
        let ln_group_order: f64 = perms.iter().map(|(_, n)| ln_factorial(*n)).sum();
        // Per original permutation: its classes (units in order), and the new permutation
        // of each class of two or more units; unpinned permutations stay whole.
        let mut new_perms: Vec<usize> = Vec::new();
        let mut per_perm: Vec<Vec<(Vec<usize>, Option<usize>)>> = Vec::new();
        for (k, (_, n)) in perms.iter().enumerate() {
            let groups: Vec<Vec<usize>> = match &pins[k] {
                None => vec![(0..*n).collect()],
                Some(labels) => {
                    let n_classes = labels.iter().max().map_or(0, |m| m + 1);
                    let mut g = vec![Vec::new(); n_classes];
                    for (u, &c) in labels.iter().enumerate() {
                        g[c].push(u);
                    }
                    g
                }
            };
            let mut entries = Vec::new();
            for units in groups {
                let perm = (units.len() >= 2).then(|| {
                    new_perms.push(units.len());
                    new_perms.len() - 1
                });
                entries.push((units, perm));
            }
            per_perm.push(entries);
        }
        // Split every variational tensor along its permuted axes.
        let mut layout: Vec<(String, Vec<usize>)> = Vec::new();
        let mut axes_of: Vec<Vec<Option<AxisPerm>>> = Vec::new();
        let mut gather: Vec<usize> = Vec::new();
        for (t, (_, shape, base, axes)) in space.tensor_parts().enumerate() {
            let segments: Vec<Segments> = shape
                .iter()
                .zip(axes)
                .map(|(&len, a)| match a {
                    None => vec![((0..len).collect(), None)],
                    Some(a) => per_perm[a.perm]
                        .iter()
                        .map(|(units, perm)| {
                            let idx = units
                                .iter()
                                .flat_map(|&u| u * a.block..(u + 1) * a.block)
                                .collect();
                            (idx, *perm)
                        })
                        .collect(),
                })
                .collect();
            let strides: Vec<usize> = (0..shape.len())
                .map(|x| shape[x + 1..].iter().product())
                .collect();
            // Every combination of one segment per axis is a piece, in row-major order.
            let mut choice = vec![0usize; shape.len()];
            'pieces: loop {
                let parts: Vec<&(Vec<usize>, Option<usize>)> =
                    choice.iter().zip(&segments).map(|(&c, s)| &s[c]).collect();
                let piece_shape: Vec<usize> = parts.iter().map(|p| p.0.len()).collect();
                let piece_axes: Vec<Option<AxisPerm>> = parts
                    .iter()
                    .zip(axes)
                    .map(|(p, a)| match (p.1, a) {
                        (Some(perm), Some(a)) => Some(AxisPerm {
                            perm,
                            block: a.block,
                        }),
                        _ => None,
                    })
                    .collect();
                let piece_len: usize = piece_shape.iter().product();
                if piece_len > 0 {
                    let mut idx = vec![0usize; shape.len()];
                    for _ in 0..piece_len {
                        let flat: usize = idx
                            .iter()
                            .zip(&parts)
                            .zip(&strides)
                            .map(|((&i, p), &st)| p.0[i] * st)
                            .sum();
                        gather.push(base + flat);
                        for (i, len) in idx.iter_mut().zip(&piece_shape).rev() {
                            *i += 1;
                            if *i < *len {
                                break;
                            }
                            *i = 0;
                        }
                    }
                    layout.push((format!("t{t:05}.{}", layout.len()), piece_shape));
                    axes_of.push(piece_axes);
                }
                for (c, s) in choice.iter_mut().zip(&segments).rev() {
                    *c += 1;
                    if *c < s.len() {
                        continue 'pieces;
                    }
                    *c = 0;
                }
                break;
            }
        }
        // Drop the permutations that move no variational piece: their units are
        // identical under q.
        let used: Vec<bool> = (0..new_perms.len())
            .map(|p| axes_of.iter().flatten().flatten().any(|a| a.perm == p))
            .collect();
        let renumber: Vec<Option<usize>> = used
            .iter()
            .scan(0usize, |next, &u| {
                Some(u.then(|| {
                    *next += 1;
                    *next - 1
                }))
            })
            .collect();
        let kept: Vec<usize> = new_perms
            .iter()
            .zip(&used)
            .filter_map(|(&n, &u)| u.then_some(n))
            .collect();
        let ln_stabilizer: f64 = new_perms.iter().map(|&n| ln_factorial(n)).sum();
        // The reduced spec's JSON: names that sort in the order built here.
        let perm_name = |p: usize| format!("s{p:05}");
        let axes_json: serde_json::Map<String, serde_json::Value> = layout
            .iter()
            .zip(&axes_of)
            .map(|((name, _), axes)| {
                let list: Vec<serde_json::Value> = axes
                    .iter()
                    .map(
                        |a| match a.and_then(|a| renumber[a.perm].map(|p| (p, a.block))) {
                            None => serde_json::Value::Null,
                            Some((p, 1)) => serde_json::json!(perm_name(p)),
                            Some((p, b)) => serde_json::json!({"perm": perm_name(p), "block": b}),
                        },
                    )
                    .collect();
                (name.clone(), serde_json::Value::Array(list))
            })
            .collect();
        let perms_json: serde_json::Map<String, serde_json::Value> = kept
            .iter()
            .enumerate()
            .map(|(p, &n)| (perm_name(p), serde_json::json!(n)))
            .collect();
        if kept.is_empty() {
            return Ok(Some(Stabilizer {
                space: None,
                gather,
                ln_offset: ln_group_order - ln_stabilizer,
                ln_group_order,
            }));
        }
        let text = serde_json::json!({"permutations": perms_json, "axes": axes_json}).to_string();
        let spec = PermutationSpec::from_json(&text)?;
        let reduced = SpecSpace::new(spec, &layout, &[])?;
        Ok(Some(Stabilizer {
            space: Some(reduced),
            gather,
            ln_offset: ln_group_order - ln_stabilizer,
            ln_group_order,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_number_equal_signatures_by_first_appearance() {
        let s = |v: &[u64]| v.to_vec();
        assert_eq!(
            classes(&[s(&[1]), s(&[2]), s(&[1]), s(&[3])]),
            vec![0, 1, 0, 2]
        );
    }
}
