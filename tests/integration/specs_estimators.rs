//! The estimators on every hand-written spec architecture (see [`super::specs`]): ln q of
//! permuted draws three ways, every estimator against enumeration, an MLP given as a
//! spec against the widths path, and a bayesian-torch CNN from file to estimate.

use mi_est::estimators::{
    ExactEnumeration, ExactPermanent, ExactPruned, InfoNce, InfoNcePath, MiEstimator,
    PairwiseBound, Sandwich,
};
use mi_est::posterior::{HALF_LN_2PI, MeanFieldGaussian};
use mi_est::rng::stream;
use mi_est::symmetry::spec::{PermutationSpec, mlp_layout};
use mi_est::symmetry::{SpecSpace, WeightSpace};
use mi_est::weights::Arch;
use rand::RngExt;

use super::specs::*;

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
