//! Permutation specs (docs/specs.md; docs/mathematics.md §2, eq. 2'): a description of a
//! weight-space permutation group for any architecture, in the manner of weight-matching
//! tools. A spec names the permutations and their sizes, and says for every tensor which
//! permutation acts on each of its axes, or none. An axis may be permuted **in blocks**:
//! a flatten of C channels × S positions, channel-major, is the axis
//! `{"perm": "c1", "block": S}`, whose index `c·S + s` moves to `τ(c)·S + s`. The same
//! permutation may act on many tensors (a residual stream ties them).
//!
//! ```json
//! {"permutations": {"c1": 3, "h1": 4},
//!  "axes": {"conv1.kernel": ["c1", null, null, null], "conv1.bias": ["c1"],
//!           "fc1.weight": ["h1", {"perm": "c1", "block": 4}], "fc1.bias": ["h1"],
//!           "fc2.weight": [null, "h1"], "fc2.bias": [null]}}
//! ```
//!
//! Tensors are named without their mean/scale marker (`fc1.weight` for `fc1.weight_mu`).
//! An MLP's spec is derived from its widths ([`PermutationSpec::mlp`]) and acts on the
//! flat vector exactly as [`ActionMap`] does; a chain of linear and convolution layers
//! gets its spec from [`PermutationSpec::sequential`]. Here: parsing, checks against the
//! tensor shapes (each bad spec a named [`Error::Spec`]), the group order, and the action
//! on a flat vector laid out tensor by tensor. [`crate::symmetry::space`] turns a checked
//! spec into the weight space the posterior and the estimators use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::symmetry::{ActionMap, GroupElement, SpecSpace, WeightSpace, ln_factorial};
use crate::weights::Arch;

/// One permuted axis: which permutation, and the block size of its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisPerm {
    /// The permutation's index in [`PermutationSpec::permutations`].
    pub perm: usize,
    /// Consecutive indices that move together (1: none).
    pub block: usize,
}

/// A permutation group over named tensors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermutationSpec {
    /// Names and sizes, in natural order of the names (`h1 < h2 < h10`): the order of a
    /// [`GroupElement`]'s permutations.
    permutations: Vec<(String, usize)>,
    /// Per tensor, in name order: one entry per axis.
    axes: BTreeMap<String, Vec<Option<AxisPerm>>>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum AxisJson {
    Perm(String),
    Block { perm: String, block: usize },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecJson {
    permutations: Unique<usize>,
    axes: Unique<Vec<Option<AxisJson>>>,
}

/// A JSON object read into a map, refusing a key given twice (serde keeps the last,
/// which would read a spec other than the one written).
struct Unique<V>(BTreeMap<String, V>);

impl<V> std::ops::Deref for Unique<V> {
    type Target = BTreeMap<String, V>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<V> FromIterator<(String, V)> for Unique<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        Unique(iter.into_iter().collect())
    }
}

impl<V: Serialize> Serialize for Unique<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Unique<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = Unique<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object with distinct keys")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut m = BTreeMap::new();
                while let Some((k, v)) = a.next_entry::<String, V>()? {
                    if m.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!(
                            "the key `{k}` is given twice"
                        )));
                    }
                    m.insert(k, v);
                }
                Ok(Unique(m))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

mod erased {
    /// Compact JSON of one value.
    pub(super) trait Line {
        fn line(&self) -> String;
    }
    impl<T: serde::Serialize> Line for T {
        fn line(&self) -> String {
            serde_json::to_string(self).expect("a spec serializes")
        }
    }
}

/// Splits a name into text and number chunks for natural ordering (`h1 < h2 < h10`,
/// `fc1 < fc2 < fc10`).
pub(crate) fn natural_key(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let (mut text, mut num) = (String::new(), None::<u64>);
    for ch in s.chars() {
        match ch.to_digit(10) {
            Some(d) => num = Some(num.unwrap_or(0).saturating_mul(10).saturating_add(d as u64)),
            None => {
                if let Some(n) = num.take() {
                    out.push((std::mem::take(&mut text), n));
                }
                text.push(ch);
            }
        }
    }
    out.push((text, num.unwrap_or(0)));
    out
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Spec(reason.into())
}

impl PermutationSpec {
    /// Parses a spec from its JSON text.
    ///
    /// # Errors
    ///
    /// [`Error::Spec`] naming what is wrong: malformed JSON, a size of 0, an
    /// axis naming an undeclared permutation, a block of 0, a permutation that acts on
    /// no axis.
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: SpecJson =
            serde_json::from_str(text).map_err(|e| bad(format!("not a spec: {e}")))?;
        if raw.permutations.is_empty() {
            return Err(bad("the spec declares no permutation"));
        }
        let mut permutations: Vec<(String, usize)> = raw.permutations.0.into_iter().collect();
        permutations.sort_by_key(|(n, _)| natural_key(n));
        for (name, size) in &permutations {
            if *size == 0 {
                return Err(bad(format!("permutation `{name}` has size 0")));
            }
        }
        let index = |name: &str, tensor: &str| {
            permutations
                .iter()
                .position(|(n, _)| n == name)
                .ok_or_else(|| {
                    bad(format!(
                        "tensor `{tensor}` names the undeclared permutation `{name}`"
                    ))
                })
        };
        let mut axes = BTreeMap::new();
        let mut used = vec![false; permutations.len()];
        for (tensor, list) in raw.axes.0 {
            let mut parsed = Vec::with_capacity(list.len());
            for axis in list {
                parsed.push(match axis {
                    None => None,
                    Some(AxisJson::Perm(p)) => Some(AxisPerm {
                        perm: index(&p, &tensor)?,
                        block: 1,
                    }),
                    Some(AxisJson::Block { perm, block }) => {
                        if block == 0 {
                            return Err(bad(format!("tensor `{tensor}`: block 0 for `{perm}`")));
                        }
                        Some(AxisPerm {
                            perm: index(&perm, &tensor)?,
                            block,
                        })
                    }
                });
            }
            for a in parsed.iter().flatten() {
                used[a.perm] = true;
            }
            axes.insert(tensor, parsed);
        }
        if let Some(k) = used.iter().position(|u| !u) {
            return Err(bad(format!(
                "permutation `{}` acts on no axis",
                permutations[k].0
            )));
        }
        Ok(PermutationSpec { permutations, axes })
    }

    /// The spec as JSON (the format [`from_json`](Self::from_json) reads).
    pub fn to_json(&self) -> String {
        let raw = SpecJson {
            permutations: self.permutations.iter().cloned().collect(),
            axes: self
                .axes
                .iter()
                .map(|(t, list)| {
                    let list = list
                        .iter()
                        .map(|a| {
                            a.map(|a| {
                                let perm = self.permutations[a.perm].0.clone();
                                if a.block == 1 {
                                    AxisJson::Perm(perm)
                                } else {
                                    AxisJson::Block {
                                        perm,
                                        block: a.block,
                                    }
                                }
                            })
                        })
                        .collect();
                    (t.clone(), list)
                })
                .collect(),
        };
        // One line per permutation list and per tensor: easy to read and to edit.
        let line = |v: &dyn erased::Line| v.line();
        let mut out = String::from("{\n  \"permutations\": ");
        out += &line(&raw.permutations);
        out += ",\n  \"axes\": {";
        for (i, (tensor, axes)) in raw.axes.iter().enumerate() {
            out += if i == 0 { "\n    " } else { ",\n    " };
            out += &line(tensor);
            out += ": ";
            out += &line(axes);
        }
        out += "\n  }\n}";
        out
    }

    /// The spec of an MLP: permutation `h{l}` of size `d_l` for hidden layer l; tensor
    /// `layers.{i}.weight` has axes `[h_{i+1}, h_i]` and `layers.{i}.bias` `[h_{i+1}]`,
    /// with no permutation on the input and output axes. Fixed layers, which are not
    /// part of ω, are left out.
    pub fn mlp(arch: &Arch) -> Self {
        let widths = arch.widths();
        let n_hidden = widths.len() - 2;
        let permutations = (1..=n_hidden)
            .map(|l| (format!("h{l}"), widths[l]))
            .collect();
        let perm = |k: usize| {
            (k >= 1 && k <= n_hidden).then_some(AxisPerm {
                perm: k - 1,
                block: 1,
            })
        };
        let mut axes = BTreeMap::new();
        for i in 0..arch.n_layers() {
            if arch.fixed(i).is_some() {
                continue;
            }
            axes.insert(format!("layers.{i}.weight"), vec![perm(i + 1), perm(i)]);
            if arch.has_bias(i) {
                axes.insert(format!("layers.{i}.bias"), vec![perm(i + 1)]);
            }
        }
        PermutationSpec { permutations, axes }
    }

    /// The spec of a plain chain of linear and convolution layers in the given order
    /// (`mi-est spec --sequential`): the outputs of every layer but the last are permuted
    /// by `h{l}` (`h1` for the first layer's), acting on that layer's weight (or kernel)
    /// rows and bias, and on the next layer's input axis. Where a convolution feeds a
    /// linear layer through a flatten, the linear layer's input axis is permuted in blocks
    /// of `inputs / channels` (channel-major flatten). Each layer is given as its main
    /// tensor's name and shape (`[out, in]` or `[out, in, k…]`) and its bias's name.
    ///
    /// # Errors
    ///
    /// [`Error::Spec`] naming the layer whose shape does not chain with the
    /// previous one's, or a main tensor of rank below 2; fewer than two layers (nothing
    /// to permute).
    pub fn sequential(layers: &[(String, Vec<usize>, Option<String>)]) -> Result<Self> {
        if layers.len() < 2 {
            return Err(bad(
                "a sequential spec needs at least two layers (the hidden units of one are permuted)",
            ));
        }
        let mut permutations = Vec::new();
        let mut axes = BTreeMap::new();
        let last = layers.len() - 1;
        for (l, (name, shape, bias)) in layers.iter().enumerate() {
            if shape.len() < 2 || shape[0] == 0 || shape[1] == 0 {
                return Err(bad(format!(
                    "tensor `{name}` has shape {shape:?}; a linear weight is [out, in], a convolution kernel [out, in, k…]"
                )));
            }
            let out = (l < last).then(|| {
                permutations.push((format!("h{}", l + 1), shape[0]));
                AxisPerm { perm: l, block: 1 }
            });
            let input = match l.checked_sub(1).map(|p| (p, &layers[p].1)) {
                None => None,
                Some((p, prev)) if prev[0] == shape[1] => Some(AxisPerm { perm: p, block: 1 }),
                Some((p, prev))
                    if prev.len() > 2 && shape.len() == 2 && shape[1] % prev[0] == 0 =>
                {
                    Some(AxisPerm {
                        perm: p,
                        block: shape[1] / prev[0],
                    })
                }
                Some((_, prev)) => {
                    return Err(bad(format!(
                        "tensor `{name}` takes {} inputs, which neither equals the {} outputs of `{}` nor is a whole flatten of its channels",
                        shape[1],
                        prev[0],
                        layers[l - 1].0
                    )));
                }
            };
            let mut list = vec![out, input];
            list.resize(shape.len(), None);
            axes.insert(name.clone(), list);
            if let Some(b) = bias {
                axes.insert(b.clone(), vec![out]);
            }
        }
        Ok(PermutationSpec { permutations, axes })
    }

    /// The permutations' names and sizes, in the order of a [`GroupElement`]'s.
    pub fn permutations(&self) -> &[(String, usize)] {
        &self.permutations
    }

    /// The axes of `tensor`, if the spec names it.
    pub fn axes(&self, tensor: &str) -> Option<&[Option<AxisPerm>]> {
        self.axes.get(tensor).map(Vec::as_slice)
    }

    /// `ln|G| = Σ ln(size!)`.
    pub fn ln_order(&self) -> f64 {
        self.permutations
            .iter()
            .map(|(_, n)| ln_factorial(*n))
            .sum()
    }

    /// Checks the spec against the tensors of a flat vector, given in layout order as
    /// (name, shape).
    ///
    /// # Errors
    ///
    /// [`Error::Spec`] naming the tensor: one the spec does not know or one
    /// it names that is absent, a number of axes other than the tensor's rank, an axis
    /// whose length is not the permutation's size × its block.
    pub fn check_layout(&self, layout: &[(String, Vec<usize>)]) -> Result<()> {
        for (name, shape) in layout {
            let axes = self
                .axes
                .get(name)
                .ok_or_else(|| bad(format!("tensor `{name}` is not in the spec")))?;
            if axes.len() != shape.len() {
                return Err(bad(format!(
                    "tensor `{name}` has {} axes (shape {shape:?}) but the spec gives {}",
                    shape.len(),
                    axes.len()
                )));
            }
            for (k, (a, &len)) in axes.iter().zip(shape).enumerate() {
                if let Some(a) = a {
                    let (perm, size) = &self.permutations[a.perm];
                    let covers = size.checked_mul(a.block);
                    if covers != Some(len) {
                        return Err(bad(format!(
                            "tensor `{name}` axis {k} has length {len}, but `{perm}` of size {size} in blocks of {} covers {}",
                            a.block,
                            covers.map_or("more than any length".to_string(), |c| c.to_string())
                        )));
                    }
                }
            }
        }
        if let Some(missing) = self
            .axes
            .keys()
            .find(|t| !layout.iter().any(|(n, _)| n == *t))
        {
            return Err(bad(format!(
                "the spec names tensor `{missing}`, which the posterior lacks"
            )));
        }
        Ok(())
    }

    /// The action of `g` (one permutation per [`permutations`](Self::permutations)
    /// entry) on a flat vector laid out tensor by tensor (row-major within a tensor).
    ///
    /// # Errors
    ///
    /// Those of [`check_layout`](Self::check_layout); [`Error::Spec`] when
    /// `g` does not have one permutation of the right size per entry.
    pub fn action(&self, layout: &[(String, Vec<usize>)], g: &GroupElement) -> Result<ActionMap> {
        let space = WeightSpace::from(SpecSpace::new(self.clone(), layout, &[])?);
        let perms = g.perms();
        if perms.len() != self.permutations.len()
            || perms
                .iter()
                .zip(&self.permutations)
                .any(|(p, (_, n))| p.len() != *n)
        {
            return Err(bad(
                "the group element does not match the spec's permutations",
            ));
        }
        Ok(space.action(g))
    }
}

/// The layout of an MLP's flat vector as (tensor, shape), in [`PermutationSpec::mlp`]'s
/// names.
pub fn mlp_layout(arch: &Arch) -> Vec<(String, Vec<usize>)> {
    let widths = arch.widths();
    let mut out = Vec::new();
    for i in 0..arch.n_layers() {
        if arch.fixed(i).is_some() {
            continue;
        }
        out.push((format!("layers.{i}.weight"), vec![widths[i + 1], widths[i]]));
        if arch.has_bias(i) {
            out.push((format!("layers.{i}.bias"), vec![widths[i + 1]]));
        }
    }
    out
}

/// The tensors of the module docs' example (conv(1→3, 2×2 on 3×3) → flatten (3 × 4) →
/// linear(12→4) → linear(4→2)), in layout order, for the tests and the fuzz target.
#[cfg(any(test, feature = "train"))]
pub(crate) fn conv_example_layout() -> Vec<(String, Vec<usize>)> {
    [
        ("conv1.kernel", vec![3, 1, 2, 2]),
        ("conv1.bias", vec![3]),
        ("fc1.weight", vec![4, 12]),
        ("fc1.bias", vec![4]),
        ("fc2.weight", vec![2, 4]),
        ("fc2.bias", vec![2]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect()
}

#[cfg(test)]
mod tests;
