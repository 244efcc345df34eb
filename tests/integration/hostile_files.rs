//! Hostile files made on the spot (issue 27): posteriors with chosen tensors and
//! metadata, `.npy` arrays and ZIP archives whose directories may lie, gzip bombs, IDX
//! headers, forged shards; and the command under test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use safetensors::tensor::{Dtype, TensorView};

use super::common::f64_tensors;

/// A safetensors file of F64 tensors with metadata.
pub(super) fn safetensors_bytes(
    tensors: &[(String, Vec<usize>, Vec<f64>)],
    meta: &[(&str, &str)],
) -> Vec<u8> {
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
pub(super) fn mlp_tensors(
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

pub(super) fn mlp_file(
    widths: &[usize],
    mu: impl Fn(usize) -> f64,
    rho: impl Fn(usize) -> f64,
) -> Vec<u8> {
    safetensors_bytes(&mlp_tensors(widths, mu, rho), &[("activation", "relu")])
}

/// One `.npy` array of little-endian f8 values (or only its header and `data_len` zero
/// bytes, when `values` is `None`).
pub(super) fn npy(shape: &[usize], values: Option<&[f64]>) -> Vec<u8> {
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
pub(super) fn zip(members: &[(String, Vec<u8>, Option<u32>)], deflate: bool) -> Vec<u8> {
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
pub(super) fn npz_members(widths: &[usize]) -> Vec<(String, Vec<u8>, Option<u32>)> {
    mlp_tensors(widths, |i| 0.1 * (i % 7) as f64 - 0.3, |_| -2.0)
        .into_iter()
        .map(|(n, s, v)| (format!("{n}.npy"), npy(&s, Some(&v)), None))
        .collect()
}

/// gzip of `head` followed by `zeros` zero bytes.
pub(super) fn gzip(head: &[u8], zeros: usize) -> Vec<u8> {
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

pub(super) fn idx_header(magic: u8, dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, magic];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v
}

/// The command under test: this build, or `MI_EST_HOSTILE_BIN`.
pub(super) fn binary() -> (PathBuf, bool) {
    match std::env::var_os("MI_EST_HOSTILE_BIN") {
        Some(b) => (PathBuf::from(b), true),
        None => (PathBuf::from(env!("CARGO_BIN_EXE_mi-est")), false),
    }
}

pub(super) fn mi_est(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary().0)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Forges shard 0 of the sharded run in `dir`: `edit` changes its rows (JSON values),
/// and the manifest's SHA-256 is recomputed so that only the row check can see it.
pub(super) fn forge(dir: &Path, edit: impl Fn(&mut Vec<serde_json::Value>)) {
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
pub(super) type Edit = fn(&mut Vec<serde_json::Value>);

/// Writes the corpus's files into `dir` (the shards are made by the command, in
/// [`super::hostile_commands`]).
pub(super) fn write_corpus_files(dir: &Path) {
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
}
