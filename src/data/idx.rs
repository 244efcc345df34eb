//! The IDX format of MNIST (optionally gzipped).
//!
//! A header of two zero bytes, a type byte (0x08 = u8), the number of dimensions, then
//! each dimension as a big-endian u32, then the data. Images have magic 2051
//! (`00 00 08 03`), labels 2049 (`00 00 08 01`).

use faer::Mat;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::elbo::{Dataset, Targets};
use crate::error::{Error, Result};

/// A decoded IDX array of bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// The data, row-major.
    pub data: Vec<u8>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads an IDX file of unsigned bytes (gzipped or not, detected from its first bytes).
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be read; [`Error::BadFile`] for a corrupt gzip
/// stream, a wrong magic number or type, or a data length that disagrees with the
/// header.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    idx_from_bytes(&raw, path)
}

/// Parses IDX bytes, gzipped or not (`path` only names the source in errors).
///
/// # Errors
///
/// As [`read_idx`], without the I/O error.
pub fn idx_from_bytes(raw: &[u8], path: &Path) -> Result<IdxArray> {
    let decoded;
    let bytes: &[u8] = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        // A few hostile bytes can inflate to any size: stop at MAX_IDX_BYTES.
        GzDecoder::new(raw)
            .take(MAX_IDX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(path, format!("corrupt gzip stream: {e}")))?;
        if out.len() as u64 > MAX_IDX_BYTES {
            return Err(bad(
                path,
                format!("decompresses to more than {MAX_IDX_BYTES} bytes"),
            ));
        }
        decoded = out;
        &decoded
    } else {
        raw
    };
    parse_idx(bytes).map_err(|reason| bad(path, reason))
}

/// The largest decompressed IDX file read (4 GiB; the full MNIST training images are
/// 47 MB).
pub const MAX_IDX_BYTES: u64 = 4 << 30;

/// Parses IDX bytes.
pub(crate) fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!("truncated header: {} bytes", bytes.len()));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "wrong magic number {:#010x} (expected 0x00000801 labels or 0x00000803 images)",
            u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type {:#04x} is not unsigned byte (0x08)",
            bytes[2]
        ));
    }
    let n_dims = bytes[3] as usize;
    if n_dims == 0 {
        return Err("zero dimensions".into());
    }
    let header = 4 + 4 * n_dims;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: {} dimensions need {header} bytes, file has {}",
            n_dims,
            bytes.len()
        ));
    }
    let dims: Vec<usize> = (0..n_dims)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} overflow"))?;
    let body = &bytes[header..];
    if body.len() != n {
        return Err(format!(
            "header says dimensions {dims:?} ({n} bytes of data) but the file has {} bytes of data{}",
            body.len(),
            if body.len() < n { " (truncated)" } else { "" }
        ));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
}

/// The training or test split of MNIST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MnistSplit {
    /// `train-*` (60,000 images).
    Train,
    /// `t10k-*` (10,000 images).
    Test,
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::Io {
        path: dir.join(format!("{stem}.gz")),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "MNIST file not found (also tried without .gz)",
        ),
    })
}

/// Loads an MNIST split from `dir` (the standard file names, `.gz` or not): pixels
/// scaled to [0, 1], 784 inputs, labels 0–9. `limit` keeps only the first images.
///
/// # Errors
///
/// Missing files ([`Error::Io`]), malformed files, image/label count mismatch, images
/// that are not 28×28, or labels above 9 ([`Error::BadFile`]).
pub fn load_mnist(dir: &Path, split: MnistSplit, limit: Option<usize>) -> Result<Dataset> {
    let prefix = match split {
        MnistSplit::Train => "train",
        MnistSplit::Test => "t10k",
    };
    let img_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lab_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&img_path)?;
    let labels = read_idx(&lab_path)?;
    if images.dims.len() != 3 {
        return Err(bad(
            &img_path,
            format!("images need 3 dimensions, found {:?}", images.dims),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(bad(
            &lab_path,
            format!("labels need 1 dimension, found {:?}", labels.dims),
        ));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(bad(
            &lab_path,
            format!(
                "{} labels for {} images in {}",
                labels.dims[0],
                images.dims[0],
                img_path.display()
            ),
        ));
    }
    if let Some(p) = labels.data.iter().position(|&l| l > 9) {
        return Err(bad(
            &lab_path,
            format!("label {} at index {p} is not a digit", labels.data[p]),
        ));
    }
    let n = limit.map_or(images.dims[0], |l| l.min(images.dims[0]));
    let d = images.dims[1] * images.dims[2];
    if d != 784 {
        return Err(bad(
            &img_path,
            format!(
                "images are {}x{}, expected 28x28",
                images.dims[1], images.dims[2]
            ),
        ));
    }
    let x = Mat::from_fn(n, d, |r, c| images.data[r * d + c] as f64 / 255.0);
    let y = labels.data[..n].iter().map(|&l| l as u32).collect();
    Dataset::new(x, Targets::Classes(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(magic: [u8; 4], dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_vec();
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn parses_well_formed_and_rejects_malformed_headers() {
        let ok = parse_idx(&idx([0, 0, 8, 1], &[3], &[1, 2, 3])).unwrap();
        assert_eq!(ok.dims, vec![3]);
        assert!(
            parse_idx(&idx([1, 0, 8, 1], &[3], &[1, 2, 3]))
                .unwrap_err()
                .contains("magic")
        );
        assert!(
            parse_idx(&idx([0, 0, 9, 1], &[3], &[1, 2, 3]))
                .unwrap_err()
                .contains("element type")
        );
        assert!(
            parse_idx(&idx([0, 0, 8, 1], &[4], &[1, 2, 3]))
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            parse_idx(&idx([0, 0, 8, 1], &[2], &[1, 2, 3]))
                .unwrap_err()
                .contains("3 bytes of data")
        );
        assert!(
            parse_idx(&[0, 0, 8])
                .unwrap_err()
                .contains("truncated header")
        );
        assert!(
            parse_idx(&idx([0, 0, 8, 3], &[1, 2], &[]))
                .unwrap_err()
                .contains("truncated header")
        );
        assert!(parse_idx(&idx([0, 0, 8, 2], &[u32::MAX, u32::MAX], &[])).is_err());
    }
}
