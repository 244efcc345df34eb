//! Posterior files (DESIGN §7): safetensors with F32 or F64 tensors.
//!
//! Layer `i` (0-based) stores `layers.{i}.weight_mu`, `layers.{i}.weight_rho`
//! (`d_{i+1} × d_i`), `layers.{i}.bias_mu`, `layers.{i}.bias_rho` (`d_{i+1}`); a fixed
//! layer stores `layers.{i}.weight` (and `layers.{i}.bias`). The metadata (a string map)
//! holds `format = mi-est-posterior`, `format_version`, `widths` (JSON list),
//! `activation`, `sigma_transform`, `likelihood`, `prior_scale` and `train_config`
//! (JSON). Everything the shapes imply is optional: a file with only tensors loads with
//! widths from the shapes, ReLU, softplus and prior scale 1; metadata that contradicts
//! the shapes is an error.
//!
//! **Other libraries' names.** Layer prefixes other than `layers.{i}` are accepted and
//! ordered by natural sort (`fc1 < fc2 < fc10`), and the per-layer names of
//! bayesian-torch (`mu_weight`, `rho_weight`, `mu_bias`, `rho_bias`) and blitz
//! (`weight_mu`, `weight_rho`, `bias_mu`, `bias_rho`) are both read.

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::atomic::write_atomic;
use crate::elbo::Likelihood;
use crate::error::{Error, Result};
use crate::posterior::{MeanFieldGaussian, SigmaTransform};
use crate::weights::{Activation, Arch};

/// The value of the `format` metadata key.
pub const FORMAT: &str = "mi-est-posterior";
/// The current `format_version`.
pub const FORMAT_VERSION: &str = "1";

/// A posterior with the metadata stored beside it.
#[derive(Clone, Debug)]
pub struct PosteriorFile {
    /// The posterior (its architecture included).
    pub posterior: MeanFieldGaussian,
    /// The likelihood it was trained with, if recorded.
    pub likelihood: Option<Likelihood>,
    /// The prior scale s of N(0, s²I) (1 if not recorded).
    pub prior_scale: f64,
    /// The training configuration as JSON, if recorded.
    pub train_config: Option<String>,
    /// All metadata entries as read.
    pub metadata: BTreeMap<String, String>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serializes a posterior file to bytes.
///
/// # Errors
///
/// [`Error::InvalidParameter`] if safetensors refuses the data (not expected).
pub fn to_bytes(file: &PosteriorFile) -> Result<Vec<u8>> {
    let q = &file.posterior;
    let arch = q.arch();
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
    let mut meta: HashMap<String, String> = file.metadata.clone().into_iter().collect();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("format_version".into(), FORMAT_VERSION.into());
    meta.insert(
        "widths".into(),
        serde_json::to_string(arch.widths()).expect("widths serialize"),
    );
    meta.insert("activation".into(), arch.activation().name().into());
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
    write_atomic(path, &to_bytes(file)?, overwrite)
}

/// Reads a posterior file.
///
/// # Errors
///
/// [`Error::Io`] if unreadable; [`Error::BadFile`] naming the file and the tensor or
/// metadata field for a malformed header, missing or unknown tensors, unsupported
/// dtypes, shapes that do not chain or disagree with the metadata, non-finite values,
/// σ that underflows, or unknown activation / σ transform / likelihood.
pub fn load(path: &Path) -> Result<PosteriorFile> {
    load_with_bytes(path).map(|(file, _)| file)
}

/// [`load`], also returning the file's bytes (for hashing) from the same read.
///
/// # Errors
///
/// As [`load`].
pub fn load_with_bytes(path: &Path) -> Result<(PosteriorFile, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = from_bytes(&bytes).map_err(|e| match e {
        Error::BadFile { reason, .. } => bad(path, reason),
        other => bad(path, other.to_string()),
    })?;
    Ok((file, bytes))
}

#[derive(Default)]
struct LayerTensors {
    weight_mu: Option<(Vec<usize>, Vec<f64>)>,
    weight_rho: Option<(Vec<usize>, Vec<f64>)>,
    bias_mu: Option<(Vec<usize>, Vec<f64>)>,
    bias_rho: Option<(Vec<usize>, Vec<f64>)>,
    weight: Option<(Vec<usize>, Vec<f64>)>,
    bias: Option<(Vec<usize>, Vec<f64>)>,
}

/// Splits a prefix into text and number chunks for natural ordering.
fn natural_key(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut num: Option<u64> = None;
    for ch in s.chars() {
        if let Some(d) = ch.to_digit(10) {
            num = Some(num.unwrap_or(0).saturating_mul(10).saturating_add(d as u64));
        } else {
            if let Some(n) = num.take() {
                out.push((std::mem::take(&mut text), n));
            }
            text.push(ch);
        }
    }
    out.push((text, num.unwrap_or(0)));
    out
}

/// Parses a posterior file from bytes (see [`load`]); errors are [`Error::BadFile`]
/// with an empty path.
///
/// # Errors
///
/// As [`load`].
pub fn from_bytes(bytes: &[u8]) -> Result<PosteriorFile> {
    let here = Path::new("");
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(here, format!("not a valid safetensors file: {e}")))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| bad(here, format!("bad header: {e}")))?;
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Some(f) = metadata.get("format")
        && f != FORMAT
    {
        return Err(bad(
            here,
            format!("metadata `format` = `{f}`, expected `{FORMAT}`"),
        ));
    }
    let mut layers: BTreeMap<Vec<(String, u64)>, (String, LayerTensors)> = BTreeMap::new();
    for (name, view) in st.tensors() {
        let (prefix, leaf) = name.rsplit_once('.').ok_or_else(|| {
            bad(
                here,
                format!("tensor `{name}` has no layer prefix (expected e.g. `layers.0.weight_mu`)"),
            )
        })?;
        let values: Vec<f64> = match view.dtype() {
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                .collect(),
            other => {
                return Err(bad(
                    here,
                    format!("tensor `{name}` has dtype {other:?}; only F32 and F64 are supported"),
                ));
            }
        };
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(
                here,
                format!(
                    "tensor `{name}` has a non-finite value {} at index {k}",
                    values[k]
                ),
            ));
        }
        let entry = &mut layers
            .entry(natural_key(prefix))
            .or_insert_with(|| (prefix.to_string(), LayerTensors::default()))
            .1;
        let slot = match leaf {
            "weight_mu" | "mu_weight" => &mut entry.weight_mu,
            "weight_rho" | "rho_weight" => &mut entry.weight_rho,
            "bias_mu" | "mu_bias" => &mut entry.bias_mu,
            "bias_rho" | "rho_bias" => &mut entry.bias_rho,
            "weight" => &mut entry.weight,
            "bias" => &mut entry.bias,
            _ => return Err(bad(here, format!("tensor `{name}`: unknown name `{leaf}`"))),
        };
        if slot.is_some() {
            return Err(bad(
                here,
                format!("tensor `{name}` given twice (under two naming conventions)"),
            ));
        }
        *slot = Some((view.shape().to_vec(), values));
    }
    if layers.is_empty() {
        return Err(bad(here, "the file holds no tensors"));
    }
    // Shapes → widths, fixed layers, flat μ and ρ.
    let mut widths: Vec<usize> = Vec::new();
    // Per layer: its bias flag, and the weight and bias of a fixed layer.
    type LayerParts = (bool, Option<(Vec<f64>, Option<Vec<f64>>)>);
    let mut builder_parts: Vec<LayerParts> = Vec::new();
    let mut mu = Vec::new();
    let mut rho = Vec::new();
    for (prefix, t) in layers.into_values() {
        let matrix = |x: &Option<(Vec<usize>, Vec<f64>)>, what: &str| -> Result<(usize, usize)> {
            match x {
                Some((s, _)) if s.len() == 2 => Ok((s[0], s[1])),
                Some((s, _)) => Err(bad(
                    here,
                    format!("tensor `{prefix}.{what}` has shape {s:?}, expected 2 dimensions"),
                )),
                None => Err(bad(here, format!("layer `{prefix}` lacks `{what}`"))),
            }
        };
        let fixed = t.weight.is_some();
        if fixed && (t.weight_mu.is_some() || t.weight_rho.is_some()) {
            return Err(bad(
                here,
                format!("layer `{prefix}` has both `weight` and `weight_mu`"),
            ));
        }
        let (d_out, d_in) = if fixed {
            matrix(&t.weight, "weight")?
        } else {
            matrix(&t.weight_mu, "weight_mu")?
        };
        if !fixed && matrix(&t.weight_rho, "weight_rho")? != (d_out, d_in) {
            return Err(bad(
                here,
                format!("`{prefix}.weight_rho` shape differs from `{prefix}.weight_mu`"),
            ));
        }
        if d_out == 0 || d_in == 0 {
            return Err(bad(here, format!("layer `{prefix}` has an empty weight")));
        }
        match widths.last() {
            None => widths.extend([d_in, d_out]),
            Some(&prev) if prev == d_in => widths.push(d_out),
            Some(&prev) => {
                return Err(bad(
                    here,
                    format!(
                        "layer `{prefix}` takes {d_in} inputs but the previous layer has {prev} outputs"
                    ),
                ));
            }
        }
        let vector = |x: &Option<(Vec<usize>, Vec<f64>)>, what: &str| -> Result<Option<Vec<f64>>> {
            match x {
                Some((s, v)) if s.as_slice() == [d_out] => Ok(Some(v.clone())),
                Some((s, _)) => Err(bad(
                    here,
                    format!("tensor `{prefix}.{what}` has shape {s:?}, expected [{d_out}]"),
                )),
                None => Ok(None),
            }
        };
        if fixed {
            let w = t.weight.expect("fixed").1;
            builder_parts.push((true, Some((w, vector(&t.bias, "bias")?))));
        } else {
            let bm = vector(&t.bias_mu, "bias_mu")?;
            let br = vector(&t.bias_rho, "bias_rho")?;
            if bm.is_some() != br.is_some() {
                return Err(bad(
                    here,
                    format!("layer `{prefix}` has only one of `bias_mu` and `bias_rho`"),
                ));
            }
            mu.extend(t.weight_mu.expect("checked").1);
            rho.extend(t.weight_rho.expect("checked").1);
            let has_bias = bm.is_some();
            if let (Some(bm), Some(br)) = (bm, br) {
                mu.extend(bm);
                rho.extend(br);
            }
            builder_parts.push((has_bias, None));
        }
    }
    if let Some(w) = metadata.get("widths") {
        let declared: Vec<usize> = serde_json::from_str(w).map_err(|e| {
            bad(
                here,
                format!("metadata `widths` = `{w}` is not a JSON list of integers: {e}"),
            )
        })?;
        if declared != widths {
            return Err(bad(
                here,
                format!(
                    "metadata `widths` = {declared:?} disagrees with the tensor shapes {widths:?}"
                ),
            ));
        }
    }
    let activation: Activation = match metadata.get("activation") {
        Some(a) => a
            .parse()
            .map_err(|e: Error| bad(here, format!("metadata `activation`: {e}")))?,
        None => Activation::Relu,
    };
    let transform: SigmaTransform = match metadata.get("sigma_transform") {
        Some(a) => a
            .parse()
            .map_err(|e: Error| bad(here, format!("metadata `sigma_transform`: {e}")))?,
        None => SigmaTransform::Softplus,
    };
    let prior_scale = match metadata.get("prior_scale") {
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                bad(
                    here,
                    format!("metadata `prior_scale` = `{s}` is not a positive number"),
                )
            })?,
        None => 1.0,
    };
    let likelihood = match metadata.get("likelihood") {
        Some(l) => Some(
            l.parse::<Likelihood>()
                .map_err(|e| bad(here, format!("metadata `likelihood`: {e}")))?,
        ),
        None => None,
    };
    let mut b = Arch::builder(widths).activation(activation);
    for (i, (bias_or_fixed, fixed)) in builder_parts.into_iter().enumerate() {
        b = match fixed {
            Some((w, bias)) => b.fixed_layer(i, w, bias),
            None => b.layer_bias(i, bias_or_fixed),
        };
    }
    let arch = b.check().map_err(|e| bad(here, e.to_string()))?;
    let posterior = MeanFieldGaussian::with_transform(arch, mu, rho, transform)
        .map_err(|e| bad(here, e.to_string()))?;
    Ok(PosteriorFile {
        posterior,
        likelihood,
        prior_scale,
        train_config: metadata.get("train_config").cloned(),
        metadata,
    })
}
