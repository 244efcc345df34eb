//! Writing a posterior file: the tensors of an MLP or a spec posterior and their
//! metadata as safetensors, written atomically, with a training record's data path made
//! relative to the file.

use super::*;

pub(super) fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The tensors of an MLP posterior in our naming, as (name, shape, F64 bytes).
pub(super) fn mlp_tensors(
    q: &MeanFieldGaussian,
    arch: &Arch,
) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for i in 0..arch.n_layers() {
        let (d_in, d_out) = (arch.widths()[i], arch.widths()[i + 1]);
        if let Some(f) = arch.fixed(i) {
            tensors.push((
                format!("layers.{i}.weight"),
                vec![d_out, d_in],
                f64_bytes(&f.weight),
            ));
            if let Some(b) = &f.bias {
                tensors.push((format!("layers.{i}.bias"), vec![d_out], f64_bytes(b)));
            }
            continue;
        }
        let o = arch.offsets(i).expect("variational layer");
        let w = o.weight..o.weight + d_in * d_out;
        tensors.push((
            format!("layers.{i}.weight_mu"),
            vec![d_out, d_in],
            f64_bytes(&q.mu()[w.clone()]),
        ));
        tensors.push((
            format!("layers.{i}.weight_rho"),
            vec![d_out, d_in],
            f64_bytes(&q.rho()[w]),
        ));
        if let Some(ob) = o.bias {
            let b = ob..ob + d_out;
            tensors.push((
                format!("layers.{i}.bias_mu"),
                vec![d_out],
                f64_bytes(&q.mu()[b.clone()]),
            ));
            tensors.push((
                format!("layers.{i}.bias_rho"),
                vec![d_out],
                f64_bytes(&q.rho()[b]),
            ));
        }
    }
    tensors
}

/// Serializes a posterior file to bytes.
///
/// # Errors
///
/// [`Error::InvalidParameter`] if safetensors refuses the data (not expected).
pub fn to_bytes(file: &PosteriorFile) -> Result<Vec<u8>> {
    let q = &file.posterior;
    let mut meta: HashMap<String, String> = file.metadata.clone().into_iter().collect();
    let tensors = match (q.arch(), q.space().spec_space()) {
        (Some(arch), _) => {
            meta.insert(
                "widths".into(),
                serde_json::to_string(arch.widths()).expect("widths serialize"),
            );
            meta.insert("activation".into(), arch.activation().name().into());
            meta.remove("permutation_spec");
            mlp_tensors(q, arch)
        }
        (None, Some(space)) => {
            meta.insert("permutation_spec".into(), space.spec().to_json());
            meta.remove("widths");
            meta.remove("activation");
            let mut tensors = Vec::new();
            let mut at = 0;
            for (name, shape) in space.layout() {
                let n: usize = shape.iter().product();
                let r = at..at + n;
                at += n;
                for (suffix, v) in [("mu", &q.mu()[r.clone()]), ("rho", &q.rho()[r])] {
                    tensors.push((format!("{name}_{suffix}"), shape.clone(), f64_bytes(v)));
                }
            }
            for (name, shape, values) in space.fixed() {
                tensors.push((name.clone(), shape.clone(), f64_bytes(values)));
            }
            tensors
        }
        (None, None) => unreachable!("a space is an MLP or a spec"),
    };
    meta.insert("format".into(), FORMAT.into());
    meta.insert("format_version".into(), FORMAT_VERSION.into());
    meta.insert("sigma_transform".into(), q.transform().name().into());
    meta.insert("prior_scale".into(), format!("{}", file.prior_scale));
    if let Some(l) = file.likelihood {
        meta.insert(
            "likelihood".into(),
            match l {
                Likelihood::Softmax => "softmax".into(),
                Likelihood::Gaussian { precision } => format!("gaussian:{precision}"),
            },
        );
    }
    if let Some(c) = &file.train_config {
        meta.insert("train_config".into(), c.clone());
    }
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, shape, data)| {
            TensorView::new(Dtype::F64, shape.clone(), data)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::invalid(n.clone(), "tensor", e.to_string()))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::invalid("posterior", "serialize", e.to_string()))
}

/// Writes a posterior file atomically (temporary file, then rename).
///
/// # Errors
///
/// [`Error::Io`] for an unwritable path or an existing file without `overwrite`.
pub fn save(path: &Path, file: &PosteriorFile, overwrite: bool) -> Result<()> {
    match relocated_train_config(file, path) {
        Some(config) => {
            let file = PosteriorFile {
                train_config: Some(config),
                ..file.clone()
            };
            write_atomic(path, &to_bytes(&file)?, overwrite)
        }
        None => write_atomic(path, &to_bytes(file)?, overwrite),
    }
}

/// Without the `train` feature there are no data specs to rewrite.
#[cfg(not(feature = "train"))]
pub(super) fn relocated_train_config(_: &PosteriorFile, _: &Path) -> Option<String> {
    None
}

/// The training record with its data path rewritten relative to the folder of the file
/// being written to `path` (marked by `data_relative_to`), so that the posterior finds
/// its data from any current folder, wherever the pair is moved together; `None` where
/// there is nothing to rewrite (no record, data not read from a path, an absolute path,
/// a path that does not exist, a record already relative to its file).
#[cfg(feature = "train")]
pub(super) fn relocated_train_config(file: &PosteriorFile, path: &Path) -> Option<String> {
    use crate::data::{DataSpec, RELATIVE_TO_POSTERIOR, relative_path};
    let mut cfg: serde_json::Value = serde_json::from_str(file.train_config.as_deref()?).ok()?;
    if cfg.get("data_relative_to").is_some() {
        return None;
    }
    let spec: DataSpec = cfg.get("data_spec")?.as_str()?.parse().ok()?;
    let data = spec.path().filter(|p| p.is_relative() && p.exists())?;
    let folder = match path.parent() {
        Some(f) if !f.as_os_str().is_empty() => f,
        _ => Path::new("."),
    };
    let rel = relative_path(data, folder)?;
    cfg["data_spec"] = serde_json::Value::String(spec.with_path(rel).to_string());
    cfg["data_relative_to"] = serde_json::Value::String(RELATIVE_TO_POSTERIOR.into());
    Some(cfg.to_string())
}
