//! Permutation specs (docs/specs.md), checked without trusting the spec code: every
//! network's forward pass and every group action is written out here by hand, per
//! architecture (a small CNN, a residual MLP whose stream permutation is tied across four
//! tensors, an attention block whose heads move in blocks), and the estimators are
//! compared with exact I by enumeration of the whole group.

use mi_est::rng::stream;
use mi_est::symmetry::spec::PermutationSpec;
use mi_est::symmetry::{GroupElement, SpecSpace, WeightSpace};
use rand::RngExt;
use rand_distr::StandardNormal;

/// One test architecture: its spec, tensor layout, a hand-written forward pass and a
/// hand-written action (`perms[k]` = τ_k as `forward`, in the spec's permutation order).
pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) spec: &'static str,
    pub(super) layout: Vec<(&'static str, Vec<usize>)>,
    pub(super) n_inputs: usize,
    pub(super) forward: fn(&Params, &[f64]) -> Vec<f64>,
    pub(super) act: fn(&Params, &[Vec<usize>]) -> Vec<f64>,
}

/// A flat vector read by tensor name (row-major).
pub(super) struct Params<'a> {
    pub(super) w: &'a [f64],
    pub(super) at: Vec<(&'static str, usize, Vec<usize>)>,
}

impl<'a> Params<'a> {
    pub(super) fn new(w: &'a [f64], layout: &[(&'static str, Vec<usize>)]) -> Self {
        let mut at = Vec::new();
        let mut o = 0;
        for (n, s) in layout {
            at.push((*n, o, s.clone()));
            o += s.iter().product::<usize>();
        }
        assert_eq!(o, w.len());
        Params { w, at }
    }
    pub(super) fn find(&self, name: &str) -> &(&'static str, usize, Vec<usize>) {
        self.at.iter().find(|t| t.0 == name).expect("tensor")
    }
    /// Flat index of `name[idx]`.
    pub(super) fn index(&self, name: &str, idx: &[usize]) -> usize {
        let (_, o, s) = self.find(name);
        let mut flat = 0;
        for (i, len) in idx.iter().zip(s) {
            assert!(i < len);
            flat = flat * len + i;
        }
        o + flat
    }
    pub(super) fn get(&self, name: &str, idx: &[usize]) -> f64 {
        self.w[self.index(name, idx)]
    }
    /// `out[dest(idx)] = w[idx]` over every index of tensor `name` (the others copied).
    pub(super) fn move_into(
        &self,
        out: &mut [f64],
        name: &str,
        dest: impl Fn(&[usize]) -> Vec<usize>,
    ) {
        let s = self.find(name).2.clone();
        let n: usize = s.iter().product();
        for flat in 0..n {
            let mut idx = vec![0; s.len()];
            let mut r = flat;
            for (i, len) in idx.iter_mut().zip(&s).rev() {
                *i = r % len;
                r /= len;
            }
            out[self.index(name, &dest(&idx))] = self.get(name, &idx);
        }
    }
}

pub(super) fn relu(x: f64) -> f64 {
    x.max(0.0)
}

/// `W x + b` for a `[out, in]` weight.
pub(super) fn linear(p: &Params, w: &str, b: Option<&str>, x: &[f64]) -> Vec<f64> {
    let s = &p.find(w).2;
    (0..s[0])
        .map(|a| {
            (0..s[1]).map(|c| p.get(w, &[a, c]) * x[c]).sum::<f64>()
                + b.map_or(0.0, |b| p.get(b, &[a]))
        })
        .collect()
}

/// conv(1→3, 2×2 on a 3×3 input) → ReLU → flatten (3 × 4, channel-major) →
/// linear(12→4) → ReLU → linear(4→2): the example of docs/specs.md.
pub(super) fn cnn() -> Case {
    Case {
        name: "cnn",
        spec: r#"{"permutations": {"c1": 3, "h1": 4},
            "axes": {"conv1.kernel": ["c1", null, null, null], "conv1.bias": ["c1"],
                     "fc1.weight": ["h1", {"perm": "c1", "block": 4}], "fc1.bias": ["h1"],
                     "fc2.weight": [null, "h1"], "fc2.bias": [null]}}"#,
        layout: vec![
            ("conv1.kernel", vec![3, 1, 2, 2]),
            ("conv1.bias", vec![3]),
            ("fc1.weight", vec![4, 12]),
            ("fc1.bias", vec![4]),
            ("fc2.weight", vec![2, 4]),
            ("fc2.bias", vec![2]),
        ],
        n_inputs: 9,
        forward: |p, x| {
            let mut z = vec![0.0; 12];
            for c in 0..3 {
                for i in 0..2 {
                    for j in 0..2 {
                        let mut v = p.get("conv1.bias", &[c]);
                        for di in 0..2 {
                            for dj in 0..2 {
                                v += p.get("conv1.kernel", &[c, 0, di, dj])
                                    * x[(i + di) * 3 + (j + dj)];
                            }
                        }
                        z[c * 4 + i * 2 + j] = relu(v);
                    }
                }
            }
            let h: Vec<f64> = linear(p, "fc1.weight", Some("fc1.bias"), &z)
                .into_iter()
                .map(relu)
                .collect();
            linear(p, "fc2.weight", Some("fc2.bias"), &h)
        },
        act: |p, t| {
            let (c, h) = (&t[0], &t[1]);
            let mut out = p.w.to_vec();
            p.move_into(&mut out, "conv1.kernel", |i| {
                vec![c[i[0]], i[1], i[2], i[3]]
            });
            p.move_into(&mut out, "conv1.bias", |i| vec![c[i[0]]]);
            p.move_into(&mut out, "fc1.weight", |i| {
                vec![h[i[0]], c[i[1] / 4] * 4 + i[1] % 4]
            });
            p.move_into(&mut out, "fc1.bias", |i| vec![h[i[0]]]);
            p.move_into(&mut out, "fc2.weight", |i| vec![i[0], h[i[1]]]);
            out
        },
    }
}

/// x (3) → r = ReLU(fc_in x) (4, the stream) → r + fc2(ReLU(fc1 r)) (hidden 3) →
/// fc_out (2). The stream permutation `h0` acts on fc_in's rows and bias, fc1's columns,
/// fc2's rows and bias and fc_out's columns.
pub(super) fn residual() -> Case {
    Case {
        name: "residual",
        spec: r#"{"permutations": {"h0": 4, "h1": 3},
            "axes": {"fc_in.weight": ["h0", null], "fc_in.bias": ["h0"],
                     "block.fc1.weight": ["h1", "h0"], "block.fc1.bias": ["h1"],
                     "block.fc2.weight": ["h0", "h1"], "block.fc2.bias": ["h0"],
                     "fc_out.weight": [null, "h0"], "fc_out.bias": [null]}}"#,
        layout: vec![
            ("block.fc1.weight", vec![3, 4]),
            ("block.fc1.bias", vec![3]),
            ("block.fc2.weight", vec![4, 3]),
            ("block.fc2.bias", vec![4]),
            ("fc_in.weight", vec![4, 3]),
            ("fc_in.bias", vec![4]),
            ("fc_out.weight", vec![2, 4]),
            ("fc_out.bias", vec![2]),
        ],
        n_inputs: 3,
        forward: |p, x| {
            let r: Vec<f64> = linear(p, "fc_in.weight", Some("fc_in.bias"), x)
                .into_iter()
                .map(relu)
                .collect();
            let h: Vec<f64> = linear(p, "block.fc1.weight", Some("block.fc1.bias"), &r)
                .into_iter()
                .map(relu)
                .collect();
            let d = linear(p, "block.fc2.weight", Some("block.fc2.bias"), &h);
            let r2: Vec<f64> = r.iter().zip(&d).map(|(a, b)| a + b).collect();
            linear(p, "fc_out.weight", Some("fc_out.bias"), &r2)
        },
        act: |p, t| {
            let (s, h) = (&t[0], &t[1]);
            let mut out = p.w.to_vec();
            p.move_into(&mut out, "fc_in.weight", |i| vec![s[i[0]], i[1]]);
            p.move_into(&mut out, "fc_in.bias", |i| vec![s[i[0]]]);
            p.move_into(&mut out, "block.fc1.weight", |i| vec![h[i[0]], s[i[1]]]);
            p.move_into(&mut out, "block.fc1.bias", |i| vec![h[i[0]]]);
            p.move_into(&mut out, "block.fc2.weight", |i| vec![s[i[0]], h[i[1]]]);
            p.move_into(&mut out, "block.fc2.bias", |i| vec![s[i[0]]]);
            p.move_into(&mut out, "fc_out.weight", |i| vec![i[0], s[i[1]]]);
            out
        },
    }
}

/// conv(1→4, 2×2 on a 3×3 input) → ReLU → flatten (4 × 4) → linear(16→2): one
/// permutation, whose unit is a channel's kernel slice, its bias and its block of four
/// columns of the linear layer (the case of the exact permanent).
pub(super) fn cnn_one_permutation() -> Case {
    Case {
        name: "cnn, one permutation",
        spec: r#"{"permutations": {"c1": 4},
            "axes": {"conv1.kernel": ["c1", null, null, null], "conv1.bias": ["c1"],
                     "fc1.weight": [null, {"perm": "c1", "block": 4}], "fc1.bias": [null]}}"#,
        layout: vec![
            ("conv1.kernel", vec![4, 1, 2, 2]),
            ("conv1.bias", vec![4]),
            ("fc1.weight", vec![2, 16]),
            ("fc1.bias", vec![2]),
        ],
        n_inputs: 9,
        forward: |p, x| {
            let mut z = vec![0.0; 16];
            for c in 0..4 {
                for i in 0..2 {
                    for j in 0..2 {
                        let mut v = p.get("conv1.bias", &[c]);
                        for di in 0..2 {
                            for dj in 0..2 {
                                v += p.get("conv1.kernel", &[c, 0, di, dj])
                                    * x[(i + di) * 3 + (j + dj)];
                            }
                        }
                        z[c * 4 + i * 2 + j] = relu(v);
                    }
                }
            }
            linear(p, "fc1.weight", Some("fc1.bias"), &z)
        },
        act: |p, t| {
            let c = &t[0];
            let mut out = p.w.to_vec();
            p.move_into(&mut out, "conv1.kernel", |i| {
                vec![c[i[0]], i[1], i[2], i[3]]
            });
            p.move_into(&mut out, "conv1.bias", |i| vec![c[i[0]]]);
            p.move_into(&mut out, "fc1.weight", |i| {
                vec![i[0], c[i[1] / 4] * 4 + i[1] % 4]
            });
            out
        },
    }
}

pub(super) const HEADS: usize = 3;
pub(super) const HEAD_DIM: usize = 2;

/// Self-attention over two tokens of width 2 with three heads of dimension 2, summed over
/// the tokens into one output: the heads move in blocks of `HEAD_DIM` rows of the query,
/// key and value projections and columns of the output projection.
pub(super) fn attention() -> Case {
    Case {
        name: "attention",
        spec: r#"{"permutations": {"heads": 3},
            "axes": {"attn.q.weight": [{"perm": "heads", "block": 2}, null],
                     "attn.k.weight": [{"perm": "heads", "block": 2}, null],
                     "attn.v.weight": [{"perm": "heads", "block": 2}, null],
                     "attn.o.weight": [null, {"perm": "heads", "block": 2}]}}"#,
        layout: vec![
            ("attn.k.weight", vec![6, 2]),
            ("attn.o.weight", vec![1, 6]),
            ("attn.q.weight", vec![6, 2]),
            ("attn.v.weight", vec![6, 2]),
        ],
        n_inputs: 4,
        forward: |p, x| {
            let tokens = [&x[0..2], &x[2..4]];
            let proj = |w: &str| -> Vec<Vec<f64>> {
                tokens.iter().map(|t| linear(p, w, None, t)).collect()
            };
            let (q, k, v) = (
                proj("attn.q.weight"),
                proj("attn.k.weight"),
                proj("attn.v.weight"),
            );
            let mut out = 0.0;
            for q_t in &q {
                let mut o = vec![0.0; HEADS * HEAD_DIM];
                for h in 0..HEADS {
                    let r = h * HEAD_DIM..(h + 1) * HEAD_DIM;
                    let score = |u: usize| -> f64 {
                        r.clone().map(|e| q_t[e] * k[u][e]).sum::<f64>() / (HEAD_DIM as f64).sqrt()
                    };
                    let (s0, s1) = (score(0), score(1));
                    let m = s0.max(s1);
                    let (a0, a1) = ((s0 - m).exp(), (s1 - m).exp());
                    for e in r {
                        o[e] = (a0 * v[0][e] + a1 * v[1][e]) / (a0 + a1);
                    }
                }
                out += linear(p, "attn.o.weight", None, &o)[0];
            }
            vec![out]
        },
        act: |p, t| {
            let h = &t[0];
            let mut out = p.w.to_vec();
            let row = |i: &[usize]| h[i[0] / HEAD_DIM] * HEAD_DIM + i[0] % HEAD_DIM;
            for w in ["attn.q.weight", "attn.k.weight", "attn.v.weight"] {
                p.move_into(&mut out, w, |i| vec![row(i), i[1]]);
            }
            p.move_into(&mut out, "attn.o.weight", |i| {
                vec![i[0], h[i[1] / HEAD_DIM] * HEAD_DIM + i[1] % HEAD_DIM]
            });
            out
        },
    }
}

pub(super) fn cases() -> Vec<Case> {
    vec![cnn(), residual(), attention(), cnn_one_permutation()]
}

pub(super) fn space_of(case: &Case) -> WeightSpace {
    let layout: Vec<(String, Vec<usize>)> = case
        .layout
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone()))
        .collect();
    let spec = PermutationSpec::from_json(case.spec).unwrap();
    SpecSpace::new(spec, &layout, &[]).unwrap().into()
}

pub(super) fn normal_vec(n: usize, scale: f64, seed: u64, index: u64) -> Vec<f64> {
    let mut rng = stream(seed, index);
    (0..n)
        .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
        .collect()
}

pub(super) fn taus(g: &GroupElement) -> Vec<Vec<usize>> {
    g.perms().iter().map(|p| p.forward().to_vec()).collect()
}

/// f_{g·ω}(x) = f_ω(x) for the library's action, which equals the hand-written one; and
/// the hand-written action with one tensor left out changes f (the check can fail).
#[test]
fn every_spec_action_leaves_the_hand_written_network_unchanged() {
    for case in cases() {
        let space = space_of(&case);
        let group = space.group();
        let p = space.n_params();
        let mut rng = stream(7, 0);
        for trial in 0..20 {
            let w = normal_vec(p, 1.0, 8, trial);
            let x = normal_vec(case.n_inputs, 1.0, 9, trial);
            let g = group.random(&mut rng);
            let by_hand = (case.act)(&Params::new(&w, &case.layout), &taus(&g));
            assert_eq!(space.action(&g).apply(&w), by_hand, "{}", case.name);
            let f = (case.forward)(&Params::new(&w, &case.layout), &x);
            let fg = (case.forward)(&Params::new(&by_hand, &case.layout), &x);
            for (a, b) in f.iter().zip(&fg) {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + a.abs()),
                    "{}: {a} vs {b}",
                    case.name
                );
            }
        }
        // A broken action: every tensor that moves, each in turn, left in place while the
        // others move. The network notices every one of them.
        let w = normal_vec(p, 1.0, 10, 0);
        let x = normal_vec(case.n_inputs, 1.0, 11, 0);
        let g = loop {
            let g = group.random(&mut rng);
            if g.perms()
                .iter()
                .all(|t| t.forward().iter().enumerate().all(|(i, &j)| i != j))
            {
                break g;
            }
        };
        let moved = (case.act)(&Params::new(&w, &case.layout), &taus(&g));
        let f = (case.forward)(&Params::new(&w, &case.layout), &x);
        let mut at = 0;
        let mut checked = 0;
        for (name, shape) in &case.layout {
            let range = at..at + shape.iter().product::<usize>();
            at = range.end;
            if moved[range.clone()] == w[range.clone()] {
                continue;
            }
            let mut broken = moved.clone();
            broken[range.clone()].copy_from_slice(&w[range]);
            let fb = (case.forward)(&Params::new(&broken, &case.layout), &x);
            let diff: f64 = f.iter().zip(&fb).map(|(a, b)| (a - b).abs()).sum();
            assert!(
                diff > 1e-6,
                "{}: leaving `{name}` in place went unnoticed",
                case.name
            );
            checked += 1;
        }
        assert!(checked >= 2, "{}", case.name);
    }
}
