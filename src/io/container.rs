//! The containers a posterior comes in: safetensors as is, an `.npz` archive converted
//! to safetensors bytes (its member order kept), and the files that are neither but may be
//! taken for one (a PyTorch pickle, text), named.

use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

use super::{bad, f64_bytes, npz};
use crate::error::{Error, Result};

/// F64 tensors `(name, shape, row-major values)` and metadata as safetensors bytes;
/// `err` words a failure, of one tensor (values that do not fill its shape) or of the
/// whole.
pub(super) fn f64_safetensors(
    tensors: &[(String, Vec<usize>, Vec<f64>)],
    metadata: Option<HashMap<String, String>>,
    err: impl Fn(Option<(&str, &[usize])>, String) -> Error,
) -> Result<Vec<u8>> {
    let data: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| f64_bytes(v)).collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&data)
        .map(|((n, shape, _), d)| {
            TensorView::new(Dtype::F64, shape.clone(), d)
                .map(|v| (n.clone(), v))
                .map_err(|e| err(Some((n, shape)), e.to_string()))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, metadata).map_err(|e| err(None, e.to_string()))
}

/// A file's bytes as safetensors, with its tensor names in the file's own order (where the
/// format keeps one).
pub(super) type Converted<'a> = (std::borrow::Cow<'a, [u8]>, Option<Vec<String>>);

/// The bytes of a file as safetensors, with the order its tensors are listed in where
/// the format keeps one: an `.npz` archive converted (its member order kept), anything
/// else as is (safetensors keeps no order).
pub(super) fn safetensors_bytes(bytes: &[u8]) -> Result<Converted<'_>> {
    Ok(if npz::is_zip(bytes) {
        let (converted, order) = npz_as_safetensors(bytes)?;
        (std::borrow::Cow::Owned(converted), Some(order))
    } else {
        (std::borrow::Cow::Borrowed(bytes), None)
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

/// The arrays of an `.npz` archive as safetensors bytes (F64, no metadata), with the
/// member names in archive order.
fn npz_as_safetensors(bytes: &[u8]) -> Result<(Vec<u8>, Vec<String>)> {
    let here = Path::new("");
    let arrays = npz::read_npz(bytes).map_err(|e| bad(here, format!("npz archive: {e}")))?;
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
    Ok((f64_safetensors_owned(arrays), order))
}

/// F64 tensors `(name, shape, row-major values)`, whose values fill their shapes, as
/// safetensors bytes, written straight into one buffer and each array freed once
/// written: at the peak the values are held once and a half, not three times as a
/// serializer over borrowed bytes needs.
fn f64_safetensors_owned(arrays: Vec<(String, Vec<usize>, Vec<f64>)>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut at = 0usize;
    for (name, shape, values) in &arrays {
        let end = at + 8 * values.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F64", "shape": shape, "data_offsets": [at, end]}),
        );
        at = end;
    }
    let mut header = serde_json::Value::Object(header).to_string().into_bytes();
    // The data start at a multiple of 8, as safetensors' own writer aligns them.
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + at);
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(header);
    for (_, _, values) in arrays {
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    out
}
