//! Posterior files in other libraries' names and in `.npz` archives. The fixtures in
//! `data/fixtures/` were written by the real libraries (bayesian-torch, Pyro, NumPyro,
//! TyXe; `make_posteriors.py`), each with a JSON sidecar holding μ and σ in our flat
//! order as the library itself reported them.

use std::path::{Path, PathBuf};
use std::process::Command;

use mi_est::io::{Scheme, inspect, read_npy};
use safetensors::tensor::{Dtype, TensorView};

use crate::common::Scratch;

pub(super) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/fixtures")
        .join(name)
}

#[derive(serde::Deserialize)]
pub(super) struct Sidecar {
    widths: Vec<usize>,
    scheme: String,
    mu: Vec<f64>,
    sigma: Vec<f64>,
}

pub(super) fn sidecar(stem: &str) -> Sidecar {
    serde_json::from_slice(&std::fs::read(fixture(&format!("{stem}.json"))).unwrap()).unwrap()
}

/// Reads `file` and compares it with the sidecar `stem` to `tol` relative (1e-15: the
/// JSON's decimal floats; 1e-6 for float32 files); σ at least to 1e-12 (σ given directly
/// is held as exp(ln σ)).
pub(super) fn check(file: &str, stem: &str, tol: f64) {
    let want = sidecar(stem);
    let (pf, how) =
        inspect(&fixture(file), Default::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
    let q = &pf.posterior;
    assert_eq!(q.arch().unwrap().widths(), want.widths.as_slice(), "{file}");
    let schemes: Vec<&str> = how.schemes.iter().map(|s| s.describe()).collect();
    assert_eq!(schemes, vec![want.scheme.as_str()], "{file}");
    assert_eq!(q.mu().len(), want.mu.len(), "{file}");
    for (p, (a, b)) in q.mu().iter().zip(&want.mu).enumerate() {
        assert!(
            (a - b).abs() <= tol * b.abs().max(1e-3),
            "{file}: mu[{p}] {a} vs {b}"
        );
    }
    let sigma = q.sigma();
    for (p, (a, b)) in sigma.iter().zip(&want.sigma).enumerate() {
        assert!(
            (a - b).abs() <= tol.max(1e-12) * b,
            "{file}: sigma[{p}] {a} vs {b}"
        );
    }
}

#[test]
fn fixtures_made_by_the_real_libraries_read_as_the_libraries_hold_them() {
    check("bayesian-torch.safetensors", "bayesian-torch", 1e-15);
    check("pyro-autonormal.safetensors", "pyro-autonormal", 1e-15);
    check(
        "numpyro-autonormal.safetensors",
        "numpyro-autonormal",
        1e-15,
    );
    check("tyxe-autonormal.safetensors", "tyxe-autonormal", 1e-15);
    // Fortuna's names (written by the script, Fortuna does not install here): flax
    // kernels are inputs × outputs and are transposed on reading.
    check("fortuna-names.safetensors", "fortuna-names", 1e-15);
    // The same posteriors as NumPy archives: stored with a Fortran-ordered array, and
    // deflated in float32.
    check("bayesian-torch.npz", "bayesian-torch", 1e-15);
    check("pyro-autonormal-f32.npz", "pyro-autonormal", 1e-6);
}

/// A file in each library's names equals the same posterior in ours, bit for bit in μ
/// and in every estimate (σ given directly is stored as ρ = ln σ under `exp`).
#[test]
fn every_scheme_gives_the_same_estimates_as_our_names() {
    use mi_est::estimators::{ExactPermanent, InfoNce, MiEstimator};
    let (ours, _) = inspect(&fixture("pyro-autonormal.safetensors"), Default::default()).unwrap();
    let q = &ours.posterior;
    let dir = Scratch::new("formats", "same");
    // Our names, with σ as exp(ρ): the same numbers by a different path.
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let arch = q.arch().unwrap();
    let rho: Vec<f64> = q.sigma().iter().map(|s| s.ln()).collect();
    let mut at = 0;
    for i in 0..arch.n_layers() {
        let (d_in, d_out) = (arch.widths()[i], arch.widths()[i + 1]);
        for (part, shape, n) in [
            ("weight", vec![d_out, d_in], d_out * d_in),
            ("bias", vec![d_out], d_out),
        ] {
            let bytes = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
            tensors.push((
                format!("layers.{i}.{part}_mu"),
                shape.clone(),
                bytes(&q.mu()[at..at + n]),
            ));
            tensors.push((
                format!("layers.{i}.{part}_rho"),
                shape,
                bytes(&rho[at..at + n]),
            ));
            at += n;
        }
    }
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F64, s.clone(), d).unwrap(),
            )
        })
        .collect();
    let meta =
        std::collections::HashMap::from([("sigma_transform".to_string(), "exp".to_string())]);
    let path = dir.join("ours.safetensors");
    std::fs::write(&path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
    let (mine, how) = inspect(&path, Default::default()).unwrap();
    assert_eq!(how.schemes, vec![Scheme::MuRho]);
    let p = &mine.posterior;
    assert_eq!(p.mu(), q.mu());
    assert_eq!(p.sigma(), q.sigma());
    for est in [
        Box::new(InfoNce::new(8).unwrap().samples(50).unwrap().seed(3)) as Box<dyn MiEstimator>,
        Box::new(ExactPermanent::new().samples(50).unwrap().seed(3)),
    ] {
        let (a, b) = (est.estimate(q).unwrap(), est.estimate(p).unwrap());
        assert_eq!(a.value.to_bits(), b.value.to_bits(), "{}", est.name());
    }
}

pub(super) fn npy(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {tuple}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[test]
fn npy_arrays_in_every_layout_read_in_c_order() {
    // The 2 × 3 matrix [[1, 2, 3], [4, 5, 6]].
    let c: Vec<f64> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let f: Vec<f64> = vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
    let le8 = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let be8 = |v: &[f64]| v.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
    let le4 = |v: &[f64]| {
        v.iter()
            .flat_map(|&x| (x as f32).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let be4 = |v: &[f64]| {
        v.iter()
            .flat_map(|&x| (x as f32).to_be_bytes())
            .collect::<Vec<u8>>()
    };
    for (descr, fortran, data) in [
        ("<f8", false, le8(&c)),
        ("<f8", true, le8(&f)),
        (">f8", false, be8(&c)),
        ("<f4", false, le4(&c)),
        (">f4", true, be4(&f)),
    ] {
        let (shape, values) = read_npy(&npy(descr, fortran, &[2, 3], &data)).unwrap();
        assert_eq!(
            (shape, values),
            (vec![2, 3], c.clone()),
            "{descr} fortran={fortran}"
        );
    }
    for (bytes, needle) in [
        (npy("<i8", false, &[2], &[0; 16]), "dtype `<i8`"),
        (npy("<f8", false, &[2, 3], &[0; 40]), "40 data bytes"),
        (b"\x93NUMPX\x01\x00".to_vec(), "bad magic"),
        (npy("<f8", false, &[usize::MAX, 2], &[]), "overflows"),
    ] {
        let e = read_npy(&bytes).unwrap_err();
        assert!(e.contains(needle), "{e}");
    }
}

pub(super) fn write_st(
    dir: &Path,
    name: &str,
    tensors: &[(&str, Vec<usize>, Vec<f64>)],
    meta: &[(&str, &str)],
) -> PathBuf {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            (
                n.to_string(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F64, s.clone(), d).unwrap(),
            )
        })
        .collect();
    let meta: std::collections::HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
    path
}

#[test]
fn tensors_that_do_not_fit_are_named() {
    let dir = Scratch::new("formats", "bad");
    let w = |n: &str| (n.to_string(), vec![2usize, 2], vec![0.5; 4]);
    type Case<'a> = (
        Vec<(String, Vec<usize>, Vec<f64>)>,
        Vec<(&'a str, &'a str)>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            vec![w("fc1.gamma")],
            vec![],
            "`fc1.gamma` fits no naming scheme",
        ),
        (
            vec![
                w("fc1.weight_mu"),
                w("fc1.weight_rho"),
                w("fc2.weight.loc"),
                w("fc2.weight.scale"),
            ],
            vec![],
            "; a file uses one",
        ),
        (
            vec![
                w("fc1.weight.loc"),
                (
                    "fc1.weight.scale".into(),
                    vec![2, 2],
                    vec![0.5, 0.0, 0.5, 0.5],
                ),
            ],
            vec![],
            "`fc1.weight.scale` holds σ, which must be > 0, but has 0 at index 1",
        ),
        (
            vec![w("fc1.weight.loc"), w("fc1.weight.scale")],
            vec![("sigma_transform", "softplus")],
            "`sigma_transform` = `softplus` does not apply",
        ),
        (
            vec![
                ("mean.Dense_0.kernel".into(), vec![4], vec![0.0; 4]),
                w("log_std.Dense_0.kernel"),
            ],
            vec![],
            "`mean.Dense_0.kernel` has shape [4], expected 2 dimensions",
        ),
    ];
    for (i, (tensors, meta, needle)) in cases.into_iter().enumerate() {
        let t: Vec<(&str, Vec<usize>, Vec<f64>)> = tensors
            .iter()
            .map(|(n, s, v)| (n.as_str(), s.clone(), v.clone()))
            .collect();
        let path = write_st(&dir, &format!("bad-{i}.safetensors"), &t, &meta);
        let e = inspect(&path, Default::default()).unwrap_err().to_string();
        assert!(
            e.contains(needle) && e.contains(&format!("bad-{i}")),
            "case {i}: {e}"
        );
    }
    // An archive member that is not a float array.
    let mut zip = std::fs::read(fixture("bayesian-torch.npz")).unwrap();
    let k = zip.windows(4).position(|w| w == b"<f8'").unwrap();
    zip[k + 1] = b'i';
    let path = dir.join("int.npz");
    std::fs::write(&path, &zip).unwrap();
    let e = inspect(&path, Default::default()).unwrap_err().to_string();
    assert!(
        e.contains("npz archive: member `") && e.contains("dtype `<i8`"),
        "{e}"
    );
}

#[test]
fn inspect_prints_what_it_recognised_and_names_what_it_could_not() {
    let out = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args(["inspect"])
        .arg(fixture("pyro-autonormal.safetensors"))
        .arg(fixture("bayesian-torch.npz"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "AutoNormal.locs/scales (Pyro)",
        "σ given directly (scale)",
        "widths [3, 4, 2], relu activation",
        "parameters    26",
        "ln|G|         3.1781",
        "mu_weight/rho_weight (bayesian-torch)",
        "ρ, σ = softplus(ρ)",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    let dir = Scratch::new("formats", "cli");
    let bad = write_st(
        &dir,
        "bad.safetensors",
        &[("fc1.gamma", vec![2], vec![1.0, 2.0])],
        &[],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .arg("inspect")
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.safetensors") && err.contains("`fc1.gamma` fits no naming scheme"),
        "{err}"
    );
}

/// The files of issue 26, made by the real libraries: blitz's whole `state_dict()` (its
/// sampler buffers skipped), Pyro's `AutoNormal.state_dict()` (unconstrained scales), and
/// bayesian-torch nets whose layer names state no order.
#[test]
fn state_dicts_of_blitz_pyro_and_unordered_names_read_as_the_libraries_hold_them() {
    check("blitz-state-dict.safetensors", "blitz-state-dict", 1e-15);
    // Pyro's σ = softplus(ρ) was computed in float32 for the sidecar: 1e-6 relative.
    check(
        "pyro-autonormal-state-dict.safetensors",
        "pyro-autonormal-state-dict",
        1e-6,
    );
    // `.npz` keeps the state_dict's (module) order: encoder, then decoder.
    check("bt-encoder-decoder.npz", "bt-encoder-decoder", 1e-15);
    // torchvision-style `features.N` / `classifier.N`: `classifier` sorts first, but only
    // features.0 → features.2 → classifier.1 chains.
    check(
        "bt-features-classifier.safetensors",
        "bt-features-classifier",
        1e-15,
    );
    let (_, how) = inspect(
        &fixture("bt-features-classifier.safetensors"),
        Default::default(),
    )
    .unwrap();
    assert_eq!(how.order, mi_est::io::LayerOrder::OnlyChain);
    assert_eq!(how.layers, ["features.0", "features.2", "classifier.1"]);
    let (_, how) = inspect(&fixture("blitz-state-dict.safetensors"), Default::default()).unwrap();
    assert_eq!(how.skipped.len(), 12, "{:?}", how.skipped);
    assert!(how.skipped.iter().all(|n| n.contains("_sampler.")));
}

/// A blitz sampler copy that differs from the parameter it copies is refused by name:
/// which one holds the posterior is not stated.
#[test]
fn a_blitz_sampler_copy_that_differs_is_refused() {
    let dir = Scratch::new("formats", "blitz-copy");
    let bytes = std::fs::read(fixture("blitz-state-dict.safetensors")).unwrap();
    let mut tensors = crate::common::f64_tensors(&bytes);
    let i = tensors
        .iter()
        .position(|t| t.0 == "fc1.weight_sampler.mu")
        .unwrap();
    tensors[i].2[0] += 1.0;
    let t: Vec<(&str, Vec<usize>, Vec<f64>)> = tensors
        .iter()
        .map(|(n, s, v)| (n.as_str(), s.clone(), v.clone()))
        .collect();
    let path = write_st(&dir, "differs.safetensors", &t, &[]);
    let e = inspect(&path, Default::default()).unwrap_err().to_string();
    assert!(
        e.contains("`fc1.weight_sampler.mu` (blitz's sampler copy) differs from `fc1.weight_mu`"),
        "{e}"
    );
}
