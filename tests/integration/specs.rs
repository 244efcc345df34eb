//! Permutation specs (docs/specs.md), checked without trusting the spec code: every
//! network's forward pass and every group action is written out here by hand, per
//! architecture (a small CNN, a residual MLP whose stream permutation is tied across four
//! tensors, an attention block whose heads move in blocks), and the estimators are
//! compared with exact I by enumeration of the whole group.

use mi_est::estimators::{
    ExactEnumeration, ExactPermanent, ExactPruned, InfoNce, InfoNcePath, MiEstimator,
    PairwiseBound, Sandwich,
};
use mi_est::posterior::{HALF_LN_2PI, MeanFieldGaussian};
use mi_est::rng::stream;
use mi_est::symmetry::spec::{PermutationSpec, mlp_layout};
use mi_est::symmetry::{GroupElement, SpecSpace, WeightSpace};
use mi_est::weights::Arch;
use rand::RngExt;
use rand_distr::StandardNormal;

/// One test architecture: its spec, tensor layout, a hand-written forward pass and a
/// hand-written action (`perms[k]` = τ_k as `forward`, in the spec's permutation order).
struct Case {
    name: &'static str,
    spec: &'static str,
    layout: Vec<(&'static str, Vec<usize>)>,
    n_inputs: usize,
    forward: fn(&Params, &[f64]) -> Vec<f64>,
    act: fn(&Params, &[Vec<usize>]) -> Vec<f64>,
}

/// A flat vector read by tensor name (row-major).
struct Params<'a> {
    w: &'a [f64],
    at: Vec<(&'static str, usize, Vec<usize>)>,
}

impl<'a> Params<'a> {
    fn new(w: &'a [f64], layout: &[(&'static str, Vec<usize>)]) -> Self {
        let mut at = Vec::new();
        let mut o = 0;
        for (n, s) in layout {
            at.push((*n, o, s.clone()));
            o += s.iter().product::<usize>();
        }
        assert_eq!(o, w.len());
        Params { w, at }
    }
    fn find(&self, name: &str) -> &(&'static str, usize, Vec<usize>) {
        self.at.iter().find(|t| t.0 == name).expect("tensor")
    }
    /// Flat index of `name[idx]`.
    fn index(&self, name: &str, idx: &[usize]) -> usize {
        let (_, o, s) = self.find(name);
        let mut flat = 0;
        for (i, len) in idx.iter().zip(s) {
            assert!(i < len);
            flat = flat * len + i;
        }
        o + flat
    }
    fn get(&self, name: &str, idx: &[usize]) -> f64 {
        self.w[self.index(name, idx)]
    }
    /// `out[dest(idx)] = w[idx]` over every index of tensor `name` (the others copied).
    fn move_into(&self, out: &mut [f64], name: &str, dest: impl Fn(&[usize]) -> Vec<usize>) {
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

fn relu(x: f64) -> f64 {
    x.max(0.0)
}

/// `W x + b` for a `[out, in]` weight.
fn linear(p: &Params, w: &str, b: Option<&str>, x: &[f64]) -> Vec<f64> {
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
fn cnn() -> Case {
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
fn residual() -> Case {
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
fn cnn_one_permutation() -> Case {
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

const HEADS: usize = 3;
const HEAD_DIM: usize = 2;

/// Self-attention over two tokens of width 2 with three heads of dimension 2, summed over
/// the tokens into one output: the heads move in blocks of `HEAD_DIM` rows of the query,
/// key and value projections and columns of the output projection.
fn attention() -> Case {
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

fn cases() -> Vec<Case> {
    vec![cnn(), residual(), attention(), cnn_one_permutation()]
}

fn space_of(case: &Case) -> WeightSpace {
    let layout: Vec<(String, Vec<usize>)> = case
        .layout
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone()))
        .collect();
    let spec = PermutationSpec::from_json(case.spec).unwrap();
    SpecSpace::new(spec, &layout, &[]).unwrap().into()
}

fn normal_vec(n: usize, scale: f64, seed: u64, index: u64) -> Vec<f64> {
    let mut rng = stream(seed, index);
    (0..n)
        .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
        .collect()
}

fn taus(g: &GroupElement) -> Vec<Vec<usize>> {
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

/// A posterior whose units overlap: μ small against σ.
fn overlapping(space: &WeightSpace, seed: u64) -> MeanFieldGaussian {
    let p = space.n_params();
    let mu = normal_vec(p, 0.25, seed, 1);
    let mut rng = stream(seed, 2);
    let sigma = (0..p).map(|_| rng.random_range(0.6..1.0)).collect();
    MeanFieldGaussian::from_mu_sigma(space.clone(), mu, sigma).unwrap()
}

/// ln q(g·ω) three ways: the library's density of the hand-permuted ω, the sum of
/// Gaussian log densities written here, and the estimators' `ln q(h⁻¹·ω)` with h = g⁻¹.
#[test]
fn ln_q_of_a_permuted_draw_agrees_three_ways() {
    for case in cases() {
        let space = space_of(&case);
        let q = overlapping(&space, 3);
        let group = space.group();
        let mut rng = stream(12, 0);
        for trial in 0..10 {
            let omega = q.sample(&mut stream(13, trial));
            let g = group.random(&mut rng);
            let g_omega = (case.act)(&Params::new(&omega, &case.layout), &taus(&g));
            let a = q.ln_q(&g_omega).unwrap();
            let b: f64 = g_omega
                .iter()
                .zip(q.mu().iter().zip(q.sigma()))
                .map(|(&v, (&m, &s))| -0.5 * ((v - m) / s).powi(2) - s.ln() - HALF_LN_2PI)
                .sum();
            let c = q
                .ln_q_inverse_permuted(&omega, &space.action(&g.inverse()))
                .unwrap();
            let d = q.ln_q_inverse_permuted_by(&omega, &g.inverse());
            for (what, v) in [("by hand", b), ("inverse map", c), ("inverse element", d)] {
                assert!(
                    (a - v).abs() < 1e-9 * a.abs().max(1.0),
                    "{} {what}: {a} vs {v}",
                    case.name
                );
            }
        }
    }
}

fn se(e: &mi_est::estimators::Estimate) -> f64 {
    e.std_err.unwrap_or(0.0)
}

/// Every estimator that applies to each spec against exact I by enumeration of the
/// whole group, on overlapping posteriors: the exact estimators draw by draw, the
/// sandwich and the pairwise bounds around it, I^K below it and close to it at large K.
#[test]
fn every_estimator_agrees_with_enumeration_on_every_spec() {
    for case in cases() {
        let space = space_of(&case);
        let q = overlapping(&space, 5);
        let ln_g = space.group().ln_order();
        let s = 1500;
        let exact = ExactEnumeration::new()
            .samples(s)
            .unwrap()
            .seed(1)
            .estimate(&q)
            .unwrap();
        let tol =
            |e: &mi_est::estimators::Estimate| 4.0 * (se(e).powi(2) + se(&exact).powi(2)).sqrt();
        eprintln!(
            "{}: exact I = {:.4} ± {:.4}, ln|G| = {ln_g:.4}",
            case.name,
            exact.value,
            se(&exact)
        );
        assert!(
            exact.value > 0.05 * ln_g && exact.value < 0.95 * ln_g,
            "{}: not overlapping",
            case.name
        );
        assert_eq!(exact.ln_group_order.to_bits(), ln_g.to_bits());
        for k in [8, 64] {
            let (lo, up) = Sandwich::new(k)
                .unwrap()
                .samples(s)
                .unwrap()
                .seed(2)
                .estimate_both(&q)
                .unwrap();
            eprintln!("  sandwich K={k}: [{:.4}, {:.4}]", lo.value, up.value);
            assert!(lo.value <= exact.value + tol(&lo), "{} K={k}", case.name);
            assert!(up.value >= exact.value - tol(&up), "{} K={k}", case.name);
            assert!(
                up.value - lo.value < 0.5 * exact.value,
                "{} K={k}: wide",
                case.name
            );
        }
        for k in [16, 4096] {
            let ik = InfoNce::new(k)
                .unwrap()
                .samples(s)
                .unwrap()
                .seed(3)
                .estimate(&q)
                .unwrap();
            eprintln!("  I^K K={k}: {:.4} ± {:.4}", ik.value, se(&ik));
            assert!(ik.value <= exact.value + tol(&ik), "{} K={k}", case.name);
            if k == 4096 {
                assert!(
                    (ik.value - exact.value).abs() <= tol(&ik) + 0.05 * exact.value,
                    "{}",
                    case.name
                );
            }
        }
        if space.single_unit_group() {
            // One permutation whose heads own disjoint parameters: the permanent, the
            // pruned permanent and the pairwise bounds apply; the unit-cost path of I^K
            // equals the generic one.
            let seeded = |e: &dyn MiEstimator| e.estimate(&q).unwrap();
            let perm = seeded(&ExactPermanent::new().samples(s).unwrap().seed(1));
            let pruned = seeded(&ExactPruned::new().samples(s).unwrap().seed(1));
            for (x, (y, z)) in exact.terms.iter().zip(perm.terms.iter().zip(&pruned.terms)) {
                assert!(
                    (x - y).abs() < 1e-9 && (x - z).abs() < 1e-9,
                    "{}: {x} {y} {z}",
                    case.name
                );
            }
            let lower = PairwiseBound::Bhattacharyya.estimate(&q).unwrap().value;
            let upper = PairwiseBound::Kl.estimate(&q).unwrap().value;
            assert!(
                lower <= exact.value + 4.0 * se(&exact) && upper >= exact.value - 4.0 * se(&exact)
            );
            let path = |p| {
                InfoNce::new(32)
                    .unwrap()
                    .samples(200)
                    .unwrap()
                    .seed(4)
                    .path(p)
            };
            let (a, b) = (
                path(InfoNcePath::UnitCost).estimate(&q).unwrap(),
                path(InfoNcePath::Generic).estimate(&q).unwrap(),
            );
            assert!((a.value - b.value).abs() < 1e-9, "{}", case.name);
        } else {
            assert!(ExactPermanent::new().estimate(&q).is_err());
        }
    }
}

/// An MLP given as an explicit spec (under the widths path's names or any other) gives
/// the widths path's estimates bit for bit, for every estimator.
#[test]
fn an_mlp_given_as_a_spec_equals_the_widths_path_bit_for_bit() {
    for widths in [vec![3, 4, 2], vec![2, 3, 4, 2]] {
        let arch = Arch::builder(widths.clone()).check().unwrap();
        let p = arch.n_params();
        let mu = normal_vec(p, 0.3, 20, 0);
        let rho = normal_vec(p, 0.2, 21, 0);
        let by_widths = MeanFieldGaussian::new(arch.clone(), mu.clone(), rho.clone()).unwrap();
        // Renamed tensors (`fc{i}`) keep the layout order of `layers.{i}`.
        let layout: Vec<(String, Vec<usize>)> = mlp_layout(&arch)
            .into_iter()
            .map(|(n, s)| (n.replace("layers.", "fc"), s))
            .collect();
        let json = PermutationSpec::mlp(&arch)
            .to_json()
            .replace("layers.", "fc");
        let spec = PermutationSpec::from_json(&json).unwrap();
        let space: WeightSpace = SpecSpace::new(spec, &layout, &[]).unwrap().into();
        assert!(space.arch().is_none(), "a spec has no forward pass");
        let by_spec = MeanFieldGaussian::new(space, mu, rho).unwrap();
        let mut ests: Vec<Box<dyn MiEstimator>> = vec![
            Box::new(InfoNce::new(16).unwrap().samples(300).unwrap().seed(1)),
            Box::new(ExactEnumeration::new().samples(100).unwrap().seed(2)),
            Box::new(
                Sandwich::new(8)
                    .unwrap()
                    .samples(200)
                    .unwrap()
                    .seed(3)
                    .lower(),
            ),
            Box::new(
                Sandwich::new(8)
                    .unwrap()
                    .samples(200)
                    .unwrap()
                    .seed(3)
                    .upper(),
            ),
        ];
        if widths.len() == 3 {
            ests.push(Box::new(
                ExactPermanent::new().samples(300).unwrap().seed(4),
            ));
            ests.push(Box::new(PairwiseBound::Bhattacharyya));
            ests.push(Box::new(PairwiseBound::Kl));
        }
        for e in ests {
            let (a, b) = (
                e.estimate(&by_widths).unwrap(),
                e.estimate(&by_spec).unwrap(),
            );
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a.terms), bits(&b.terms), "{widths:?} {}", e.name());
            assert_eq!(a.value.to_bits(), b.value.to_bits());
            assert_eq!(a.ln_group_order.to_bits(), b.ln_group_order.to_bits());
        }
    }
}

/// The generic spec code, not the MLP kernels: the same MLP with its permutations
/// declared in the other order (so no MLP is recognised) gives the same exact I draw by
/// draw, and a sandwich around it.
#[test]
fn the_generic_path_agrees_with_the_mlp_path_on_an_mlp() {
    let arch = Arch::builder(vec![2, 3, 3, 1]).check().unwrap();
    let p = arch.n_params();
    let mu = normal_vec(p, 0.3, 30, 0);
    let sigma: Vec<f64> = normal_vec(p, 0.1, 31, 0)
        .iter()
        .map(|v| 0.7 + v.abs())
        .collect();
    let q = MeanFieldGaussian::from_mu_sigma(arch.clone(), mu.clone(), sigma.clone()).unwrap();
    // `b` is the first hidden layer and `a` the second: natural order visits them reversed.
    let spec = PermutationSpec::from_json(
        r#"{"permutations": {"a": 3, "b": 3},
            "axes": {"layers.0.weight": ["b", null], "layers.0.bias": ["b"],
                     "layers.1.weight": ["a", "b"], "layers.1.bias": ["a"],
                     "layers.2.weight": [null, "a"], "layers.2.bias": [null]}}"#,
    )
    .unwrap();
    let space: WeightSpace = SpecSpace::new(spec, &mlp_layout(&arch), &[])
        .unwrap()
        .into();
    let generic = MeanFieldGaussian::from_mu_sigma(space, mu, sigma).unwrap();
    let e = ExactEnumeration::new().samples(200).unwrap().seed(5);
    let (a, b) = (e.estimate(&q).unwrap(), e.estimate(&generic).unwrap());
    for (x, y) in a.terms.iter().zip(&b.terms) {
        assert!((x - y).abs() < 1e-9, "{x} vs {y}");
    }
    let (lo, up) = Sandwich::new(16)
        .unwrap()
        .samples(1000)
        .unwrap()
        .seed(6)
        .estimate_both(&generic)
        .unwrap();
    let exact = ExactEnumeration::new()
        .samples(1000)
        .unwrap()
        .seed(7)
        .estimate(&q)
        .unwrap();
    let tol = 4.0 * (se(&lo).powi(2) + se(&exact).powi(2)).sqrt();
    assert!(lo.value <= exact.value + tol && up.value >= exact.value - tol);
}

/// bayesian-torch's convolution and linear layers in one file (written by
/// `data/specs/make_spec_posteriors.py`): `mi-est spec --sequential` writes the committed
/// spec, the file reads under it with μ and σ = softplus(ρ) of each tensor in place, a
/// saved spec posterior carries its spec and reads back unchanged, and `mi-est run
/// --spec` gives exact I, I^K and the sandwich.
#[test]
fn a_bayesian_torch_cnn_goes_from_file_to_spec_to_estimate() {
    use std::path::Path;
    use std::process::Command;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/specs");
    let file = root.join("cnn-small.safetensors");
    let committed = std::fs::read_to_string(root.join("cnn-small.spec.json")).unwrap();
    let mi_est = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mi-est"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let written = mi_est(&["spec", "--sequential", file.to_str().unwrap()]);
    let spec = PermutationSpec::from_json(&written).unwrap();
    assert_eq!(spec, PermutationSpec::from_json(&committed).unwrap());

    // Every tensor in place: the file's own values, read here with safetensors.
    let (pf, _) =
        mi_est::io::load_with_bytes(&file, mi_est::io::ReadOptions::spec(Some(&spec))).unwrap();
    let q = &pf.posterior;
    let space = q.space().spec_space().expect("a spec space");
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let values = |name: &str| -> Vec<f64> {
        st.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let mut at = 0;
    for (name, shape) in space.layout() {
        let n: usize = shape.iter().product();
        let (layer, part) = name.rsplit_once('.').unwrap();
        let mu = values(&format!("{layer}.mu_{part}"));
        let sigma: Vec<f64> = values(&format!("{layer}.rho_{part}"))
            .iter()
            .map(|r| r.exp().ln_1p())
            .collect();
        assert_eq!(&q.mu()[at..at + n], &mu[..], "{name}");
        for (a, b) in q.sigma()[at..at + n].iter().zip(&sigma) {
            assert!((a - b).abs() < 1e-15, "{name}");
        }
        at += n;
    }
    assert_eq!(at, q.n_params());
    assert_eq!(
        space.layout()[0],
        ("conv1.kernel".to_string(), vec![3, 1, 2, 2])
    );

    // A saved spec posterior carries its spec in the metadata.
    let dir = crate::common::Scratch::new("specs", "cnn");
    let saved = dir.join("saved.safetensors");
    mi_est::io::save(&saved, &pf, false).unwrap();
    let back = mi_est::io::load(&saved).unwrap();
    assert_eq!(back.posterior, pf.posterior);

    let out = dir.join("run");
    let table = mi_est(&[
        "run",
        "--posterior",
        file.to_str().unwrap(),
        "--spec",
        root.join("cnn-small.spec.json").to_str().unwrap(),
        "--estimators",
        "exact,infonce,sandwich",
        "--k",
        "4",
        "--samples",
        "40",
        "--repeats",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    for needle in [
        "exact-enumeration",
        "infonce",
        "sandwich-lower",
        "sandwich-upper",
    ] {
        assert!(table.contains(needle), "{needle} in {table}");
    }
    let rows = crate::common::read_raw(&out.join("raw.parquet"));
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert!((r.ln_group_order_nats - (6f64.ln() + 24f64.ln())).abs() < 1e-12);
    }
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("cnn-small.spec.json"));
}

/// The sandwich and the unit-cost estimators refuse, by name, a spec whose permutation
/// acts on two axes of one tensor (a stream-to-stream weight); I^K and enumeration
/// still apply.
#[test]
fn a_spec_that_does_not_factorize_is_refused_by_the_unit_estimators() {
    let spec = PermutationSpec::from_json(
        r#"{"permutations": {"s": 3},
            "axes": {"w_in": ["s", null], "w_mix": ["s", "s"], "w_out": [null, "s"]}}"#,
    )
    .unwrap();
    let layout = vec![
        ("w_in".to_string(), vec![3, 2]),
        ("w_mix".to_string(), vec![3, 3]),
        ("w_out".to_string(), vec![1, 3]),
    ];
    let space: WeightSpace = SpecSpace::new(spec, &layout, &[]).unwrap().into();
    assert!(!space.factorizes());
    let q = overlapping(&space, 40);
    let e = Sandwich::new(4)
        .unwrap()
        .estimate_both(&q)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the sandwich bounds needs") && e.contains("spec s (3)"),
        "{e}"
    );
    assert!(ExactPermanent::new().estimate(&q).is_err());
    let exact = ExactEnumeration::new()
        .samples(500)
        .unwrap()
        .estimate(&q)
        .unwrap();
    let ik = InfoNce::new(64)
        .unwrap()
        .samples(500)
        .unwrap()
        .estimate(&q)
        .unwrap();
    assert!(ik.value <= exact.value + 4.0 * (se(&ik).powi(2) + se(&exact).powi(2)).sqrt());
}

/// A small CNN with BatchNorm (issue 26 item 6): conv(1→4, 2×2 on 3×3) with bias, a
/// BatchNorm whose gain and shift are deterministic (point masses in q), flatten (4 × 4)
/// and a linear layer to 2 outputs. `bn` is the BatchNorm's (weight, bias) per channel.
fn bn_cnn(
    bn: [(f64, f64); 4],
    mu_of: impl Fn(&str, usize) -> f64,
    rho: f64,
) -> mi_est::io::PosteriorFile {
    let spec = PermutationSpec::from_json(
        r#"{"permutations": {"c1": 4}, "axes": {
            "conv1.kernel": ["c1", null, null, null], "conv1.bias": ["c1"],
            "bn.weight": ["c1"], "bn.bias": ["c1"],
            "fc1.weight": [null, {"perm": "c1", "block": 4}], "fc1.bias": [null]}}"#,
    )
    .unwrap();
    let var = |name: &str, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        let mu: Vec<f64> = (0..n).map(|i| mu_of(name, i)).collect();
        vec![
            (format!("{name}_mu"), shape.clone(), mu),
            (format!("{name}_rho"), shape, vec![rho; n]),
        ]
    };
    let mut tensors = Vec::new();
    tensors.extend(var("conv1.kernel", vec![4, 1, 2, 2]));
    tensors.extend(var("conv1.bias", vec![4]));
    tensors.push((
        "bn.weight".to_string(),
        vec![4],
        bn.iter().map(|b| b.0).collect(),
    ));
    tensors.push((
        "bn.bias".to_string(),
        vec![4],
        bn.iter().map(|b| b.1).collect(),
    ));
    tensors.extend(var("fc1.weight", vec![2, 16]));
    tensors.extend(var("fc1.bias", vec![2]));
    let options = mi_est::io::ReadOptions::spec(Some(&spec));
    mi_est::io::from_tensors(&tensors, &Default::default(), options)
        .unwrap()
        .0
}

/// The channel of coordinate `i` of tensor `name` (None: no channel axis).
fn bn_cnn_channel(name: &str, i: usize) -> Option<usize> {
    match name {
        "conv1.kernel" => Some(i / 4),
        "conv1.bias" => Some(i),
        "fc1.weight" => Some((i % 16) / 4),
        _ => None,
    }
}

/// ln q^G(ω) − ln q(ω) for the BatchNorm CNN by brute force over all 24 channel
/// permutations, written here independently of the library: a permutation g contributes
/// only if it maps the BatchNorm's (weight, bias) onto themselves (q is a point mass
/// there), with q(g⁻¹·ω) from the Gaussian densities of the moved coordinates.
fn bn_cnn_brute_i(
    bn: [(f64, f64); 4],
    mu_of: &dyn Fn(&str, usize) -> f64,
    rho: f64,
    draws: usize,
    seed: u64,
) -> (f64, f64) {
    let sigma = (1.0 + rho.exp()).ln();
    bn_cnn_brute(bn, mu_of, &|_, _| sigma, draws, seed)
}

/// [`bn_cnn_brute_i`] with σ per coordinate.
fn bn_cnn_brute(
    bn: [(f64, f64); 4],
    mu_of: &dyn Fn(&str, usize) -> f64,
    sigma_of: &dyn Fn(&str, usize) -> f64,
    draws: usize,
    seed: u64,
) -> (f64, f64) {
    let layout: [(&str, usize); 4] = [
        ("conv1.kernel", 16),
        ("conv1.bias", 4),
        ("fc1.weight", 32),
        ("fc1.bias", 2),
    ];
    let perms: Vec<[usize; 4]> = {
        let mut out = Vec::new();
        for a in 0..4 {
            for b in 0..4 {
                for c in 0..4 {
                    for d in 0..4 {
                        let p = [a, b, c, d];
                        let mut seen = [false; 4];
                        if p.iter().all(|&x| !std::mem::replace(&mut seen[x], true)) {
                            out.push(p);
                        }
                    }
                }
            }
        }
        out
    };
    assert_eq!(perms.len(), 24);
    // Where coordinate i of a tensor lands when channel c moves to g[c].
    let moved = |name: &str, i: usize, g: &[usize; 4]| -> usize {
        match (name, bn_cnn_channel(name, i)) {
            ("conv1.kernel", Some(c)) => g[c] * 4 + i % 4,
            ("conv1.bias", Some(c)) => g[c],
            ("fc1.weight", Some(c)) => (i / 16) * 16 + g[c] * 4 + i % 4,
            _ => i,
        }
    };
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut terms = Vec::with_capacity(draws);
    for _ in 0..draws {
        let omega: Vec<Vec<f64>> = layout
            .iter()
            .map(|(n, len)| {
                (0..*len)
                    .map(|i| mu_of(n, i) + sigma_of(n, i) * rng.sample::<f64, _>(StandardNormal))
                    .collect()
            })
            .collect();
        let ln_q = |w: &[Vec<f64>]| -> f64 {
            layout
                .iter()
                .zip(w)
                .map(|((n, len), v)| {
                    (0..*len)
                        .map(|i| {
                            let sigma = sigma_of(n, i);
                            let z = (v[i] - mu_of(n, i)) / sigma;
                            -0.5 * z * z - sigma.ln() - HALF_LN_2PI
                        })
                        .sum::<f64>()
                })
                .sum()
        };
        let base = ln_q(&omega);
        let mut logs = Vec::new();
        for g in &perms {
            // g·d₀ = d₀: the point mass of the BatchNorm tensors stays where it was.
            if (0..4).any(|c| bn[g[c]] != bn[c]) {
                continue;
            }
            // ω' = g⁻¹·ω: coordinate i of ω' is ω at the place i moves to.
            let back: Vec<Vec<f64>> = layout
                .iter()
                .zip(&omega)
                .map(|((n, len), v)| (0..*len).map(|i| v[moved(n, i, g)]).collect())
                .collect();
            logs.push(ln_q(&back) - base);
        }
        let m = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + logs.iter().map(|l| (l - m).exp()).sum::<f64>().ln();
        terms.push(24f64.ln() - lse);
    }
    let n = terms.len() as f64;
    let mean = terms.iter().sum::<f64>() / n;
    let var = terms.iter().map(|t| (t - mean) * (t - mean)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn batchnorm_tensors_pin_the_channels_they_tell_apart() {
    use mi_est::estimators::{ExactLimits, exact_estimator};
    let exact = |f: &mi_est::io::PosteriorFile, s: usize| {
        let q = &f.posterior;
        exact_estimator(q, s, 9, ExactLimits::FULL)
            .unwrap()
            .unwrap()
            .estimate(q)
            .unwrap()
    };
    let ln24 = 24f64.ln();
    // Channels 0 and 1 share their BatchNorm values, 2 and 3 differ: S = Sym({0, 1}).
    let bn = [(1.0, 0.0), (1.0, 0.0), (2.0, 0.5), (3.0, -0.5)];
    // Every channel far from every other: I = ln 24 (the pair's swap moves ω far too).
    let far = |_: &str, i: usize| 3.0 * (i as f64 + 1.0).sin() + i as f64;
    let e = exact(&bn_cnn(bn, far, -4.0), 50);
    assert!((e.value - ln24).abs() < 1e-9, "{}", e.value);
    assert!((e.ln_group_order - ln24).abs() < 1e-12);
    // Channels 0 and 1 identical under q: the swap leaves q unchanged, I = ln 24 − ln 2.
    let tied = |n: &str, i: usize| {
        let c = bn_cnn_channel(n, i);
        let j = match (n, c) {
            ("conv1.kernel", Some(1)) => i - 4,
            ("conv1.bias", Some(1)) => 0,
            ("fc1.weight", Some(1)) => i - 4,
            _ => i,
        };
        far(n, j)
    };
    let e = exact(&bn_cnn(bn, tied, -1.0), 50);
    assert!((e.value - 12f64.ln()).abs() < 1e-9, "{}", e.value);
    // Every channel's BatchNorm distinct: no permutation is left, I = ln 24 exactly.
    let distinct = [(1.0, 0.0), (1.5, 0.0), (2.0, 0.5), (3.0, -0.5)];
    let e = exact(&bn_cnn(distinct, tied, -1.0), 50);
    assert!(
        (e.value - ln24).abs() < 1e-12 && e.std_err == Some(0.0),
        "{:?}",
        e
    );
    // Overlap between channels 0 and 1 (means 0.1 apart, σ ≈ 0.31): against brute-force
    // enumeration over all 24 permutations with independent draws.
    let near = |n: &str, i: usize| match (n, bn_cnn_channel(n, i)) {
        ("conv1.kernel", Some(1)) | ("fc1.weight", Some(1)) => tied(n, i) + 0.1,
        _ => tied(n, i),
    };
    let file = bn_cnn(bn, near, -1.0);
    let e = exact(&file, 20_000);
    let (brute, brute_se) = bn_cnn_brute_i(bn, &near, -1.0, 20_000, 17);
    let se = (e.std_err.unwrap().powi(2) + brute_se * brute_se).sqrt();
    assert!(
        (e.value - brute).abs() < 4.0 * se,
        "library {} ± {:?}, brute force {brute} ± {brute_se}",
        e.value,
        e.std_err
    );
    println!(
        "BatchNorm CNN, channels 0 and 1 overlapping: library {} ± {:?}, brute force {brute} ± {brute_se}",
        e.value, e.std_err
    );
    assert!(
        e.value > 12f64.ln() + 0.05 && e.value < ln24 - 0.05,
        "{}",
        e.value
    );
    // Every other estimator meets the same stabilizer: I^K ≤ I, the sandwich brackets it.
    let q = &file.posterior;
    let ik = InfoNce::new(64)
        .unwrap()
        .samples(2000)
        .unwrap()
        .seed(3)
        .estimate(q)
        .unwrap();
    assert!(
        ik.value <= e.value + 4.0 * se,
        "{} vs {}",
        ik.value,
        e.value
    );
    let (lo, up) = Sandwich::new(16)
        .unwrap()
        .samples(2000)
        .unwrap()
        .seed(4)
        .estimate_both(q)
        .unwrap();
    assert!(
        lo.value <= e.value + 0.05 && up.value >= e.value - 0.05,
        "[{}, {}] vs {}",
        lo.value,
        up.value,
        e.value
    );
    assert!(up.value <= ln24 + 1e-9);
}

/// The same CNN made by bayesian-torch with torch's BatchNorm2d (data/fixtures, its whole
/// state_dict and a hand-written spec): the BatchNorm's fixed gains tie channels 0 and 1
/// and tell 2 and 3 apart; exact I against the brute force over all 24 permutations.
#[test]
fn a_bayesian_torch_cnn_with_batchnorm_reads_and_pins_its_channels() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures");
    let spec = mi_est::grid::load_spec(&dir.join("bt-cnn-batchnorm.spec.json")).unwrap();
    let (file, _) = mi_est::io::inspect(
        &dir.join("bt-cnn-batchnorm.safetensors"),
        mi_est::io::ReadOptions::spec(Some(&spec.spec)),
    )
    .unwrap();
    let q = &file.posterior;
    let space = q.space().spec_space().unwrap();
    assert_eq!(space.pins(), &[Some(vec![0, 0, 1, 2])]);
    // μ and σ by tensor name and index, from the file as read.
    let mut offsets = std::collections::HashMap::new();
    let mut at = 0;
    for (name, shape) in space.layout() {
        offsets.insert(name, at);
        at += shape.iter().product::<usize>();
    }
    let (mu, sigma) = (q.mu().to_vec(), q.sigma());
    let mu_of = |n: &str, i: usize| mu[offsets[n] + i];
    let sigma_of = |n: &str, i: usize| sigma[offsets[n] + i];
    let bn = [(1.0, 0.0), (1.0, 0.0), (2.0, 0.5), (3.0, -0.5)];
    let e = mi_est::estimators::exact_estimator(q, 5000, 2, mi_est::estimators::ExactLimits::FULL)
        .unwrap()
        .unwrap()
        .estimate(q)
        .unwrap();
    let (brute, brute_se) = bn_cnn_brute(bn, &mu_of, &sigma_of, 5000, 5);
    let se = (e.std_err.unwrap().powi(2) + brute_se * brute_se).sqrt();
    assert!(
        (e.value - brute).abs() <= 4.0 * se + 1e-9,
        "{} vs {brute} ± {se}",
        e.value
    );
    assert!(
        e.value <= 24f64.ln() + 1e-9 && e.value >= 12f64.ln() - 1e-9,
        "{}",
        e.value
    );
}
