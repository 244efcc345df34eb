//! The hostile corpus through every command (issue 27): a generator writes the files an
//! adversarial user would hand the tool (non-finite and overflowing values, duplicate
//! `.npz` members and spec keys, decompression bombs, absurd work, forged shards), and
//! each case runs the command with a time limit. Every case must end: with a result where
//! one is right, else with exit 1 or 2 and a one-line error that names the problem.
//!
//! The counts (cases, clean errors, results, panics, hangs, wrong results) are printed;
//! `MI_EST_HOSTILE_BIN=<binary>` runs the corpus against another build of the command
//! (an older one, to count what it got wrong) and reports instead of asserting.
//!
//! Also here: a `run` killed at each rename of its report write (strace's fault
//! injection) is finished by the rerun; two runs into one folder: one works, the other
//! says the folder is busy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use safetensors::tensor::{Dtype, TensorView};

use super::common::{Scratch, f64_tensors, read_raw};

/// The longest a case may take before it counts as a hang.
const CASE_LIMIT: Duration = Duration::from_secs(60);

/// What a case must do.
#[derive(Clone, Debug)]
enum Expect {
    /// Exit 0, no NaN or ∞ printed.
    Works,
    /// Exit 1 or 2 with one `error:` line containing this excerpt.
    Refused(&'static str),
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    expect: Expect,
}

fn case(name: &'static str, args: &[&str], expect: Expect) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        expect,
    }
}

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The refusal the case expects: exit 1 or 2, one error line with the excerpt.
    CleanError,
    /// The result the case expects.
    Result,
    /// Exit 101, an abort or another signal, or a panic message.
    Panic,
    /// Still running at the time limit (killed).
    Hang,
    /// Exit 0 where a refusal is right, NaN or ∞ printed, an error where a result is
    /// right, or an error that is not one line naming the problem.
    Wrong,
}

/// A safetensors file of F64 tensors with metadata.
fn safetensors_bytes(tensors: &[(String, Vec<usize>, Vec<f64>)], meta: &[(&str, &str)]) -> Vec<u8> {
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&data)
        .map(|((n, s, _), d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F64, s.clone(), d).unwrap(),
            )
        })
        .collect();
    let meta = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

/// An MLP's mean-field tensors (`layers.i.weight_mu`, …) with μ from `mu(i)` and ρ
/// from `rho(i)` over each tensor's flat index.
fn mlp_tensors(
    widths: &[usize],
    mu: impl Fn(usize) -> f64,
    rho: impl Fn(usize) -> f64,
) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let mut out = Vec::new();
    let mut at = 0;
    for (l, w) in widths.windows(2).enumerate() {
        for (part, shape) in [("weight", vec![w[1], w[0]]), ("bias", vec![w[1]])] {
            let n: usize = shape.iter().product();
            let mus = (at..at + n).map(&mu).collect();
            let rhos = (at..at + n).map(&rho).collect();
            at += n;
            out.push((format!("layers.{l}.{part}_mu"), shape.clone(), mus));
            out.push((format!("layers.{l}.{part}_rho"), shape, rhos));
        }
    }
    out
}

fn mlp_file(widths: &[usize], mu: impl Fn(usize) -> f64, rho: impl Fn(usize) -> f64) -> Vec<u8> {
    safetensors_bytes(&mlp_tensors(widths, mu, rho), &[("activation", "relu")])
}

/// One `.npy` array of little-endian f8 values (or only its header and `data_len` zero
/// bytes, when `values` is `None`).
fn npy(shape: &[usize], values: Option<&[f64]>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((header.len() as u16).to_le_bytes());
    b.extend(header.as_bytes());
    match values {
        Some(v) => b.extend(v.iter().flat_map(|x| x.to_le_bytes())),
        None => b.resize(b.len() + 8 * shape.iter().product::<usize>(), 0),
    }
    b
}

/// A ZIP archive (stored or deflated members, CRC left 0: the reader does not check it)
/// of `(name, uncompressed bytes, declared size)`.
fn zip(members: &[(String, Vec<u8>, Option<u32>)], deflate: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, declared) in members {
        let body = if deflate {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.clone()
        };
        let size = declared.unwrap_or(data.len() as u32);
        let method: u16 = if deflate { 8 } else { 0 };
        let offset = out.len() as u32;
        out.extend(b"PK\x03\x04");
        out.extend(20u16.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(method.to_le_bytes());
        out.extend([0u8; 8]);
        out.extend((body.len() as u32).to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(&body);
        central.extend(b"PK\x01\x02");
        central.extend(20u16.to_le_bytes());
        central.extend(20u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(method.to_le_bytes());
        central.extend([0u8; 8]);
        central.extend((body.len() as u32).to_le_bytes());
        central.extend(size.to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend([0u8; 8]);
        central.extend(0u32.to_le_bytes());
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd = out.len() as u32;
    out.extend(&central);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 4]);
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// An MLP posterior as `.npz` members.
fn npz_members(widths: &[usize]) -> Vec<(String, Vec<u8>, Option<u32>)> {
    mlp_tensors(widths, |i| 0.1 * (i % 7) as f64 - 0.3, |_| -2.0)
        .into_iter()
        .map(|(n, s, v)| (format!("{n}.npy"), npy(&s, Some(&v)), None))
        .collect()
}

/// gzip of `head` followed by `zeros` zero bytes.
fn gzip(head: &[u8], zeros: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(head).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len());
        e.write_all(&block[..n]).unwrap();
        left -= n;
    }
    e.finish().unwrap()
}

fn idx_header(magic: u8, dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, magic];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v
}

/// The command under test: this build, or `MI_EST_HOSTILE_BIN`.
fn binary() -> (PathBuf, bool) {
    match std::env::var_os("MI_EST_HOSTILE_BIN") {
        Some(b) => (PathBuf::from(b), true),
        None => (PathBuf::from(env!("CARGO_BIN_EXE_mi-est")), false),
    }
}

fn mi_est(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary().0)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Forges shard 0 of the sharded run in `dir`: `edit` changes its rows (JSON values),
/// and the manifest's SHA-256 is recomputed so that only the row check can see it.
fn forge(dir: &Path, edit: impl Fn(&mut Vec<serde_json::Value>)) {
    let p = dir.join("raw-shard-0-of-2.jsonl");
    let mut rows: Vec<serde_json::Value> = std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    edit(&mut rows);
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&p, &text).unwrap();
    let mp = dir.join("manifest-shard-0-of-2.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&mp).unwrap()).unwrap();
    m["raw_sha256"] = serde_json::Value::String(mi_est::grid::sha256_hex(text.as_bytes()));
    std::fs::write(&mp, m.to_string()).unwrap();
}

/// An edit of a shard's rows.
type Edit = fn(&mut Vec<serde_json::Value>);

/// Writes the corpus into `dir` and lists its cases.
fn corpus(dir: &Path) -> Vec<Case> {
    use Expect::{Refused, Works};
    let w = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    let good = |i: usize| 0.3 * ((i * 7919) % 13) as f64 / 13.0 - 0.15;
    // Posteriors whose values overflow f64 once squared.
    w(
        "mu-1e155.safetensors",
        &mlp_file(
            &[1, 3, 1],
            |i| if i == 0 { 1e155 } else { good(i) },
            |_| -2.0,
        ),
    );
    w(
        "rho-1e155.safetensors",
        &mlp_file(&[1, 3, 1], good, |i| if i == 1 { 1e155 } else { -2.0 }),
    );
    w(
        "sigma-tiny.safetensors",
        &mlp_file(&[1, 3, 1], good, |i| if i == 1 { -120.0 } else { -2.0 }),
    );
    w(
        "mu-1e29.safetensors",
        &mlp_file(
            &[1, 3, 1],
            |i| if i == 0 { 1e29 } else { good(i) },
            |_| -2.0,
        ),
    );
    w("good.safetensors", &mlp_file(&[1, 3, 1], good, |_| -2.0));
    let regression = [("activation", "relu"), ("likelihood", "gaussian")];
    w(
        "regression.safetensors",
        &safetensors_bytes(&mlp_tensors(&[1, 3, 1], good, |_| -2.0), &regression),
    );
    let mut aliased = mlp_tensors(&[1, 3, 1], good, |_| -2.0);
    aliased[5].0 = "layers.01.weight_rho".into();
    assert_eq!(aliased[4].0, "layers.1.weight_mu");
    w(
        "aliased.safetensors",
        &safetensors_bytes(&aliased, &[("activation", "relu")]),
    );
    w(
        "two-hidden-40.safetensors",
        &mlp_file(&[1, 40, 40, 1], good, |_| -2.0),
    );
    // A Pyro AutoNormal file whose scale is 1e308.
    let pyro = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/pyro-autonormal.safetensors"),
    )
    .unwrap();
    let mut t = f64_tensors(&pyro);
    let s = t.iter().position(|(n, _, _)| n.contains("scales")).unwrap();
    t[s].2[0] = 1e308;
    let meta = safetensors::SafeTensors::read_metadata(&pyro).unwrap().1;
    let meta: Vec<(String, String)> = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let meta: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    w(
        "pyro-scale-1e308.safetensors",
        &safetensors_bytes(&t, &meta),
    );
    // .npz: a member twice, a bomb, a member that declares more than it holds, a cut
    // archive.
    let mut members = npz_members(&[1, 3, 1]);
    members.push(members[0].clone());
    w("npz-twice.npz", &zip(&members, false));
    w(
        "npz-bomb.npz",
        &zip(
            &[(
                "layers.0.weight_mu.npy".into(),
                npy(&[1 << 25, 1], None),
                None,
            )],
            true,
        ),
    );
    let mut members = npz_members(&[1, 3, 1]);
    members[0].2 = Some(members[0].1.len() as u32 + 1000);
    w("npz-lying-size.npz", &zip(&members, true));
    let whole = zip(&npz_members(&[1, 3, 1]), true);
    w("npz-cut.npz", &whole[..whole.len() - 30]);
    w("empty.safetensors", b"");
    // A 1-100000-1 net: the sandwich's d × d matrices do not fit.
    let wide: Vec<(String, Vec<u8>, Option<u32>)> =
        mlp_tensors(&[1, 100_000, 1], |i| (i % 5) as f64, |_| -3.0)
            .into_iter()
            .map(|(n, s, v)| (format!("{n}.npy"), npy(&s, Some(&v)), None))
            .collect();
    w("wide.npz", &zip(&wide, true));
    // Specs: a key twice, an absurd size.
    w(
        "spec-twice.json",
        br#"{"permutations": {"h1": 3, "h1": 2}, "axes": {"layers.0.weight": ["h1", null], "layers.0.bias": ["h1"], "layers.1.weight": [null, "h1"], "layers.1.bias": [null]}}"#,
    );
    w(
        "spec-huge.json",
        br#"{"permutations": {"h1": 1000000000000000000}, "axes": {"layers.0.weight": ["h1", null], "layers.0.bias": ["h1"], "layers.1.weight": [null, "h1"], "layers.1.bias": [null]}}"#,
    );
    w(
        "spec-good.json",
        br#"{"permutations": {"h1": 3}, "axes": {"layers.0.weight": ["h1", null], "layers.0.bias": ["h1"], "layers.1.weight": [null, "h1"], "layers.1.bias": [null]}}"#,
    );
    // Data: a target of 1e300, a typo in the first row, IDX bombs.
    w("target-1e300.csv", b"0.5,1\n1.0,1e300\n1.5,2\n");
    w("typo-first.csv", b"0.5,1x\n1.0,2\n");
    std::fs::create_dir_all(dir.join("idx-huge")).unwrap();
    std::fs::write(
        dir.join("idx-huge/train-images-idx3-ubyte.gz"),
        gzip(&idx_header(3, &[1_370_000, 28, 28]), 1 << 20),
    )
    .unwrap();
    std::fs::write(
        dir.join("idx-huge/train-labels-idx1-ubyte.gz"),
        gzip(&idx_header(1, &[1_370_000]), 0),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("idx-long")).unwrap();
    std::fs::write(
        dir.join("idx-long/train-images-idx3-ubyte.gz"),
        gzip(&idx_header(3, &[2000, 28, 28]), 64 << 20),
    )
    .unwrap();
    std::fs::write(
        dir.join("idx-long/train-labels-idx1-ubyte.gz"),
        gzip(&idx_header(1, &[2000]), 2000),
    )
    .unwrap();
    // A report folder whose summary is endless, and a recorded S that is no report's.
    std::fs::create_dir_all(dir.join("endless-page")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/dev/zero", dir.join("endless-page/summary.md")).unwrap();
    std::fs::create_dir_all(dir.join("huge-samples")).unwrap();
    w(
        "huge-samples/manifest.json",
        br#"{"samples": {"x": 1000000000000000000}}"#,
    );
    // Shards of a real run, forged in six ways with their hashes recomputed.
    let forgeries: [(&'static str, Edit, &'static str); 6] = [
        ("k3", |r| r[0]["k"] = 3.into(), "`k` of the row of item `0`"),
        (
            "magic",
            |r| r[0]["estimator"] = "magic".into(),
            "`estimator` of the row of item `0`",
        ),
        (
            "seed",
            |r| r[0]["seed"] = (r[0]["seed"].as_u64().unwrap() ^ 1).into(),
            "`seed` of the row of item `0`",
        ),
        (
            "nan",
            |r| r[0]["mi_nats"] = "7ff8000000000000".into(),
            "must be finite",
        ),
        (
            "inf",
            |r| r[0]["mi_nats"] = "7ff0000000000000".into(),
            "must be finite",
        ),
        ("twice", |r| r[1] = r[0].clone(), "is in the shards twice"),
    ];
    let mut cases = vec![
        case(
            "μ = 1e155",
            &["run", "--posterior", "mu-1e155.safetensors", "--out", "o"],
            Refused("beyond ±1e30"),
        ),
        case(
            "ρ = 1e155",
            &["run", "--posterior", "rho-1e155.safetensors", "--out", "o"],
            Refused("above 1e30"),
        ),
        case(
            "σ = e^-120",
            &["inspect", "sigma-tiny.safetensors"],
            Refused("below 1e-30"),
        ),
        case(
            "μ = 1e29 (finite, large)",
            &[
                "run",
                "--posterior",
                "mu-1e29.safetensors",
                "--k",
                "2",
                "--samples",
                "5",
                "--repeats",
                "1",
                "--out",
                "o",
            ],
            Works,
        ),
        case(
            "Pyro scale 1e308",
            &[
                "run",
                "--posterior",
                "pyro-scale-1e308.safetensors",
                "--k",
                "2",
                "--samples",
                "5",
                "--repeats",
                "1",
                "--out",
                "o",
            ],
            Refused("1e30"),
        ),
        case(
            "npz member twice",
            &["inspect", "npz-twice.npz"],
            Refused("stored twice"),
        ),
        case(
            "npz bomb (256 MiB of zeros)",
            &["run", "--posterior", "npz-bomb.npz", "--out", "o"],
            Refused("would need about"),
        ),
        case(
            "npz member declaring more than it holds",
            &["inspect", "npz-lying-size.npz"],
            Refused("layers.0.weight_mu"),
        ),
        case(
            "npz cut short",
            &["inspect", "npz-cut.npz"],
            Refused("npz-cut.npz"),
        ),
        case(
            "empty posterior file",
            &["inspect", "empty.safetensors"],
            Refused("empty.safetensors"),
        ),
        case(
            "a folder as posterior",
            &["inspect", "idx-long"],
            Refused("idx-long"),
        ),
        case(
            "/dev/zero as posterior",
            &["inspect", "/dev/zero"],
            Refused("would need about"),
        ),
        case(
            "aliased layer indices",
            &["run", "--posterior", "aliased.safetensors", "--out", "o"],
            Refused("have the same index"),
        ),
        case(
            "sandwich on a 100,000-wide layer",
            &[
                "run",
                "--posterior",
                "wide.npz",
                "--estimators",
                "sandwich",
                "--k",
                "2",
                "--out",
                "o",
            ],
            Refused("would need about"),
        ),
        case(
            "exact on two hidden layers of 40",
            &[
                "run",
                "--posterior",
                "two-hidden-40.safetensors",
                "--estimators",
                "exact",
                "--out",
                "o",
            ],
            Refused("exact I needs"),
        ),
        case(
            "spec key twice",
            &[
                "run",
                "--posterior",
                "good.safetensors",
                "--spec",
                "spec-twice.json",
                "--out",
                "o",
            ],
            Refused("given twice"),
        ),
        case(
            "spec size 1e18",
            &["inspect", "good.safetensors", "--spec", "spec-huge.json"],
            Refused("h1"),
        ),
        case(
            "spec on an MLP file with ELBO data",
            &[
                "run",
                "--posterior",
                "good.safetensors",
                "--spec",
                "spec-good.json",
                "--data",
                "abs:0.1",
                "--k",
                "2",
                "--samples",
                "5",
                "--out",
                "o",
            ],
            Refused("abs:0.1"),
        ),
        case(
            "CSV target 1e300",
            &[
                "train",
                "--data",
                "csv:target-1e300.csv",
                "--hidden",
                "2",
                "--epochs",
                "1",
                "--out",
                "t.safetensors",
            ],
            Refused("beyond ±1e30"),
        ),
        case(
            "CSV typo in the first row",
            &[
                "train",
                "--data",
                "csv:typo-first.csv",
                "--hidden",
                "2",
                "--out",
                "t.safetensors",
            ],
            Refused("`1x` is not a number"),
        ),
        case(
            "csv:/dev/zero",
            &["train", "--data", "csv:/dev/zero", "--out", "t.safetensors"],
            Refused("would need about"),
        ),
        case(
            "IDX header of 1.37 M images",
            &[
                "train",
                "--data",
                "mnist:idx-huge",
                "--out",
                "t.safetensors",
            ],
            Refused("would need about"),
        ),
        case(
            "IDX of 2,000 images over 64 MiB",
            &[
                "train",
                "--data",
                "mnist:idx-long",
                "--out",
                "t.safetensors",
            ],
            Refused("but the file has more"),
        ),
        case(
            "mixture of dimension 1e12",
            &[
                "train",
                "--data",
                "mixture:3:1000000000000",
                "--out",
                "t.safetensors",
            ],
            Refused("would need about"),
        ),
        case(
            "--repeats 1e9",
            &[
                "run",
                "--posterior",
                "good.safetensors",
                "--repeats",
                "1000000000",
                "--out",
                "o",
            ],
            Refused("at most 10000000 items"),
        ),
        case(
            "--elbo-samples 1e11",
            &[
                "run",
                "--posterior",
                "regression.safetensors",
                "--data",
                "abs:0.1",
                "--elbo-samples",
                "100000000000",
                "--k",
                "2",
                "--out",
                "o",
            ],
            Refused("would need about"),
        ),
        case(
            "--k 1e12",
            &[
                "run",
                "--posterior",
                "good.safetensors",
                "--k",
                "1000000000000",
                "--out",
                "o",
            ],
            Refused("would need about"),
        ),
        case(
            "train --epochs 1e12",
            &[
                "train",
                "--data",
                "abs:0.1",
                "--epochs",
                "1000000000000",
                "--out",
                "t.safetensors",
            ],
            Refused("would need about"),
        ),
        case(
            "train --predictive-samples 1e13",
            &[
                "train",
                "--data",
                "abs:0.1",
                "--predictive-samples",
                "10000000000000",
                "--out",
                "t.safetensors",
            ],
            Refused("would need about"),
        ),
        case(
            "train --elbo-samples 1e11",
            &[
                "train",
                "--data",
                "abs:0.1",
                "--elbo-samples",
                "100000000000",
                "--out",
                "t.safetensors",
            ],
            Refused("would need about"),
        ),
        case(
            "train --k 1e9",
            &[
                "train",
                "--data",
                "abs:0.1",
                "--objective",
                "sgm",
                "--k",
                "1000000000",
                "--out",
                "t.safetensors",
            ],
            Refused("would need about"),
        ),
        case(
            "train --hidden 1e8",
            &[
                "train",
                "--data",
                "abs:0.1",
                "--hidden",
                "100000000",
                "--out",
                "t.safetensors",
            ],
            Refused("would need about"),
        ),
        case(
            "demo --widths 1,100000,1",
            &["demo", "--widths", "1,100000,1"],
            Refused("would need about"),
        ),
        case(
            "spec of μ = 1e155",
            &[
                "spec",
                "--sequential",
                "mu-1e155.safetensors",
                "--out",
                "s.json",
            ],
            Refused("beyond ±1e30"),
        ),
        case(
            "inspect --layers naming no layer",
            &["inspect", "good.safetensors", "--layers", "nope"],
            Refused("`nope`"),
        ),
        case(
            "page of a folder whose summary is /dev/zero",
            &["page", "endless-page"],
            Works,
        ),
        case(
            "reproduce with a forged recorded S",
            &[
                "reproduce",
                "estimator-cost",
                "--quick",
                "--samples-from",
                "huge-samples",
                "--out",
                "rq",
            ],
            Refused("no S recorded"),
        ),
        case(
            "data set that does not exist",
            &["data", "bogus"],
            Refused("bogus"),
        ),
        case(
            "merge of a folder that does not exist",
            &["merge", "--out", "nowhere"],
            Refused("no such folder"),
        ),
    ];
    for (name, edit, excerpt) in forgeries {
        let shards = dir.join(format!("shards-{name}"));
        for i in ["0", "1"] {
            let out = Command::new(binary().0)
                .args([
                    "run",
                    "--posterior",
                    "good.safetensors",
                    "--estimators",
                    "infonce,exact",
                    "--k",
                    "2",
                    "--samples",
                    "5",
                    "--repeats",
                    "2",
                    "--num-shards",
                    "2",
                    "--shard-index",
                    i,
                    "--out",
                ])
                .arg(&shards)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        forge(&shards, edit);
        let shards = shards.file_name().unwrap().to_string_lossy().into_owned();
        cases.push(Case {
            name: Box::leak(format!("forged shard: {name}").into_boxed_str()),
            args: vec!["merge".into(), "--out".into(), shards],
            expect: Refused(excerpt),
        });
    }
    cases
}

/// Runs one case with the time limit and the memory limit of the test machine.
fn run_case(dir: &Path, c: &Case) -> (Outcome, String) {
    let mut child = Command::new(binary().0)
        .args(["--max-memory-gib", "2"])
        .args(&c.args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > CASE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(status) = status else {
        return (Outcome::Hang, format!("still running after {CASE_LIMIT:?}"));
    };
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    let said = stderr.lines().last().unwrap_or_default().to_string();
    if stderr.contains("panicked") || stderr.contains("memory allocation of") {
        return (Outcome::Panic, said);
    }
    match (status.code(), &c.expect) {
        (None, _) | (Some(101), _) => (Outcome::Panic, format!("{status}: {said}")),
        (Some(0), Expect::Works) => {
            let bad = ["NaN", "inf"].iter().any(|t| {
                stdout
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| w == *t)
            });
            if bad {
                (Outcome::Wrong, "printed NaN or inf".into())
            } else {
                (Outcome::Result, String::new())
            }
        }
        (Some(0), Expect::Refused(_)) => (Outcome::Wrong, "accepted (exit 0)".into()),
        (Some(1 | 2), Expect::Refused(excerpt)) => {
            if errors.len() == 1 && errors[0].contains(excerpt) && !errors[0].contains('\n') {
                (Outcome::CleanError, said)
            } else {
                (Outcome::Wrong, format!("error without `{excerpt}`: {said}"))
            }
        }
        (Some(code), _) => (Outcome::Wrong, format!("exit {code}: {said}")),
    }
}

#[test]
fn the_hostile_corpus_ends_with_a_result_or_a_named_error_in_every_command() {
    let dir = Scratch::new("hostile", "corpus");
    let cases = corpus(&dir);
    let (_, other) = binary();
    let mut counts = std::collections::BTreeMap::new();
    let mut report = String::new();
    let mut failures = Vec::new();
    for c in &cases {
        let (outcome, said) = run_case(&dir, c);
        *counts.entry(format!("{outcome:?}")).or_insert(0) += 1;
        let said = said.chars().take(160).collect::<String>();
        report.push_str(&format!("{outcome:>10?}  {}  {said}\n", c.name));
        if !matches!(outcome, Outcome::CleanError | Outcome::Result) {
            failures.push(format!("{}: {outcome:?}: {said}", c.name));
        }
        // Nothing partial: a refused run leaves no report and no temporary behind.
        if matches!(outcome, Outcome::CleanError) && !other {
            let o = dir.join("o");
            if o.exists() {
                let left: Vec<String> = std::fs::read_dir(&o)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                assert!(
                    left.is_empty(),
                    "{}: left {left:?} in its output folder",
                    c.name
                );
            }
        }
        let _ = std::fs::remove_dir_all(dir.join("o"));
    }
    println!("{} cases: {counts:?}\n{report}", cases.len());
    if !other {
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// A `run` killed (SIGKILL, by strace's fault injection) at each `rename` of its report
/// write leaves a folder that the same command, run again, completes: every report there,
/// the numbers of an uninterrupted run, no journal, lock or temporary left.
#[test]
fn a_run_killed_at_each_rename_of_its_reports_is_finished_by_the_rerun() {
    if Command::new("strace").arg("-V").output().is_err() {
        // `.ci/run` installs strace; on a developer's machine without it, say so.
        assert!(std::env::var_os("CI").is_none(), "strace is needed in CI");
        eprintln!("strace is not installed: the kill test did not run");
        return;
    }
    let dir = Scratch::new("hostile", "kill");
    let tensors = mlp_tensors(&[1, 3, 1], |i| 0.1 * i as f64, |_| -1.0);
    let meta = [("activation", "relu"), ("likelihood", "gaussian")];
    std::fs::write(
        dir.join("good.safetensors"),
        safetensors_bytes(&tensors, &meta),
    )
    .unwrap();
    let args = [
        "run",
        "--posterior",
        "good.safetensors",
        "--k",
        "2,4",
        "--samples",
        "20",
        "--repeats",
        "2",
        "--data",
        "abs:0.1",
    ];
    let with_out = |o: &str| -> Vec<String> {
        args.iter()
            .map(|s| s.to_string())
            .chain(["--out".into(), o.into()])
            .collect()
    };
    let reference = mi_est(
        &dir,
        &with_out("reference")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let files = |o: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join(o))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let want = files("reference");
    let values = |o: &str| -> Vec<u64> {
        read_raw(&dir.join(o).join("raw.parquet"))
            .iter()
            .map(|r| r.mi_nats.to_bits())
            .collect()
    };
    let mut killed = 0;
    for n in 1.. {
        let o = format!("kill-{n}");
        let strace = Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=rename,renameat,renameat2",
                "-e",
            ])
            .arg(format!(
                "inject=rename,renameat,renameat2:signal=KILL:when={n}"
            ))
            .args(["--", binary().0.to_str().unwrap()])
            .args(with_out(&o))
            .current_dir(&*dir)
            .output()
            .unwrap();
        if strace.status.success() {
            // No n-th rename: every kill point has been tried.
            assert_eq!(files(&o), want);
            break;
        }
        killed += 1;
        let rerun = mi_est(
            &dir,
            &with_out(&o).iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert!(
            rerun.status.success(),
            "killed at rename {n}, the rerun failed: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        assert_eq!(files(&o), want, "killed at rename {n}");
        assert_eq!(values(&o), values("reference"), "killed at rename {n}");
    }
    assert!(killed >= 8, "only {killed} renames were killed");
}

/// Two runs into one folder: the second is refused at once, naming the first; the first
/// writes its reports whole.
#[test]
fn a_second_run_into_a_busy_folder_is_refused_naming_the_first() {
    let dir = Scratch::new("hostile", "busy");
    std::fs::write(
        dir.join("good.safetensors"),
        mlp_file(&[1, 3, 1], |i| 0.1 * i as f64, |_| -1.0),
    )
    .unwrap();
    let args = [
        "run",
        "--posterior",
        "good.safetensors",
        "--k",
        "2,64",
        "--samples",
        "100000",
        "--repeats",
        "4",
        "--out",
        "o",
    ];
    let mut first = Command::new(binary().0)
        .args(args)
        .current_dir(&*dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first holds the folder once its lock file names it.
    let lock = dir.join("o").join(mi_est::atomic::LOCK_FILE);
    let start = Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("pid")) {
        assert!(
            start.elapsed() < CASE_LIMIT,
            "the first run never took the folder"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = mi_est(&dir, &args);
    let still_running = first.try_wait().unwrap().is_none();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains("in use by another mi-est") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    assert!(
        still_running,
        "the first run ended before the second was tried: make it longer"
    );
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let raw = read_raw(&dir.join("o").join("raw.parquet"));
    assert_eq!(raw.len(), 12);
    assert!(!dir.join("o").join(".journal.jsonl").exists());
    assert!(!lock.exists());
}

/// A training record's relative data path (issue 27 item 9): `train` writes it relative
/// to the posterior's folder, so `run` finds the data from any folder; an older record,
/// relative to wherever training ran, is read from the current folder, or from the
/// posterior's folder when only there, and refused when the two name different files.
#[test]
fn recorded_training_data_is_found_from_any_folder_or_refused_when_ambiguous() {
    let dir = Scratch::new("hostile", "recorded-data");
    let (a, b) = (dir.join("a"), dir.join("b"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d.join("data")).unwrap();
    }
    let rows: String = (0..20)
        .map(|i| format!("{},{}\n", i as f64 / 10.0, (i % 3) as f64))
        .collect();
    std::fs::write(a.join("data/r.csv"), &rows).unwrap();
    // Trained in `a`, estimated from `b`: the data are found beside the posterior.
    let train = mi_est(
        &a,
        &[
            "train",
            "--data",
            "csv:data/r.csv",
            "--hidden",
            "3",
            "--epochs",
            "1",
            "--out",
            "out/p.safetensors",
        ],
    );
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    let run = mi_est(
        &b,
        &[
            "run",
            "--posterior",
            "../a/out/p.safetensors",
            "--k",
            "2",
            "--samples",
            "5",
            "--repeats",
            "1",
            "--out",
            "o",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bounds = read_parquet_column(&b.join("o/bounds.parquet"), "elbo_per_point");
    assert!(
        bounds.iter().all(|v| v.is_some_and(f64::is_finite)),
        "{bounds:?}"
    );
    // An older record: `csv:data/r.csv` relative to where training ran.
    let config = r#"{"data_spec":"csv:data/r.csv"}"#;
    let meta = [
        ("activation", "relu"),
        ("likelihood", "gaussian"),
        ("train_config", config),
    ];
    let file = safetensors_bytes(
        &mlp_tensors(&[1, 3, 1], |i| 0.1 * i as f64, |_| -1.0),
        &meta,
    );
    std::fs::write(a.join("old.safetensors"), &file).unwrap();
    // From `b`, which has no data/r.csv: the one beside the posterior.
    let run = mi_est(
        &b,
        &[
            "run",
            "--posterior",
            "../a/old.safetensors",
            "--k",
            "2",
            "--samples",
            "5",
            "--repeats",
            "1",
            "--out",
            "o2",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // From `b` with a different data/r.csv of its own: two readings, refused.
    std::fs::write(b.join("data/r.csv"), "1,2\n3,4\n").unwrap();
    let run = mi_est(
        &b,
        &[
            "run",
            "--posterior",
            "../a/old.safetensors",
            "--k",
            "2",
            "--samples",
            "5",
            "--repeats",
            "1",
            "--out",
            "o3",
        ],
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("names two different things"), "{err}");
    assert!(!b.join("o3/raw.parquet").exists());
}

/// One float column of a Parquet file.
fn read_parquet_column(path: &Path, column: &str) -> Vec<Option<f64>> {
    super::common::read_parquet(path)
        .column(column)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect()
}
