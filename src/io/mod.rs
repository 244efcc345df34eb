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
use crate::error::{Error, Result};
use crate::posterior::{LARGEST, MeanFieldGaussian, SigmaTransform};
use crate::resources::Limits;
use crate::symmetry::spec::PermutationSpec;
use crate::symmetry::{SpecSpace, WeightSpace};
use crate::weights::Likelihood;
use crate::weights::{Activation, Arch};
use container::{TensorSet, Values, foreign_format, tensor_set};

mod assemble;
mod container;
mod names;
mod npz;
pub mod order;
mod tensors;
mod write;
use assemble::{order_layers, parse_set};
pub use names::Scheme;
use names::{Part, Role};
pub use npz::{MAX_NPZ_BYTES, read_npy, read_npz};
pub use order::LayerOrder;
use tensors::{FileTensors, LayerTensors, Layers, read_tensors};
pub use write::{save, to_bytes};

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
    /// The memory a read may take ([`Limits::default`]: the machine's).
    pub limits: Limits,
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
    let bytes = crate::resources::read_within_limits(path, npz::READ_COPIES, &options.limits)?;
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
    parse_set(tensor_set(bytes, &options.limits)?, options)
}

/// The spec of a file's layers read as a plain chain in forward order
/// ([`PermutationSpec::sequential`]; the order as in [`load_with_bytes`], `layers` as
/// `--layers`), for `mi-est spec --sequential`; the file read within `limits`.
///
/// # Errors
///
/// [`Error::Io`] if unreadable; [`Error::ResourceLimit`] for a file beyond `limits`;
/// [`Error::BadFile`] naming the file and the layer that has no weight or kernel, has
/// both, or does not chain, or an order nothing states.
pub fn sequential_spec(
    path: &Path,
    layers: Option<&[String]>,
    limits: &Limits,
) -> Result<PermutationSpec> {
    let named = in_file(path);
    let bytes = crate::resources::read_within_limits(path, npz::READ_COPIES, limits)?;
    let set = tensor_set(&bytes, limits).map_err(&named)?;
    let file_order = set.order.clone();
    let tensors = read_tensors(set).map_err(&named)?;
    let options = ReadOptions {
        layers,
        limits: *limits,
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
