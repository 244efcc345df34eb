//! Posterior files (docs/posteriors.md): safetensors with F32 or F64 tensors.
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
//! **Other libraries' names** ([`Scheme`]). Layer prefixes other than `layers.{i}` are
//! accepted; their forward order comes from something that states it (the caller's
//! `--layers`, numeric indices in the names, an `.npz` archive's member order, the only
//! order whose shapes chain) and is never guessed from sorted names ([`order`]); bayesian-torch's
//! `mu_weight`/`rho_weight`, blitz's `weight_mu`/`weight_rho`, Pyro's AutoNormal
//! (`AutoNormal.locs.fc1.weight`, `.scales.`), NumPyro's (`fc1.weight_auto_loc`,
//! `_auto_scale`), TyXe-style `fc1.weight.loc`/`.scale` (σ given directly) and Fortuna's
//! `mean`/`log_std` trees (flax `kernel`s transposed) are all read. A file is
//! safetensors or a NumPy `.npz` archive (no metadata: ReLU, softplus for ρ).

use safetensors::tensor::{Dtype, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::atomic::write_atomic;
use crate::elbo::Likelihood;
use crate::error::{Error, Result};
use crate::posterior::{LARGEST, MeanFieldGaussian, SigmaTransform};
use crate::symmetry::spec::PermutationSpec;
use crate::symmetry::{SpecSpace, WeightSpace};
use crate::weights::{Activation, Arch};
use container::{TensorSet, Values, foreign_format, tensor_set};

mod container;
mod names;
mod npz;
pub mod order;
pub use names::Scheme;
use names::{Part, Role};
pub use npz::{MAX_NPZ_BYTES, read_npy, read_npz};
pub use order::LayerOrder;

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

/// How to read a posterior file beyond what the file says itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions<'a> {
    /// Read the weights under this permutation spec (docs/specs.md) instead of the
    /// file's `permutation_spec` metadata or, without either, as an MLP.
    pub spec: Option<&'a PermutationSpec>,
    /// The forward order of the layers, by layer name (`--layers`; [`order`]).
    pub layers: Option<&'a [String]>,
    /// The prior scale s of N(0, s²I) where the file records none (`--prior-scale`);
    /// `None`: 1. A file's `prior_scale` metadata wins.
    pub prior_scale: Option<f64>,
}

impl<'a> ReadOptions<'a> {
    /// Reading under `spec`, if any.
    pub fn spec(spec: Option<&'a PermutationSpec>) -> Self {
        ReadOptions {
            spec,
            ..ReadOptions::default()
        }
    }
}

/// Where a posterior's prior scale came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriorSource {
    /// The file's `prior_scale` metadata.
    Metadata,
    /// The reader's option (`--prior-scale`), the file recording none.
    Option,
    /// Neither: N(0, 1) assumed.
    Assumed,
}

impl std::fmt::Display for PriorSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PriorSource::Metadata => "from the file's metadata",
            PriorSource::Option => "from --prior-scale (the file records none)",
            PriorSource::Assumed => {
                "assumed, the file records none; --prior-scale sets it (blitz's default prior is a scale mixture, not N(0, 1))"
            }
        })
    }
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

/// The tensors of an MLP posterior in our naming, as (name, shape, F64 bytes).
fn mlp_tensors(q: &MeanFieldGaussian, arch: &Arch) -> Vec<(String, Vec<usize>, Vec<u8>)> {
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
fn relocated_train_config(_: &PosteriorFile, _: &Path) -> Option<String> {
    None
}

/// The training record with its data path rewritten relative to the folder of the file
/// being written to `path` (marked by `data_relative_to`), so that the posterior finds
/// its data from any current folder, wherever the pair is moved together; `None` where
/// there is nothing to rewrite (no record, data not read from a path, an absolute path,
/// a path that does not exist, a record already relative to its file).
#[cfg(feature = "train")]
fn relocated_train_config(file: &PosteriorFile, path: &Path) -> Option<String> {
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

/// Reads a posterior file.
///
/// # Errors
///
/// [`Error::Io`] if unreadable; [`Error::BadFile`] naming the file and the tensor or
/// metadata field for a malformed header, missing or unknown tensors, unsupported
/// dtypes, shapes that do not chain or disagree with the metadata, non-finite values,
/// σ that underflows, or unknown activation / σ transform / likelihood.
pub fn load(path: &Path) -> Result<PosteriorFile> {
    load_with_bytes(path, ReadOptions::default()).map(|(file, _)| file)
}

/// [`load`] with `options` (a permutation spec, the layer order), also returning the
/// file's bytes (for hashing) from the same read.
///
/// # Errors
///
/// As [`load`]; also a layer order that neither the options nor the file state.
pub fn load_with_bytes(path: &Path, options: ReadOptions<'_>) -> Result<(PosteriorFile, Vec<u8>)> {
    read(path, options).map(|(file, _, bytes)| (file, bytes))
}

/// Reads and parses a posterior file: the file, what was recognised, and its bytes.
fn read(path: &Path, options: ReadOptions<'_>) -> Result<(PosteriorFile, Recognised, Vec<u8>)> {
    // A posterior is held a few times over while it is read: refused by its size first.
    if let Ok(m) = std::fs::metadata(path)
        && m.is_file()
    {
        crate::resources::check(
            &format!("reading {}", path.display()),
            crate::resources::Cost::default().with_bytes(m.len() as f64 * npz::READ_COPIES),
        )?;
    }
    // Not a regular file (a pipe, a device): read no further than the limit allows.
    let cap = (crate::resources::Limits::current().max_bytes / npz::READ_COPIES) as u64;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|e| Error::io(path, e))?,
            cap.saturating_add(1),
        ),
        &mut bytes,
    )
    .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > cap {
        crate::resources::check(
            &format!("reading {} (more than {cap} bytes)", path.display()),
            crate::resources::Cost::default().with_bytes(bytes.len() as f64 * npz::READ_COPIES),
        )?;
    }
    let (file, how) = parse(&bytes, options).map_err(in_file(path))?;
    Ok((file, how, bytes))
}

/// A parsing error as [`Error::BadFile`] naming `path`.
fn in_file(path: &Path) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::BadFile { reason, .. } => bad(path, reason),
        other => bad(path, other.to_string()),
    }
}

/// A tensor as read: shape and values (row-major).
type Read = (Vec<usize>, Vec<f64>);

/// The mean, σ (as ρ) and fixed value of one part of a layer, as given.
#[derive(Default)]
struct PartTensors {
    mu: Option<Read>,
    rho: Option<Read>,
    fixed: Option<Read>,
}

/// A layer's tensors, by part.
#[derive(Default)]
struct LayerTensors {
    weight: PartTensors,
    kernel: PartTensors,
    bias: PartTensors,
    /// A normalization layer's running statistics (fixed).
    running_mean: PartTensors,
    running_var: PartTensors,
}

impl PartTensors {
    /// The part's shape: its mean's, or its fixed value's.
    fn shape(&self) -> Option<Vec<usize>> {
        self.mu
            .as_ref()
            .or(self.fixed.as_ref())
            .map(|t| t.0.clone())
    }
}

impl LayerTensors {
    /// One part of the layer.
    fn part(&self, part: Part) -> &PartTensors {
        match part {
            Part::Weight => &self.weight,
            Part::Kernel => &self.kernel,
            Part::Bias => &self.bias,
            Part::RunningMean => &self.running_mean,
            Part::RunningVar => &self.running_var,
        }
    }

    /// One part of the layer, to fill.
    fn part_mut(&mut self, part: Part) -> &mut PartTensors {
        match part {
            Part::Weight => &mut self.weight,
            Part::Kernel => &mut self.kernel,
            Part::Bias => &mut self.bias,
            Part::RunningMean => &mut self.running_mean,
            Part::RunningVar => &mut self.running_var,
        }
    }
}

/// Parses a posterior file from bytes (see [`load`]); errors are [`Error::BadFile`]
/// with an empty path.
///
/// # Errors
///
/// As [`load`].
pub fn from_bytes(bytes: &[u8]) -> Result<PosteriorFile> {
    parse(bytes, ReadOptions::default()).map(|(file, _)| file)
}

/// How a file gave σ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigmaSource {
    /// ρ tensors, σ = transform(ρ).
    Rho(SigmaTransform),
    /// σ itself (`scale` tensors).
    Scale,
    /// ln σ (`log_std` tensors).
    LogStd,
}

impl std::fmt::Display for SigmaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigmaSource::Rho(SigmaTransform::Softplus) => f.write_str("ρ, σ = softplus(ρ)"),
            SigmaSource::Rho(SigmaTransform::Exp) => f.write_str("ρ, σ = exp(ρ)"),
            SigmaSource::Scale => f.write_str("σ given directly (scale)"),
            SigmaSource::LogStd => f.write_str("ln σ (log_std)"),
        }
    }
}

/// What [`inspect`] recognised in a file besides the posterior itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Recognised {
    /// The naming schemes its tensors follow.
    pub schemes: Vec<Scheme>,
    /// How σ was given.
    pub sigma: SigmaSource,
    /// The layers in forward order, as named in the file.
    pub layers: Vec<String>,
    /// How that order was settled.
    pub order: LayerOrder,
    /// Where the prior scale came from.
    pub prior: PriorSource,
    /// Tensors that are not parameters of the posterior, skipped by rule (blitz's
    /// sampler buffers `*_sampler.eps_w` and its copies `*_sampler.mu`/`.rho` of
    /// `*_mu`/`*_rho`, checked equal).
    pub skipped: Vec<String>,
}

/// Loads a posterior file (under `spec`, as [`load_with_bytes`]) and says how it was
/// read: the naming schemes and how σ was given (`mi-est inspect`).
///
/// # Errors
///
/// As [`load`].
pub fn inspect(path: &Path, options: ReadOptions<'_>) -> Result<(PosteriorFile, Recognised)> {
    read(path, options).map(|(file, how, _)| (file, how))
}

/// A posterior from named tensors `(name, shape, row-major values)` and metadata, read
/// exactly as a file holding them would be (every naming scheme, the metadata's checks,
/// `options` as in [`load_with_bytes`]), with the tensors' order taken as the file order
/// (a `state_dict` keeps its modules' order): what the Python package's
/// `from_state_dict` and `from_arrays` call.
///
/// # Errors
///
/// As [`load`], naming the tensor; [`Error::InvalidParameter`] naming a tensor whose
/// values do not fill its shape.
pub fn from_tensors(
    tensors: &[(String, Vec<usize>, Vec<f64>)],
    metadata: &BTreeMap<String, String>,
    options: ReadOptions<'_>,
) -> Result<(PosteriorFile, Recognised)> {
    for (n, shape, v) in tensors {
        let fills = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .is_some_and(|len| len == v.len());
        if !fills {
            return Err(Error::invalid(
                n,
                format!("shape {shape:?}"),
                format!("{} values do not fill the shape", v.len()),
            ));
        }
    }
    let set = TensorSet {
        metadata: metadata.clone(),
        tensors: tensors
            .iter()
            .map(|(n, shape, v)| (n.clone(), shape.clone(), Values::Decoded(v.clone())))
            .collect(),
        order: Some(tensors.iter().map(|(n, _, _)| n.clone()).collect()),
    };
    parse_set(set, options)
}

fn parse(bytes: &[u8], options: ReadOptions<'_>) -> Result<(PosteriorFile, Recognised)> {
    if let Some(words) = foreign_format(bytes) {
        return Err(bad(Path::new(""), words));
    }
    parse_set(tensor_set(bytes)?, options)
}

/// A file's layers, keyed by their names as written.
type Layers = BTreeMap<String, LayerTensors>;

/// The layers of a file in forward order ([`order::forward_order`]) and how it was
/// settled; `file_order` lists the file's tensor names in its own order, where it keeps
/// one.
fn order_layers(
    layers: Layers,
    file_order: Option<&[String]>,
    options: ReadOptions<'_>,
    spec: bool,
) -> Result<(Vec<(String, LayerTensors)>, LayerOrder)> {
    let chain_shape = |t: &LayerTensors| match (t.weight.shape(), t.kernel.shape()) {
        (Some(w), None) if w.len() == 2 => Some(order::ChainShape {
            d_in: w[1],
            d_out: w[0],
            conv: false,
        }),
        (None, Some(k)) if k.len() >= 2 => Some(order::ChainShape {
            d_in: k[1],
            d_out: k[0],
            conv: true,
        }),
        _ => None,
    };
    let named: Vec<(String, Option<order::ChainShape>)> = layers
        .iter()
        .map(|(n, t)| (n.clone(), chain_shape(t)))
        .collect();
    // The file's order of layers: each layer where its first tensor stands.
    let file_layers: Option<Vec<String>> = file_order.map(|names| {
        names
            .iter()
            .filter_map(|n| names::classify(n).map(|m| m.layer))
            .collect()
    });
    let (order, how) = order::forward_order(&named, file_layers.as_deref(), options.layers, spec)
        .map_err(|e| bad(Path::new(""), e))?;
    let mut slots: Vec<Option<(String, LayerTensors)>> = layers.into_iter().map(Some).collect();
    let ordered = order
        .into_iter()
        .map(|i| slots[i].take().expect("each layer once"))
        .collect();
    Ok((ordered, how))
}

/// What [`read_tensors`] found in a file.
struct FileTensors {
    metadata: BTreeMap<String, String>,
    layers: Layers,
    schemes: std::collections::BTreeSet<Scheme>,
    /// How σ is given and by which tensor.
    sigma_given: Option<(Role, String)>,
    /// Tensors that are not parameters of the posterior, skipped by rule.
    skipped: Vec<String>,
}

/// Reads and classifies every tensor of a safetensors file (in name order: the first
/// error must not depend on safetensors' unordered list), with the metadata.
fn read_tensors(set: TensorSet<'_>) -> Result<FileTensors> {
    let here = Path::new("");
    let TensorSet {
        metadata,
        tensors: mut set,
        ..
    } = set;
    if let Some(f) = metadata.get("format")
        && f != FORMAT
    {
        return Err(bad(
            here,
            format!("metadata `format` = `{f}`, expected `{FORMAT}`"),
        ));
    }
    let mut layers: Layers = BTreeMap::new();
    let mut schemes = std::collections::BTreeSet::new();
    // How σ is given: ρ (with the file's transform), σ itself, or ln σ; and by which tensor.
    let mut sigma_given: Option<(Role, String)> = None;
    // In name order: safetensors hands the tensors out in no fixed order, and the first
    // error found must not depend on it.
    set.sort_by(|a, b| a.0.cmp(&b.0));
    // blitz's samplers: the last noise draw (a buffer) and copies of the parameters.
    let mut skipped: Vec<String> = Vec::new();
    let mut copies: Vec<(String, String, Vec<f64>)> = Vec::new();
    for (name, shape, raw) in set {
        let skip = names::skipped(&name);
        // A counter is skipped before its (integer) values are read.
        if skip == Some(names::Skipped::Counter) {
            skipped.push(name);
            continue;
        }
        let values = raw.decode(&name)?;
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(
                here,
                format!(
                    "tensor `{name}` has a non-finite value {} at index {k}",
                    values[k]
                ),
            ));
        }
        match skip {
            Some(names::Skipped::Noise | names::Skipped::Counter) => {
                skipped.push(name);
                continue;
            }
            Some(names::Skipped::CopyOf(of)) => {
                copies.push((name.clone(), of, values));
                skipped.push(name);
                continue;
            }
            None => {}
        }
        let mut values = values;
        let Some(meaning) = names::classify(&name) else {
            if let Some(why) = names::unreadable(&name) {
                return Err(bad(here, why));
            }
            return Err(bad(
                here,
                format!(
                    "tensor `{name}` fits no naming scheme (expected e.g. `layers.0.weight_mu`, `fc1.mu_weight`, `AutoNormal.locs.fc1.weight`, `fc1.weight.loc`, `fc1.weight_auto_loc` or `mean.Dense_0.kernel`; docs/posteriors.md)"
                ),
            ));
        };
        let mut shape = shape;
        if meaning.transposed {
            if shape.len() != 2 {
                return Err(bad(
                    here,
                    format!("tensor `{name}` has shape {shape:?}, expected 2 dimensions"),
                ));
            }
            let (rows, cols) = (shape[0], shape[1]);
            values = (0..cols)
                .flat_map(|j| (0..rows).map(move |i| i * cols + j))
                .map(|k| values[k])
                .collect();
            shape = vec![cols, rows];
        }
        match meaning.role {
            Role::Rho | Role::Scale | Role::LogStd => match &sigma_given {
                Some((role, first)) if *role != meaning.role => {
                    return Err(bad(
                        here,
                        format!(
                            "tensor `{name}` gives σ as {} but `{first}` gives it as {}; a file uses one",
                            sigma_words(meaning.role),
                            sigma_words(*role)
                        ),
                    ));
                }
                Some(_) => {}
                None => sigma_given = Some((meaning.role, name.to_string())),
            },
            Role::Mean | Role::Fixed => {}
        }
        if meaning.role == Role::Scale {
            if let Some(k) = values.iter().position(|&v| v <= 0.0) {
                let pyro = if meaning.scheme == Scheme::PyroAutoNormal {
                    " (these look like Pyro's unconstrained scales, from `pyro.get_param_store().get_state()`: save the constrained ones, `{n: pyro.param(n) for n in pyro.get_param_store()}`, or the guide's `state_dict()`, which mi-est reads as unconstrained)"
                } else {
                    ""
                };
                return Err(bad(
                    here,
                    format!(
                        "tensor `{name}` holds σ, which must be > 0, but has {} at index {k}{pyro}",
                        values[k]
                    ),
                ));
            }
            values.iter_mut().for_each(|v| *v = v.ln());
        }
        schemes.insert(meaning.scheme);
        let part = layers
            .entry(meaning.layer.clone())
            .or_default()
            .part_mut(meaning.part);
        let slot = match meaning.role {
            Role::Mean => &mut part.mu,
            Role::Rho | Role::Scale | Role::LogStd => &mut part.rho,
            Role::Fixed => &mut part.fixed,
        };
        if slot.is_some() {
            return Err(bad(
                here,
                format!("tensor `{name}` given twice (under two naming conventions)"),
            ));
        }
        *slot = Some((shape, values));
    }
    if layers.is_empty() {
        return Err(bad(here, "the file holds no tensors"));
    }
    // A copy is skipped only where it equals what it copies: never a silent choice.
    for (name, of, values) in copies {
        let held = names::classify(&of).and_then(|m| {
            let part = layers.get(&m.layer)?.part(m.part);
            match m.role {
                Role::Mean => part.mu.as_ref(),
                Role::Rho => part.rho.as_ref(),
                _ => None,
            }
        });
        match held {
            Some((_, v)) if *v == values => {}
            Some(_) => {
                return Err(bad(
                    here,
                    format!(
                        "tensor `{name}` (blitz's sampler copy) differs from `{of}`; which one holds the posterior is not stated"
                    ),
                ));
            }
            None => {
                return Err(bad(
                    here,
                    format!("tensor `{name}` (blitz's sampler copy) has no `{of}` beside it"),
                ));
            }
        }
    }
    Ok(FileTensors {
        metadata,
        layers,
        schemes,
        sigma_given,
        skipped,
    })
}

/// The spec of a file's layers read as a plain chain in forward order
/// ([`PermutationSpec::sequential`]; the order as in [`load_with_bytes`], `layers` as
/// `--layers`), for `mi-est spec --sequential`.
///
/// # Errors
///
/// [`Error::Io`] if unreadable; [`Error::BadFile`] naming the file and the layer that
/// has no weight or kernel, has both, or does not chain, or an order nothing states.
pub fn sequential_spec(path: &Path, layers: Option<&[String]>) -> Result<PermutationSpec> {
    let named = in_file(path);
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let set = tensor_set(&bytes).map_err(&named)?;
    let file_order = set.order.clone();
    let tensors = read_tensors(set).map_err(&named)?;
    let options = ReadOptions {
        layers,
        ..ReadOptions::default()
    };
    let (ordered, _) =
        order_layers(tensors.layers, file_order.as_deref(), options, false).map_err(&named)?;
    let mut chain = Vec::new();
    for (prefix, t) in &ordered {
        let main = match (t.weight.shape(), t.kernel.shape()) {
            (Some(w), None) => (format!("{prefix}.weight"), w),
            (None, Some(k)) => (format!("{prefix}.kernel"), k),
            (Some(_), Some(_)) => {
                return Err(bad(
                    path,
                    format!("layer `{prefix}` has both a weight and a kernel"),
                ));
            }
            (None, None) => {
                return Err(bad(
                    path,
                    format!("layer `{prefix}` has no weight or kernel mean"),
                ));
            }
        };
        let bias = t.bias.shape().map(|_| format!("{prefix}.bias"));
        chain.push((main.0, main.1, bias));
    }
    PermutationSpec::sequential(&chain).map_err(named)
}

fn parse_set(set: TensorSet<'_>, options: ReadOptions<'_>) -> Result<(PosteriorFile, Recognised)> {
    let here = Path::new("");
    let order = set.order.clone();
    let file_order = order.as_deref();
    let FileTensors {
        metadata,
        layers,
        schemes,
        sigma_given,
        skipped,
    } = read_tensors(set)?;
    let spec = match (options.spec, metadata.get("permutation_spec")) {
        (Some(spec), _) => Some(spec.clone()),
        (None, Some(text)) => Some(
            PermutationSpec::from_json(text)
                .map_err(|e| bad(here, format!("metadata `permutation_spec`: {e}")))?,
        ),
        (None, None) => None,
    };
    let (layers, order) = order_layers(layers, file_order, options, spec.is_some())?;
    let layer_names: Vec<String> = layers.iter().map(|(n, _)| n.clone()).collect();
    let (space, mu, rho): (WeightSpace, _, _) = match spec {
        Some(spec) => {
            let (space, mu, rho) = spec_space(layers, spec)?;
            (space.into(), mu, rho)
        }
        None => {
            let (arch, mu, rho) = mlp_space(layers, &metadata)?;
            (arch.into(), mu, rho)
        }
    };
    let declared_transform: Option<SigmaTransform> = match metadata.get("sigma_transform") {
        Some(a) => Some(
            a.parse()
                .map_err(|e: Error| bad(here, format!("metadata `sigma_transform`: {e}")))?,
        ),
        None => None,
    };
    // σ given directly (or as ln σ) is held as ρ = ln σ with σ = exp(ρ).
    let sigma = match (&sigma_given, declared_transform) {
        (Some((Role::Scale, first)) | Some((Role::LogStd, first)), Some(t)) => {
            return Err(bad(
                here,
                format!(
                    "metadata `sigma_transform` = `{t}` does not apply: `{first}` gives σ directly"
                ),
            ));
        }
        (Some((Role::Scale, _)), None) => SigmaSource::Scale,
        (Some((Role::LogStd, _)), None) => SigmaSource::LogStd,
        (_, t) => SigmaSource::Rho(t.unwrap_or_default()),
    };
    let transform = match sigma {
        SigmaSource::Rho(t) => t,
        SigmaSource::Scale | SigmaSource::LogStd => SigmaTransform::Exp,
    };
    let (prior_scale, prior) = match (metadata.get("prior_scale"), options.prior_scale) {
        (Some(s), _) => (
            s.parse::<f64>()
                .ok()
                .filter(|v| (1.0 / LARGEST..=LARGEST).contains(v))
                .ok_or_else(|| {
                    bad(
                        here,
                        format!("metadata `prior_scale` = `{s}` is not a number in [1e-30, 1e30]"),
                    )
                })?,
            PriorSource::Metadata,
        ),
        (None, Some(s)) if (1.0 / LARGEST..=LARGEST).contains(&s) => (s, PriorSource::Option),
        (None, Some(s)) => {
            return Err(Error::invalid(
                "prior_scale",
                s,
                "must be a number in [1e-30, 1e30]",
            ));
        }
        (None, None) => (1.0, PriorSource::Assumed),
    };
    let likelihood = match metadata.get("likelihood") {
        Some(l) => Some(
            l.parse::<Likelihood>()
                .map_err(|e| bad(here, format!("metadata `likelihood`: {e}")))?,
        ),
        None => None,
    };
    let posterior = MeanFieldGaussian::with_transform(space, mu, rho, transform)
        .map_err(|e| bad(here, e.to_string()))?;
    let recognised = Recognised {
        schemes: schemes.into_iter().collect(),
        sigma,
        layers: layer_names,
        order,
        prior,
        skipped,
    };
    Ok((
        PosteriorFile {
            posterior,
            likelihood,
            prior_scale,
            train_config: metadata.get("train_config").cloned(),
            metadata,
        },
        recognised,
    ))
}

/// The MLP of a file's layers (in forward order): widths from the chained shapes, fixed
/// layers, the activation from the metadata; flat μ and ρ in our layout.
fn mlp_space(
    layers: Vec<(String, LayerTensors)>,
    metadata: &BTreeMap<String, String>,
) -> Result<(Arch, Vec<f64>, Vec<f64>)> {
    let here = Path::new("");
    if let Some((prefix, _)) = layers.iter().find(|(_, t)| {
        t.running_mean.fixed.is_some()
            || t.running_var.fixed.is_some()
            || t.weight.fixed.as_ref().is_some_and(|w| w.0.len() == 1)
    }) {
        return Err(bad(
            here,
            format!(
                "layer `{prefix}` is a normalization layer (running statistics, or a one-dimensional weight); give a permutation spec (`--spec`, or the metadata key `permutation_spec`; docs/specs.md)"
            ),
        ));
    }
    if let Some((prefix, _)) = layers
        .iter()
        .find(|(_, t)| t.kernel.mu.is_some() || t.kernel.rho.is_some() || t.kernel.fixed.is_some())
    {
        return Err(bad(
            here,
            format!(
                "layer `{prefix}` is a convolution (a kernel tensor); give a permutation spec (`--spec`, or the metadata key `permutation_spec`; docs/specs.md)"
            ),
        ));
    }
    // Shapes → widths, fixed layers, flat μ and ρ.
    let mut widths: Vec<usize> = Vec::new();
    // Per layer: its bias flag, and the weight and bias of a fixed layer.
    type LayerParts = (bool, Option<(Vec<f64>, Option<Vec<f64>>)>);
    let mut builder_parts: Vec<LayerParts> = Vec::new();
    let mut mu = Vec::new();
    let mut rho = Vec::new();
    for (prefix, t) in layers {
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
        let fixed = t.weight.fixed.is_some();
        if fixed && (t.weight.mu.is_some() || t.weight.rho.is_some()) {
            return Err(bad(
                here,
                format!("layer `{prefix}` has both `weight` and `weight_mu`"),
            ));
        }
        let (d_out, d_in) = if fixed {
            matrix(&t.weight.fixed, "weight")?
        } else {
            matrix(&t.weight.mu, "weight_mu")?
        };
        if !fixed && matrix(&t.weight.rho, "weight_rho")? != (d_out, d_in) {
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
            let w = t.weight.fixed.expect("fixed").1;
            builder_parts.push((true, Some((w, vector(&t.bias.fixed, "bias")?))));
        } else {
            let bm = vector(&t.bias.mu, "bias_mu")?;
            let br = vector(&t.bias.rho, "bias_rho")?;
            if bm.is_some() != br.is_some() {
                return Err(bad(
                    here,
                    format!("layer `{prefix}` has only one of `bias_mu` and `bias_rho`"),
                ));
            }
            mu.extend(t.weight.mu.expect("checked").1);
            rho.extend(t.weight.rho.expect("checked").1);
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
    let mut b = Arch::builder(widths).activation(activation);
    for (i, (bias_or_fixed, fixed)) in builder_parts.into_iter().enumerate() {
        b = match fixed {
            Some((w, bias)) => b.fixed_layer(i, w, bias),
            None => b.layer_bias(i, bias_or_fixed),
        };
    }
    let arch = b.check().map_err(|e| bad(here, e.to_string()))?;
    Ok((arch, mu, rho))
}

/// The space of a file's tensors under `spec`: every variational tensor, named
/// `{layer}.{weight|kernel|bias}`, in natural order of the layers (weight, kernel, bias
/// within a layer), and the fixed tensors beside them.
fn spec_space(
    layers: Vec<(String, LayerTensors)>,
    spec: PermutationSpec,
) -> Result<(SpecSpace, Vec<f64>, Vec<f64>)> {
    let here = Path::new("");
    let (mut layout, mut fixed, mut mu, mut rho) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (prefix, t) in layers {
        for (part, p) in [
            (Part::Weight, t.weight),
            (Part::Kernel, t.kernel),
            (Part::Bias, t.bias),
            (Part::RunningMean, t.running_mean),
            (Part::RunningVar, t.running_var),
        ] {
            let name = format!("{prefix}.{}", part.name());
            match (p.mu, p.rho, p.fixed) {
                (None, None, None) => {}
                (Some(_), Some(_), Some(_))
                | (None, Some(_), Some(_))
                | (Some(_), None, Some(_)) => {
                    return Err(bad(
                        here,
                        format!("`{name}` is given both as fixed and as variational"),
                    ));
                }
                (None, None, Some((shape, values))) => fixed.push((name, shape, values)),
                (Some((shape, m)), Some((rho_shape, r)), None) => {
                    if shape != rho_shape {
                        return Err(bad(
                            here,
                            format!(
                                "`{name}`: the σ tensor has shape {rho_shape:?}, the mean {shape:?}"
                            ),
                        ));
                    }
                    mu.extend(m);
                    rho.extend(r);
                    layout.push((name, shape));
                }
                (Some(_), None, None) => {
                    return Err(bad(here, format!("`{name}` has a mean but no σ tensor")));
                }
                (None, Some(_), None) => {
                    return Err(bad(here, format!("`{name}` has a σ tensor but no mean")));
                }
            }
        }
    }
    let space = SpecSpace::new(spec, &layout, &fixed).map_err(|e| bad(here, e.to_string()))?;
    Ok((space, mu, rho))
}

fn sigma_words(role: Role) -> &'static str {
    match role {
        Role::Rho => "ρ",
        Role::Scale => "σ itself",
        Role::LogStd => "ln σ",
        Role::Mean | Role::Fixed => "no σ",
    }
}
