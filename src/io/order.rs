//! The forward order of a file's layers, from something that states it.
//!
//! A safetensors file keeps no order of its tensors (writers sort them by dtype and
//! name), so names alone cannot tell whether `encoder` comes before `decoder`: both
//! orders of a 3→5→3 net chain by shape (widths [3, 5, 3] and [5, 3, 5]) and give
//! different I. The order is taken, in this precedence, from
//!
//! 1. the caller (`--layers a,b,…`, or `layers=` in Python);
//! 2. a permutation spec, which names every tensor (the flat layout's order does not
//!    change I);
//! 3. numeric indices in the names, when every two layers first differ in a number
//!    (`layers.0 < layers.1`, `fc1 < fc2 < fc10`);
//! 4. the order the file lists its tensors in, where the format keeps one (the members
//!    of an `.npz` archive, a `state_dict` handed over from Python in module order);
//! 5. the shapes, when exactly one order of the layers chains (each layer's inputs are
//!    the previous layer's outputs).
//!
//! When none of them settles it (two chains fit, or none), reading stops with an error
//! that names the candidates and how to state the order.

use std::collections::{BTreeMap, HashMap};

use crate::error::Result;

/// How the order of a file's layers was settled (`mi-est inspect` prints it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerOrder {
    /// The file has one layer.
    Single,
    /// Given by the caller (`--layers`).
    Given,
    /// Read under a permutation spec, which names every tensor (order does not matter).
    Spec,
    /// Numeric indices in the layer names.
    Indices,
    /// The order in which the file lists its tensors (npz members, a state_dict).
    File,
    /// The only order in which the layers' shapes chain.
    OnlyChain,
}

impl std::fmt::Display for LayerOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayerOrder::Single => "one layer",
            LayerOrder::Given => "as given (--layers)",
            LayerOrder::Spec => "named by the permutation spec",
            LayerOrder::Indices => "from the numeric indices in the names",
            LayerOrder::File => "the order the file lists its tensors in",
            LayerOrder::OnlyChain => {
                "the only order in which the shapes chain (the names state none)"
            }
        })
    }
}

/// The words that tell a user how to state the order.
pub const HOW_TO_STATE: &str = "state the forward order with `--layers name1,name2,…` (`layers=[…]` in Python), name the layers with indices (`layers.0`, `layers.1`, …), or save the arrays as an .npz in forward order";

/// A layer's shape for chaining: inputs, outputs, and whether it is a convolution (whose
/// outputs may be flattened into a multiple of its channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainShape {
    /// Inputs (columns of the weight, input channels of a kernel).
    pub d_in: usize,
    /// Outputs (rows of the weight, output channels of a kernel).
    pub d_out: usize,
    /// A convolution kernel.
    pub conv: bool,
}

/// A natural-sort key that keeps every name distinct: text runs and numbers, with the
/// number's digits so that `layers.0` and `layers.00` differ.
type Key = Vec<(String, Option<u64>)>;

fn key(name: &str) -> Key {
    let mut out = Vec::new();
    let (mut text, mut num) = (String::new(), None::<u64>);
    for ch in name.chars() {
        match ch.to_digit(10) {
            Some(d) => num = Some(num.unwrap_or(0).saturating_mul(10).saturating_add(d as u64)),
            None => {
                if let Some(n) = num.take() {
                    out.push((std::mem::take(&mut text), Some(n)));
                }
                text.push(ch);
            }
        }
    }
    out.push((text, num));
    out
}

/// Whether `a < b` is stated by a number: the first place where their keys differ has
/// the same text before two different numbers.
fn differ_by_number(a: &Key, b: &Key) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x == y {
            continue;
        }
        return x.0 == y.0 && x.1.is_some() && y.1.is_some();
    }
    false
}

/// Rejects two layer names that one index reading cannot tell apart
/// (`layers.0` and `layers.00`, `fc1` and `fc01`).
fn check_aliases(names: &[&str]) -> std::result::Result<(), String> {
    let mut seen: HashMap<Vec<(String, Option<u64>)>, &str> = HashMap::new();
    for &n in names {
        if let Some(first) = seen.insert(key(n), n) {
            return Err(format!(
                "layers `{first}` and `{n}` have the same index (a number written two ways); a file names each layer once"
            ));
        }
    }
    Ok(())
}

/// The most nodes the chain search visits before it gives up and asks for the order.
const CHAIN_SEARCH_BUDGET: u64 = 1_000_000;

/// Up to two orders of the layers in which each one's inputs are the previous one's
/// outputs; `Err` when the search would take too long.
fn chains(shapes: &[ChainShape]) -> std::result::Result<Vec<Vec<usize>>, ()> {
    let n = shapes.len();
    let fits = |a: usize, b: usize| {
        let (sa, sb) = (shapes[a], shapes[b]);
        sb.d_in == sa.d_out || (sa.conv && !sb.conv && sb.d_in % sa.d_out == 0)
    };
    let mut found = Vec::new();
    let mut path = Vec::with_capacity(n);
    let mut used = vec![false; n];
    let mut visits = 0u64;
    fn walk(
        n: usize,
        fits: &dyn Fn(usize, usize) -> bool,
        path: &mut Vec<usize>,
        used: &mut [bool],
        found: &mut Vec<Vec<usize>>,
        visits: &mut u64,
    ) -> std::result::Result<(), ()> {
        *visits += 1;
        if *visits > CHAIN_SEARCH_BUDGET {
            return Err(());
        }
        if path.len() == n {
            found.push(path.clone());
            return Ok(());
        }
        for next in 0..n {
            if used[next] || path.last().is_some_and(|&last| !fits(last, next)) {
                continue;
            }
            used[next] = true;
            path.push(next);
            walk(n, fits, path, used, found, visits)?;
            path.pop();
            used[next] = false;
            if found.len() >= 2 {
                return Ok(());
            }
        }
        Ok(())
    }
    walk(n, &fits, &mut path, &mut used, &mut found, &mut visits)?;
    Ok(found)
}

/// The widths a chain of layers gives (`[d_in of the first, d_out of each]`).
fn widths(shapes: &[ChainShape], order: &[usize]) -> Vec<usize> {
    let mut w = vec![shapes[order[0]].d_in];
    w.extend(order.iter().map(|&i| shapes[i].d_out));
    w
}

/// The forward order of `layers` (names with their chain shapes, in name order) and how
/// it was settled; `file_order` lists the layers in the order the file gives them, where
/// it keeps one; `given` is the caller's order; `spec` says the file is read under a
/// permutation spec.
///
/// # Errors
///
/// A message (for [`crate::error::Error::BadFile`]) naming the layers: two names with the
/// same index, a `given` list that names a layer the file lacks, misses one or names one
/// twice, and an order that nothing states (no chain, or two).
pub fn forward_order(
    layers: &[(String, Option<ChainShape>)],
    file_order: Option<&[String]>,
    given: Option<&[String]>,
    spec: bool,
) -> std::result::Result<(Vec<usize>, LayerOrder), String> {
    let names: Vec<&str> = layers.iter().map(|(n, _)| n.as_str()).collect();
    let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    if let Some(given) = given {
        let mut order = Vec::with_capacity(given.len());
        let mut named = vec![false; names.len()];
        for g in given {
            let Some(&i) = index.get(g.as_str()) else {
                return Err(format!(
                    "--layers names `{g}`, which is not a layer of the file (its layers: {})",
                    names.join(", ")
                ));
            };
            if std::mem::replace(&mut named[i], true) {
                return Err(format!("--layers names `{g}` twice"));
            }
            order.push(i);
        }
        if let Some(i) = named.iter().position(|n| !n) {
            return Err(format!(
                "--layers does not name layer `{}` (the file's layers: {})",
                names[i],
                names.join(", ")
            ));
        }
        return Ok((order, LayerOrder::Given));
    }
    check_aliases(&names)?;
    let mut natural: Vec<usize> = (0..names.len()).collect();
    natural.sort_by_key(|&i| key(names[i]));
    if spec {
        return Ok((natural, LayerOrder::Spec));
    }
    if names.len() == 1 {
        return Ok((natural, LayerOrder::Single));
    }
    if natural
        .windows(2)
        .all(|w| differ_by_number(&key(names[w[0]]), &key(names[w[1]])))
    {
        return Ok((natural, LayerOrder::Indices));
    }
    if let Some(file_order) = file_order {
        let mut order: Vec<usize> = Vec::with_capacity(names.len());
        for n in file_order {
            if let Some(&i) = index.get(n.as_str())
                && !order.contains(&i)
            {
                order.push(i);
            }
        }
        if order.len() == names.len() {
            return Ok((order, LayerOrder::File));
        }
    }
    // Only the shapes are left. A layer without a weight or kernel mean cannot chain;
    // the natural order lets the reader name what is missing.
    let Some(shapes): Option<Vec<ChainShape>> = layers.iter().map(|(_, s)| *s).collect() else {
        return Ok((natural, LayerOrder::OnlyChain));
    };
    let listed = names.join(", ");
    match chains(&shapes) {
        Err(()) => Err(format!(
            "the names of layers {listed} state no order, and too many orders of their shapes chain to try them all; {HOW_TO_STATE}"
        )),
        Ok(found) if found.len() == 1 => Ok((found[0].clone(), LayerOrder::OnlyChain)),
        Ok(found) if found.is_empty() => Err(format!(
            "the names of layers {listed} state no order, and their shapes chain in no order; {HOW_TO_STATE}"
        )),
        Ok(found) => {
            let show = |o: &[usize]| {
                format!(
                    "{} (widths {:?})",
                    o.iter().map(|&i| names[i]).collect::<Vec<_>>().join(" → "),
                    widths(&shapes, o)
                )
            };
            Err(format!(
                "the layer order is ambiguous: the names state none (no numeric indices, and a safetensors file keeps no order), and the shapes chain both as {} and as {}; {HOW_TO_STATE}",
                show(&found[0]),
                show(&found[1])
            ))
        }
    }
}

/// Splits a `--layers` value into names (commas, surrounding blanks dropped).
///
/// # Errors
///
/// [`crate::error::Error::InvalidParameter`] for an empty name.
pub fn parse_layer_list(s: &str) -> Result<Vec<String>> {
    s.split(',')
        .map(|n| {
            let n = n.trim();
            if n.is_empty() {
                Err(crate::error::Error::invalid(
                    "--layers",
                    s,
                    "an empty layer name (two commas, or a comma at an end)",
                ))
            } else {
                Ok(n.to_string())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lin(d_in: usize, d_out: usize) -> Option<ChainShape> {
        Some(ChainShape {
            d_in,
            d_out,
            conv: false,
        })
    }

    fn order_of(
        layers: &[(&str, Option<ChainShape>)],
        file: Option<&[&str]>,
    ) -> std::result::Result<(Vec<String>, LayerOrder), String> {
        let layers: Vec<(String, Option<ChainShape>)> =
            layers.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        let file: Option<Vec<String>> = file.map(|f| f.iter().map(|s| s.to_string()).collect());
        forward_order(&layers, file.as_deref(), None, false)
            .map(|(o, how)| (o.iter().map(|&i| layers[i].0.clone()).collect(), how))
    }

    #[test]
    fn numeric_indices_state_the_order() {
        let (o, how) = order_of(
            &[("fc10", lin(5, 2)), ("fc2", lin(5, 5)), ("fc1", lin(3, 5))],
            None,
        )
        .unwrap();
        assert_eq!(o, ["fc1", "fc2", "fc10"]);
        assert_eq!(how, LayerOrder::Indices);
    }

    #[test]
    fn two_chains_without_a_stated_order_are_refused_naming_both() {
        let e = order_of(&[("encoder", lin(3, 5)), ("decoder", lin(5, 3))], None).unwrap_err();
        assert!(e.contains("encoder → decoder (widths [3, 5, 3])"), "{e}");
        assert!(e.contains("decoder → encoder (widths [5, 3, 5])"), "{e}");
        assert!(e.contains("--layers"), "{e}");
    }

    #[test]
    fn file_order_settles_what_names_do_not() {
        let (o, how) = order_of(
            &[("encoder", lin(3, 5)), ("decoder", lin(5, 3))],
            Some(&["encoder", "decoder"]),
        )
        .unwrap();
        assert_eq!(
            (o, how),
            (
                vec!["encoder".to_string(), "decoder".into()],
                LayerOrder::File
            )
        );
    }

    #[test]
    fn the_only_chain_is_taken_and_said() {
        // features.0 (3→6), features.2 (6→4), classifier.1 (4→2): `classifier` sorts first.
        let (o, how) = order_of(
            &[
                ("classifier.1", lin(4, 2)),
                ("features.0", lin(3, 6)),
                ("features.2", lin(6, 4)),
            ],
            None,
        )
        .unwrap();
        assert_eq!(o, ["features.0", "features.2", "classifier.1"]);
        assert_eq!(how, LayerOrder::OnlyChain);
    }

    #[test]
    fn aliased_indices_are_refused() {
        let e = order_of(&[("layers.0", lin(3, 5)), ("layers.00", lin(5, 2))], None).unwrap_err();
        assert!(e.contains("`layers.0` and `layers.00`"), "{e}");
    }

    #[test]
    fn a_given_order_must_name_every_layer_once() {
        let layers = vec![("a".to_string(), lin(3, 5)), ("b".to_string(), lin(5, 3))];
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(forward_order(&layers, None, Some(&g(&["b", "a"])), false).is_ok());
        for (bad, words) in [
            (g(&["a"]), "does not name layer `b`"),
            (g(&["a", "a"]), "twice"),
            (g(&["a", "c"]), "`c`, which is not a layer"),
        ] {
            let e = forward_order(&layers, None, Some(&bad), false).unwrap_err();
            assert!(e.contains(words), "{e}");
        }
    }

    #[test]
    fn many_equal_square_layers_stop_at_two_chains() {
        // 30 layers of 4 → 4: 30! chains; the search stops at the second.
        let layers: Vec<(String, Option<ChainShape>)> = (0..30)
            .map(|i| (format!("l{}x", "a".repeat(i + 1)), lin(4, 4)))
            .collect();
        let e = forward_order(&layers, None, None, false).unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
    }

    #[test]
    fn a_layer_list_with_an_empty_name_is_refused() {
        assert_eq!(parse_layer_list("a, b").unwrap(), ["a", "b"]);
        assert!(parse_layer_list("a,,b").is_err());
    }
}
