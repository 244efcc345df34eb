//! The bad-input table of the README (issue 8 item 2): every row is run here, from a
//! folder holding the files it names, and must fail with its exit code and message.

use std::path::{Path, PathBuf};
use std::process::Command;

use safetensors::tensor::{Dtype, TensorView};

const START: &str = "<!-- bad-input-table:start -->";
const END: &str = "<!-- bad-input-table:end -->";

/// `(bad input, command, message excerpt, exit code)` rows of the README table.
fn readme_rows() -> Vec<(String, String, String, i32)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = &readme[readme.find(START).expect("table start") + START.len()
        ..readme.find(END).expect("table end")];
    let ticked = |cell: &str| -> String {
        let c = cell.trim();
        c.strip_prefix("`` ")
            .and_then(|c| c.strip_suffix(" ``"))
            .or_else(|| c.strip_prefix('`').and_then(|c| c.strip_suffix('`')))
            .unwrap_or(c)
            .to_string()
    };
    table
        .lines()
        .filter(|l| l.starts_with('|') && !l.contains("---") && !l.contains("Bad input"))
        .map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split(" | ").collect();
            assert_eq!(cells.len(), 4, "row {l}");
            (
                cells[0].trim().to_string(),
                ticked(cells[1]),
                ticked(cells[2]).replace("\\|", "|"),
                cells[3]
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("exit code in {l}")),
            )
        })
        .collect()
}

/// A safetensors file from `(name, shape, f64 values)` and metadata.
fn safetensors_file(
    tensors: &[(String, Vec<usize>, Vec<f64>)],
    meta: &[(String, String)],
) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F64, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let meta: std::collections::HashMap<String, String> = meta.iter().cloned().collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

/// Tensors as (name, shape, values).
type Tensors = Vec<(String, Vec<usize>, Vec<f64>)>;
/// Metadata as (key, value).
type Meta = Vec<(String, String)>;

/// The tensors and metadata of a valid posterior file, to be edited.
fn parts(bytes: &[u8]) -> (Tensors, Meta) {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let meta = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut tensors = crate::common::f64_tensors(bytes);
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    (tensors, meta)
}

/// A folder of small uncompressed MNIST-format files (10 images per split), with an
/// optional edit of the training images or labels.
fn mnist_dir(dir: &Path, edit_images: impl Fn(&mut Vec<u8>), edit_labels: impl Fn(&mut Vec<u8>)) {
    std::fs::create_dir_all(dir).unwrap();
    for split in ["train", "t10k"] {
        let mut img = vec![0, 0, 8, 3];
        for d in [10u32, 28, 28] {
            img.extend(d.to_be_bytes());
        }
        img.extend((0..10 * 784).map(|i| (i % 251) as u8));
        let mut lab = vec![0, 0, 8, 1];
        lab.extend(10u32.to_be_bytes());
        lab.extend(0..10u8);
        if split == "train" {
            edit_images(&mut img);
            edit_labels(&mut lab);
        }
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), img).unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), lab).unwrap();
    }
}

/// Every file the table's commands name.
fn fixtures(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let good = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/posterior/abs-2.safetensors"
    ))
    .unwrap();
    std::fs::write(dir.join("good.safetensors"), &good).unwrap();
    std::fs::write(dir.join("truncated.safetensors"), &good[..good.len() / 2]).unwrap();
    let mut lying = good.clone();
    lying[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(dir.join("lying-header.safetensors"), lying).unwrap();
    let (tensors, meta) = parts(&good);
    let edit = |f: &dyn Fn(&mut Tensors, &mut Meta)| {
        let (mut t, mut m) = (tensors.clone(), meta.clone());
        f(&mut t, &mut m);
        safetensors_file(&t, &m)
    };
    let tensor = |t: &mut Vec<(String, Vec<usize>, Vec<f64>)>, name: &str| -> usize {
        t.iter()
            .position(|x| x.0 == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    std::fs::write(
        dir.join("shape-mismatch.safetensors"),
        edit(&|t, _| {
            let i = tensor(t, "layers.0.weight_rho");
            t[i].1 = vec![1, t[i].2.len()];
        }),
    )
    .unwrap();
    std::fs::write(
        dir.join("nan-mu.safetensors"),
        edit(&|t, _| {
            let i = tensor(t, "layers.0.weight_mu");
            t[i].2[0] = f64::NAN;
        }),
    )
    .unwrap();
    std::fs::write(
        dir.join("inf-rho.safetensors"),
        edit(&|t, _| {
            let i = tensor(t, "layers.1.weight_rho");
            t[i].2[0] = f64::INFINITY;
        }),
    )
    .unwrap();
    std::fs::write(
        dir.join("sigma-underflow.safetensors"),
        edit(&|t, _| {
            let i = tensor(t, "layers.0.weight_rho");
            t[i].2[1] = -800.0;
        }),
    )
    .unwrap();
    std::fs::write(
        dir.join("gelu.safetensors"),
        edit(&|_, m| {
            m.retain(|(k, _)| k != "activation");
            m.push(("activation".into(), "gelu".into()));
        }),
    )
    .unwrap();
    std::fs::write(
        dir.join("unknown-name.safetensors"),
        edit(&|t, _| {
            let i = tensor(t, "layers.0.weight_mu");
            t[i].0 = "layers.0.gamma".into();
        }),
    )
    .unwrap();
    std::fs::write(
        dir.join("mixed-sigma.safetensors"),
        edit(&|t, _| {
            // σ itself beside ρ elsewhere: valid σ values, so only the mixing is wrong.
            let i = tensor(t, "layers.1.weight_rho");
            t[i].0 = "layers.1.weight.scale".into();
            t[i].2.iter_mut().for_each(|r| *r = r.exp());
        }),
    )
    .unwrap();
    // Permutation specs (docs/specs.md) for the 1-2-1 posterior `good`.
    let spec =
        |axes: &str, perms: &str| format!(r#"{{"permutations": {perms}, "axes": {{{axes}}}}}"#);
    let mlp_axes = r#""layers.0.weight": ["h1", null], "layers.0.bias": ["h1"], "layers.1.weight": [null, "h1"], "layers.1.bias": [null]"#;
    for (file, text) in [
        (
            "extra-tensor.json",
            spec(
                &format!(r#"{mlp_axes}, "layers.2.weight": [null, null]"#),
                r#"{"h1": 2}"#,
            ),
        ),
        ("wrong-size.json", spec(mlp_axes, r#"{"h1": 3}"#)),
        (
            "missing-tensor.json",
            spec(
                r#""layers.0.weight": ["h1", null], "layers.0.bias": ["h1"], "layers.1.weight": [null, "h1"]"#,
                r#"{"h1": 2}"#,
            ),
        ),
        ("good.json", spec(mlp_axes, r#"{"h1": 2}"#)),
        (
            "square.json",
            spec(
                &format!(r#"{mlp_axes}, "mix.weight": ["h1", "h1"]"#),
                r#"{"h1": 2}"#,
            ),
        ),
        (
            "not-a-spec.json",
            r#"{"permutations": {"h1": 2}, "axis": {}}"#.to_string(),
        ),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/specs/cnn-small.safetensors"
        ),
        dir.join("conv.safetensors"),
    )
    .unwrap();
    std::fs::write(dir.join("empty.csv"), "x,y\n").unwrap();
    std::fs::write(dir.join("target-huge.csv"), "x,y\n0.5,1\n0.25,1e300\n").unwrap();
    std::fs::write(
        dir.join("mu-huge.safetensors"),
        edit(&|t, _| {
            let i = tensor(t, "layers.0.weight_mu");
            t[i].2[0] = 1e155;
        }),
    )
    .unwrap();
    std::fs::write(
        dir.join("twice.json"),
        r#"{"permutations": {"h1": 2, "h1": 3}, "axes": {"layers.0.weight": ["h1", null], "layers.0.bias": ["h1"], "layers.1.weight": [null, "h1"], "layers.1.bias": [null]}}"#,
    )
    .unwrap();
    // A 1 MB gzip IDX file whose header claims 1.37 M images (1 GB of pixels).
    std::fs::create_dir_all(dir.join("idx-bomb")).unwrap();
    for (name, header) in [
        (
            "train-images-idx3-ubyte.gz",
            [0u8, 0, 8, 3]
                .iter()
                .copied()
                .chain([1_370_000u32, 28, 28].iter().flat_map(|d| d.to_be_bytes()))
                .collect::<Vec<u8>>(),
        ),
        (
            "train-labels-idx1-ubyte.gz",
            [0u8, 0, 8, 1]
                .iter()
                .copied()
                .chain(1_370_000u32.to_be_bytes())
                .collect(),
        ),
    ] {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&header).unwrap();
        e.write_all(&vec![0u8; 1 << 20]).unwrap();
        std::fs::write(dir.join("idx-bomb").join(name), e.finish().unwrap()).unwrap();
    }
    std::fs::write(dir.join("two-inputs.csv"), "a,b,y\n0.5,1,2\n0.25,2,1\n").unwrap();
    std::fs::write(dir.join("typo-first.csv"), "0.5,1x\n1,2\n").unwrap();
    std::fs::write(dir.join("text.csv"), "x,y\n0.5,1\n0.25,abc\n").unwrap();
    mnist_dir(&dir.join("bad-labels"), |_| {}, |l| l[8 + 3] = 12);
    mnist_dir(&dir.join("bad-magic"), |i| i[0] = 1, |_| {});
    mnist_dir(
        &dir.join("lying-idx"),
        |i| i[4..8].copy_from_slice(&11u32.to_be_bytes()),
        |_| {},
    );
    std::fs::write(dir.join("existing.safetensors"), &good).unwrap();
    // A fixed 2 × 2 tensor that the hidden permutation moves on both axes.
    std::fs::write(
        dir.join("fixed-square.safetensors"),
        edit(&|t, _| t.push(("mix.weight".into(), vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]))),
    )
    .unwrap();
    // Files made by the real libraries (data/fixtures/make_posteriors.py).
    for name in [
        "bt-encoder-decoder.safetensors",
        "torch-save.pt",
        "bayesian-torch.json",
        "pyro-diagonal.safetensors",
        "pyro-get-state.safetensors",
        "npz-duplicate-member.npz",
    ] {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/fixtures")
            .join(name);
        std::fs::copy(&from, dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // One layer's index written two ways: `layers.1` and `layers.01`.
    std::fs::write(
        dir.join("aliased-index.safetensors"),
        edit(&|t, _| {
            let i = tensor(t, "layers.1.weight_rho");
            t[i].0 = "layers.01.weight_rho".into();
        }),
    )
    .unwrap();
    // Two shards of a run, then one byte of the first shard's Parquet file flipped.
    for i in ["0", "1"] {
        let out = Command::new(env!("CARGO_BIN_EXE_mi-est"))
            .args([
                "run",
                "--posterior",
                "good.safetensors",
                "--k",
                "2",
                "--samples",
                "5",
                "--repeats",
                "2",
            ])
            .args([
                "--elbo-samples",
                "2",
                "--num-shards",
                "2",
                "--shard-index",
                i,
                "--out",
                "shards",
                "--overwrite",
            ])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A forged shard: shard 0 replaced by bytes that are no raw rows, with its
    // manifest's hash updated so that they reach the reader.
    let forged = dir.join("forged");
    std::fs::create_dir_all(&forged).unwrap();
    for f in std::fs::read_dir(dir.join("shards")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, forged.join(f.file_name().unwrap())).unwrap();
    }
    let bytes = b"{\"item\": 0}\n".to_vec();
    std::fs::write(forged.join("raw-shard-0-of-2.jsonl"), &bytes).unwrap();
    let mpath = forged.join("manifest-shard-0-of-2.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["raw_sha256"] = mi_est::grid::sha256_hex(&bytes).into();
    std::fs::write(&mpath, m.to_string()).unwrap();
    // Shard rows of another grid: K = 3 where the grid has K = 2, hash recomputed.
    let forged_k = dir.join("forged-k");
    std::fs::create_dir_all(&forged_k).unwrap();
    for f in std::fs::read_dir(dir.join("shards")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, forged_k.join(f.file_name().unwrap())).unwrap();
    }
    let shard_k = forged_k.join("raw-shard-0-of-2.jsonl");
    let text = std::fs::read_to_string(&shard_k).unwrap();
    let text = text.replacen("\"k\":2", "\"k\":3", 1);
    std::fs::write(&shard_k, &text).unwrap();
    let mpath = forged_k.join("manifest-shard-0-of-2.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["raw_sha256"] = mi_est::grid::sha256_hex(text.as_bytes()).into();
    std::fs::write(&mpath, m.to_string()).unwrap();
    let shard = dir.join("shards/raw-shard-0-of-2.jsonl");
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&shard, bytes).unwrap();
}

#[test]
fn every_row_of_the_readme_bad_input_table_fails_as_documented() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("mi-est-bad-input-{}", std::process::id()));
    fixtures(&dir);
    let rows = readme_rows();
    assert!(rows.len() >= 12, "only {} rows", rows.len());
    let mut failures = Vec::new();
    for (what, command, excerpt, code) in &rows {
        let mut words = command.split_whitespace();
        assert_eq!(words.next(), Some("mi-est"), "{command}");
        let out = Command::new(env!("CARGO_BIN_EXE_mi-est"))
            .args(words)
            .current_dir(&dir)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let excerpt = excerpt.split('…').next().unwrap().trim();
        // The error alone: no panic message of a dependency before it.
        if out.status.code() != Some(*code)
            || !stderr.contains(excerpt)
            || stderr.contains("panicked")
        {
            failures.push(format!(
                "{what}: `{command}` exited {:?} (want {code}) with:\n{stderr}",
                out.status.code()
            ));
        }
        // Nothing partial is left behind: no report, no posterior written.
        assert!(!dir.join("out").join("raw.parquet").exists(), "{what}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
