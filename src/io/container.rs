//! The containers a posterior comes in, read into one in-memory [`TensorSet`]:
//! safetensors (its tensors' bytes borrowed, decoded one at a time), an `.npz` archive
//! (its arrays decoded once, member order kept), or tensors handed over from Python; and
//! the files that are neither but may be taken for one (a PyTorch pickle, text), named.

use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::Path;

use super::{bad, npz};
use crate::error::Result;

/// A tensor's values as they came: decoded already (an `.npz` array, tensors from
/// Python) or the bytes of a safetensors tensor, decoded when read.
pub(super) enum Values<'a> {
    /// Row-major f64 values.
    Decoded(Vec<f64>),
    /// A safetensors tensor's dtype and little-endian bytes.
    Raw(Dtype, &'a [u8]),
}

impl Values<'_> {
    /// The values as f64 (F32 and F64 tensors; `name` words the error for others).
    pub(super) fn decode(self, name: &str) -> Result<Vec<f64>> {
        Ok(match self {
            Values::Decoded(v) => v,
            Values::Raw(Dtype::F64, data) => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            Values::Raw(Dtype::F32, data) => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                .collect(),
            Values::Raw(other, _) => {
                return Err(bad(
                    Path::new(""),
                    format!("tensor `{name}` has dtype {other:?}; only F32 and F64 are supported"),
                ));
            }
        })
    }
}

/// A file's tensors `(name, shape, values)` and metadata in memory, with the tensors'
/// names in the file's own order where the format keeps one (`.npz` members, a
/// `state_dict`; safetensors keeps none).
pub(super) struct TensorSet<'a> {
    /// The file's metadata (safetensors' `__metadata__`; none in an `.npz`).
    pub(super) metadata: BTreeMap<String, String>,
    /// The tensors, in no particular order.
    pub(super) tensors: Vec<(String, Vec<usize>, Values<'a>)>,
    /// The names in the file's order, where it keeps one.
    pub(super) order: Option<Vec<String>>,
}

/// The tensors of a file's bytes: a safetensors file's views over `bytes`, or an `.npz`
/// archive's arrays (decoded once, no copy kept of the inflated bytes).
pub(super) fn tensor_set<'a>(
    bytes: &'a [u8],
    limits: &crate::resources::Limits,
) -> Result<TensorSet<'a>> {
    let here = Path::new("");
    if npz::is_zip(bytes) {
        let arrays =
            npz::read_npz(bytes, limits).map_err(|e| bad(here, format!("npz archive: {e}")))?;
        let mut seen = std::collections::HashSet::new();
        if let Some((n, _, _)) = arrays.iter().find(|(n, _, _)| !seen.insert(n.as_str())) {
            return Err(bad(
                here,
                format!(
                    "npz archive: member `{n}` is stored twice (a ZIP file with a duplicate name); which one is meant is not stated"
                ),
            ));
        }
        let order = arrays.iter().map(|(n, _, _)| n.clone()).collect();
        return Ok(TensorSet {
            metadata: BTreeMap::new(),
            tensors: arrays
                .into_iter()
                .map(|(n, shape, v)| (n, shape, Values::Decoded(v)))
                .collect(),
            order: Some(order),
        });
    }
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(here, format!("not a valid safetensors file: {e}")))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| bad(here, format!("bad header: {e}")))?;
    Ok(TensorSet {
        metadata: header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        tensors: st
            .tensors()
            .into_iter()
            .map(|(n, view)| {
                let shape = view.shape().to_vec();
                (n, shape, Values::Raw(view.dtype(), view.data()))
            })
            .collect(),
        order: None,
    })
}

/// The words for a file that is not safetensors or `.npz` but something a user may take
/// for a posterior: a PyTorch pickle, or text (CSV, JSON). Every safetensors file has `{`
/// at byte 8 (the header after its 8-byte length).
pub(super) fn foreign_format(bytes: &[u8]) -> Option<String> {
    const SAVE: &str = "save the tensors instead: `from safetensors.torch import save_file; save_file(model.state_dict(), \"posterior.safetensors\")` (docs/posteriors.md)";
    let header_at_8 = bytes.get(8) == Some(&b'{');
    if npz::is_zip(bytes) {
        return bytes.windows(8).any(|w| w == b"data.pkl").then(|| {
            format!("a PyTorch file (torch.save: a pickle in a ZIP archive), which mi-est does not read because unpickling can run code; {SAVE}")
        });
    }
    if bytes.first() == Some(&0x80) && !header_at_8 {
        return Some(format!(
            "a Python pickle (an older torch.save?), which mi-est does not read because unpickling can run code; {SAVE}"
        ));
    }
    let head = &bytes[..bytes.len().min(256)];
    let text = std::str::from_utf8(head).is_ok_and(|t| {
        !t.is_empty()
            && t.chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
    });
    (!header_at_8 && text).then(|| {
        "not a safetensors or .npz file: it is text (a CSV or JSON file?); a posterior is a safetensors file or a NumPy .npz archive of its tensors (docs/posteriors.md)".to_string()
    })
}
