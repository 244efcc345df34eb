//! Posterior files, IDX and CSV readers on good and hostile input (issue 4).

use mi_est::Error;
use mi_est::data::Targets;
use mi_est::data::{MnistSplit, load_csv, load_mnist, read_idx};
use mi_est::io::{PosteriorFile, from_bytes, load, save, to_bytes};
use mi_est::posterior::SigmaTransform;
use mi_est::weights::Likelihood;
use mi_est::weights::{Activation, Arch};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::common::random_posterior;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mi-est-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn file_of(arch: Arch, seed: u64) -> PosteriorFile {
    PosteriorFile {
        posterior: random_posterior(arch, seed, 1.0),
        likelihood: Some(Likelihood::Gaussian { precision: 2.5 }),
        prior_scale: 0.5,
        train_config: Some("{\"epochs\":3}".into()),
        metadata: Default::default(),
    }
}

#[test]
fn posterior_files_round_trip_bit_for_bit() {
    let archs = [
        Arch::builder(vec![3, 4, 2]).check().unwrap(),
        Arch::builder(vec![2, 3, 3, 1])
            .activation(Activation::Tanh)
            .layer_bias(1, false)
            .check()
            .unwrap(),
        Arch::builder(vec![1, 2, 1])
            .bias(false)
            .fixed_layer(1, vec![1.0, 1.0], None)
            .check()
            .unwrap(),
    ];
    for (i, arch) in archs.into_iter().enumerate() {
        let f = file_of(arch, i as u64);
        let path = tmp(&format!("round-{i}.safetensors"));
        save(&path, &f, true).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.posterior, f.posterior);
        assert_eq!(back.likelihood, f.likelihood);
        assert_eq!(back.prior_scale, 0.5);
        assert_eq!(back.train_config, f.train_config);
        assert_eq!(back.metadata["format"], "mi-est-posterior");
        // No temporary file is left beside it.
        let leftovers = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}

#[test]
fn existing_files_are_not_replaced_without_overwrite() {
    let path = tmp("exists.safetensors");
    let f = file_of(Arch::builder(vec![2, 2, 1]).check().unwrap(), 1);
    save(&path, &f, true).unwrap();
    let e = save(&path, &f, false).unwrap_err();
    // The path is the error; the reason is its cause.
    assert!(e.to_string().contains("exists.safetensors"), "{e}");
    assert!(crate::common::chain(&e).contains("already exists"), "{e:?}");
    let e = save(Path::new("/nonexistent-dir/x.safetensors"), &f, true).unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent-dir/x.safetensors"),
        "{e}"
    );
}

/// A file as a PyTorch user would write it: F32 tensors, module names, no metadata.
fn foreign(
    names: [&str; 4],
    prefixes: [&str; 2],
    extra_meta: Option<HashMap<String, String>>,
) -> Vec<u8> {
    let shapes = [(vec![3usize, 2usize], vec![3usize]), (vec![2, 3], vec![2])];
    let mut store: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (l, prefix) in prefixes.iter().enumerate() {
        let (ws, bs) = &shapes[l];
        for (k, name) in names.iter().enumerate() {
            let shape = if k < 2 { ws.clone() } else { bs.clone() };
            let n: usize = shape.iter().product();
            let base = if name.contains("rho") {
                -3.0f32
            } else {
                0.1 * (l + 1) as f32
            };
            let data: Vec<u8> = (0..n)
                .flat_map(|i| (base + 0.01 * i as f32).to_le_bytes())
                .collect();
            store.push((format!("{prefix}.{name}"), shape, data));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = store
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, extra_meta).unwrap()
}

#[test]
fn pytorch_files_with_bayesian_torch_or_blitz_names_load() {
    for names in [
        ["mu_weight", "rho_weight", "mu_bias", "rho_bias"],
        ["weight_mu", "weight_rho", "bias_mu", "bias_rho"],
    ] {
        let f = from_bytes(&foreign(names, ["fc2", "fc10"], None)).unwrap();
        let q = &f.posterior;
        assert_eq!(q.arch().unwrap().widths(), &[2, 3, 2]);
        assert_eq!(q.arch().unwrap().activation(), Activation::Relu);
        assert_eq!(q.transform(), SigmaTransform::Softplus);
        assert_eq!(f.prior_scale, 1.0);
        assert!(
            (q.mu()[0] - 0.1).abs() < 1e-7
                && (q.mu()[q.n_params() - 1] - (0.2 + 0.01)).abs() < 1e-6
        );
        assert!((q.sigma()[0] - (1.0 + (-3.0f64).exp()).ln()).abs() < 1e-7);
    }
}

#[test]
fn hostile_posterior_files_are_named_errors() {
    let good = to_bytes(&file_of(Arch::builder(vec![3, 4, 2]).check().unwrap(), 3)).unwrap();
    let meta = |k: &str, v: &str| Some(HashMap::from([(k.to_string(), v.to_string())]));
    let names = ["weight_mu", "weight_rho", "bias_mu", "bias_rho"];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            good[..good.len() - 9].to_vec(),
            "not a valid safetensors",
        ),
        ("empty", vec![], "not a valid safetensors"),
        (
            "garbage header",
            b"\x10\0\0\0\0\0\0\0{{{{{{{{{{{{{{{{".to_vec(),
            "not a valid safetensors",
        ),
        (
            "lying header length",
            {
                let mut b = good.clone();
                b[0] = 0xff;
                b[1] = 0xff;
                b
            },
            "not a valid safetensors",
        ),
        (
            "widths mismatch",
            foreign(names, ["layers.0", "layers.1"], meta("widths", "[2, 4, 2]")),
            "disagrees with the tensor shapes",
        ),
        (
            "bad widths json",
            foreign(names, ["layers.0", "layers.1"], meta("widths", "[2,")),
            "not a JSON list",
        ),
        (
            "unknown activation",
            foreign(
                names,
                ["layers.0", "layers.1"],
                meta("activation", "sigmoid"),
            ),
            "sigmoid",
        ),
        (
            "unknown transform",
            foreign(
                names,
                ["layers.0", "layers.1"],
                meta("sigma_transform", "square"),
            ),
            "square",
        ),
        (
            "bad prior",
            foreign(names, ["layers.0", "layers.1"], meta("prior_scale", "-1")),
            "prior_scale",
        ),
        (
            "other format",
            foreign(names, ["layers.0", "layers.1"], meta("format", "pickle")),
            "format",
        ),
    ];
    for (what, bytes, needle) in cases {
        match from_bytes(&bytes) {
            Err(e @ Error::BadFile { .. }) => {
                assert!(e.to_string().contains(needle), "{what}: {e}")
            }
            Err(e) => panic!("{what}: unexpected error kind {e}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
    // Missing ρ, NaN μ, a ρ whose σ underflows, a wrong dtype, a layer chain break.
    let single = |name: &str, shape: Vec<usize>, dtype: Dtype, data: Vec<u8>| {
        let v = vec![(
            name.to_string(),
            TensorView::new(dtype, shape, &data).unwrap(),
        )];
        safetensors::serialize(v, None).unwrap()
    };
    let e = from_bytes(&single(
        "layers.0.weight_mu",
        vec![1, 1],
        Dtype::F64,
        0.5f64.to_le_bytes().to_vec(),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("weight_rho"), "{e}");
    let two = |mu: f64, rho: f64| {
        let (a, b) = (mu.to_le_bytes(), rho.to_le_bytes());
        let v = vec![
            (
                "layers.0.weight_mu".to_string(),
                TensorView::new(Dtype::F64, vec![1, 1], &a).unwrap(),
            ),
            (
                "layers.0.weight_rho".to_string(),
                TensorView::new(Dtype::F64, vec![1, 1], &b).unwrap(),
            ),
        ];
        safetensors::serialize(v, None).unwrap()
    };
    assert!(from_bytes(&two(0.0, 0.0)).is_ok());
    let (a, b) = (vec![0u8; 8], vec![0u8; 16]);
    let broken = vec![
        (
            "layers.0.weight_mu".to_string(),
            TensorView::new(Dtype::F64, vec![1, 1], &a).unwrap(),
        ),
        (
            "layers.0.weight_rho".to_string(),
            TensorView::new(Dtype::F64, vec![1, 1], &a).unwrap(),
        ),
        (
            "layers.1.weight_mu".to_string(),
            TensorView::new(Dtype::F64, vec![1, 2], &b).unwrap(),
        ),
        (
            "layers.1.weight_rho".to_string(),
            TensorView::new(Dtype::F64, vec![1, 2], &b).unwrap(),
        ),
    ];
    let e = from_bytes(&safetensors::serialize(broken, None).unwrap()).unwrap_err();
    assert!(
        e.to_string()
            .contains("takes 2 inputs but the previous layer has 1 outputs"),
        "{e}"
    );
    let e = from_bytes(&two(f64::NAN, 0.0)).unwrap_err();
    assert!(
        e.to_string().contains("layers.0.weight_mu") && e.to_string().contains("non-finite"),
        "{e}"
    );
    let e = from_bytes(&two(0.0, f64::INFINITY)).unwrap_err();
    assert!(e.to_string().contains("layers.0.weight_rho"), "{e}");
    let e = from_bytes(&two(0.0, -800.0)).unwrap_err();
    assert!(e.to_string().contains("underflows"), "{e}");
    let e = from_bytes(&single(
        "layers.0.weight_mu",
        vec![1],
        Dtype::I32,
        vec![0; 4],
    ))
    .unwrap_err();
    assert!(e.to_string().contains("I32"), "{e}");
    let e = from_bytes(&single("nolayer", vec![1], Dtype::F64, vec![0; 8])).unwrap_err();
    assert!(
        e.to_string().contains("`nolayer` fits no naming scheme"),
        "{e}"
    );
    let e = load(Path::new("/no/such/posterior.safetensors")).unwrap_err();
    assert!(
        e.to_string().contains("/no/such/posterior.safetensors"),
        "{e}"
    );
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

#[test]
fn hostile_mnist_files_are_named_errors() {
    let dir = tmp("mnist-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let images = idx(&[2, 28, 28], &vec![7u8; 2 * 784]);
    write(&dir.join("train-images-idx3-ubyte.gz"), &gz(&images));
    write(&dir.join("train-labels-idx1-ubyte"), &idx(&[3], &[1, 2, 3]));
    let e = load_mnist(&dir, MnistSplit::Train, None, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("3 labels for 2 images"), "{e}");
    write(&dir.join("train-labels-idx1-ubyte"), &idx(&[2], &[1, 12]));
    let e = load_mnist(&dir, MnistSplit::Train, None, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("label 12"), "{e}");
    write(&dir.join("train-labels-idx1-ubyte"), &idx(&[2], &[1, 2]));
    let d = load_mnist(&dir, MnistSplit::Train, None, &Default::default()).unwrap();
    assert_eq!(d.len(), 2);
    // Truncated gzip stream and truncated data.
    let g = gz(&images);
    write(&dir.join("train-images-idx3-ubyte.gz"), &g[..g.len() / 2]);
    let e = load_mnist(&dir, MnistSplit::Train, None, &Default::default()).unwrap_err();
    assert!(
        e.to_string().contains("train-images-idx3-ubyte.gz") && e.to_string().contains("gzip"),
        "{e}"
    );
    write(
        &dir.join("train-images-idx3-ubyte.gz"),
        &gz(&images[..images.len() - 5]),
    );
    let e = load_mnist(&dir, MnistSplit::Train, None, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    // Wrong magic.
    let mut wrong = images.clone();
    wrong[0] = 0x1f;
    write(&dir.join("train-images-idx3-ubyte.gz"), &gz(&wrong));
    assert!(
        load_mnist(&dir, MnistSplit::Train, None, &Default::default())
            .unwrap_err()
            .to_string()
            .contains("magic")
    );
    // Missing test split.
    let e = load_mnist(&dir, MnistSplit::Test, None, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("t10k-images-idx3-ubyte"), "{e}");
    assert!(read_idx(&dir.join("nope"), &Default::default()).is_err());
}

#[test]
fn csv_files_load_and_bad_cells_are_named() {
    let path = tmp("data.csv");
    write(&path, b"x1,x2,y\n0.5,1,2\n-1,2.5,0\n");
    let d = load_csv(&path, 1, false, &Default::default()).unwrap();
    assert_eq!((d.len(), d.x().ncols()), (2, 2));
    match d.targets() {
        Targets::Values(y) => assert_eq!((y[(0, 0)], y[(1, 0)]), (2.0, 0.0)),
        _ => panic!(),
    }
    let c = load_csv(&path, 1, true, &Default::default()).unwrap();
    assert_eq!(c.n_classes(), Some(3));
    for (text, needle) in [
        ("1,2,3\n4,x,6\n", "line 2, column 2"),
        ("1,2,3\n4,5\n", "line 2: 2 columns"),
        ("1,2,3\n4,5,NaN\n", "not finite"),
        ("a,b,c\n", "no data rows"),
        ("1\n", "no inputs"),
        // A typo in the first data row is not a header (issue 27 item 7).
        (
            "0.5,1x,2\n1,2,3\n",
            "line 1, column 2: `1x` is not a number (a header line has no numeric cell",
        ),
    ] {
        write(&path, text.as_bytes());
        let e = load_csv(&path, 1, false, &Default::default()).unwrap_err();
        assert!(e.to_string().contains(needle), "{text:?}: {e}");
    }
    write(&path, b"1,2,0.5\n");
    assert!(
        load_csv(&path, 1, true, &Default::default())
            .unwrap_err()
            .to_string()
            .contains("label 0.5")
    );
}
