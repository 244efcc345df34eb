use super::*;
use crate::rng::stream;
use crate::symmetry::{Group, Permutation};

const EXAMPLE: &str = r#"{"permutations": {"c1": 3, "h1": 4},
    "axes": {"conv1.kernel": ["c1", null, null, null], "conv1.bias": ["c1"],
             "fc1.weight": ["h1", {"perm": "c1", "block": 4}], "fc1.bias": ["h1"],
             "fc2.weight": [null, "h1"], "fc2.bias": [null]}}"#;

/// An MLP's derived spec acts exactly as the widths path, for random elements of
/// nets with and without biases and with a fixed layer.
#[test]
fn an_mlp_spec_acts_as_the_widths_path_bit_for_bit() {
    let arches = [
        Arch::builder(vec![3, 4, 2]).check().unwrap(),
        Arch::builder(vec![2, 3, 5, 4, 1]).check().unwrap(),
        Arch::builder(vec![2, 3, 4, 2]).bias(false).check().unwrap(),
        Arch::builder(vec![1, 2, 1])
            .bias(false)
            .fixed_layer(1, vec![1.0, 1.0], None)
            .check()
            .unwrap(),
    ];
    let mut rng = stream(16, 0);
    for arch in &arches {
        let spec = PermutationSpec::mlp(arch);
        let layout = mlp_layout(arch);
        assert_eq!(
            layout
                .iter()
                .map(|(_, s)| s.iter().product::<usize>())
                .sum::<usize>(),
            arch.n_params()
        );
        let group = Group::of(arch);
        assert_eq!(spec.ln_order().to_bits(), group.ln_order().to_bits());
        for _ in 0..20 {
            let g = group.random(&mut rng);
            assert_eq!(spec.action(&layout, &g).unwrap(), ActionMap::new(arch, &g));
        }
        // The JSON round trip keeps the spec.
        assert_eq!(PermutationSpec::from_json(&spec.to_json()).unwrap(), spec);
    }
}

/// The issue's conv → flatten → linear → linear example, against a hand-written
/// action: channel c's kernel slice and bias move with c, and so does the block of 4
/// columns of fc1 that channel c feeds; hidden unit h moves its row of fc1, its bias
/// and its column of fc2.
#[test]
fn the_conv_example_moves_channels_with_their_blocks() {
    let spec = PermutationSpec::from_json(EXAMPLE).unwrap();
    assert_eq!(
        spec.permutations(),
        &[("c1".to_string(), 3), ("h1".to_string(), 4)]
    );
    let layout = conv_example_layout();
    let c = Permutation::from_forward(vec![2, 0, 1]).unwrap();
    let h = Permutation::from_forward(vec![1, 3, 0, 2]).unwrap();
    let g = GroupElement::new(vec![c.clone(), h.clone()]);
    let map = spec.action(&layout, &g).unwrap();
    let v: Vec<f64> = (0..map.target().len()).map(|i| i as f64).collect();
    let gv = map.apply(&v);
    // Offsets: kernel 0..12, conv bias 12..15, fc1.weight 15..63, fc1.bias 63..67,
    // fc2.weight 67..75, fc2.bias 75..77.
    for ch in 0..3 {
        for k in 0..4 {
            assert_eq!(gv[c.forward()[ch] * 4 + k], v[ch * 4 + k]);
        }
        assert_eq!(gv[12 + c.forward()[ch]], v[12 + ch]);
    }
    for u in 0..4 {
        for ch in 0..3 {
            for s in 0..4 {
                let (src, dst) = (
                    u * 12 + ch * 4 + s,
                    h.forward()[u] * 12 + c.forward()[ch] * 4 + s,
                );
                assert_eq!(gv[15 + dst], v[15 + src]);
            }
        }
        assert_eq!(gv[63 + h.forward()[u]], v[63 + u]);
        for o in 0..2 {
            assert_eq!(gv[67 + o * 4 + h.forward()[u]], v[67 + o * 4 + u]);
        }
    }
    assert_eq!(gv[75..], v[75..]);
    assert!((spec.ln_order() - (6f64.ln() + 24f64.ln())).abs() < 1e-12);
}

#[test]
fn bad_specs_are_named() {
    let layout = conv_example_layout();
    let spec = PermutationSpec::from_json(EXAMPLE).unwrap();
    let mut wrong = layout.clone();
    wrong[2].1 = vec![4, 13];
    let mut extra = layout.clone();
    extra.push(("fc3.weight".into(), vec![1, 2]));
    let mut fewer = layout.clone();
    fewer.pop();
    let mut rank = layout.clone();
    rank[1].1 = vec![3, 1];
    for (result, needle) in [
        (
            spec.check_layout(&wrong),
            "`fc1.weight` axis 1 has length 13, but `c1` of size 3 in blocks of 4 covers 12",
        ),
        (
            spec.check_layout(&extra),
            "tensor `fc3.weight` is not in the spec",
        ),
        (
            spec.check_layout(&fewer),
            "the spec names tensor `fc2.bias`, which the posterior lacks",
        ),
        (spec.check_layout(&rank), "tensor `conv1.bias` has 2 axes"),
    ] {
        let e = result.unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    for (text, needle) in [
        (
            r#"{"permutations": {"a": 0}, "axes": {"w": ["a"]}}"#,
            "`a` has size 0",
        ),
        (
            r#"{"permutations": {"a": 2}, "axes": {"w": ["b"]}}"#,
            "undeclared permutation `b`",
        ),
        (
            r#"{"permutations": {"a": 2, "b": 3}, "axes": {"w": ["a"]}}"#,
            "`b` acts on no axis",
        ),
        (
            r#"{"permutations": {"a": 2}, "axes": {"w": [{"perm": "a", "block": 0}]}}"#,
            "block 0",
        ),
        (r#"{"permutations": {"a": 2}}"#, "not a spec"),
    ] {
        let e = PermutationSpec::from_json(text).unwrap_err().to_string();
        assert!(e.contains(needle), "{text}: {e}");
    }
}
