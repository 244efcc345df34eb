//! The IDX format of MNIST (optionally gzipped).
//!
//! A header of two zero bytes, a type byte (0x08 = u8), the number of dimensions, then
//! each dimension as a big-endian u32, then the data. Images have magic 2051
//! (`00 00 08 03`), labels 2049 (`00 00 08 01`).

use faer::Mat;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::data::{Dataset, Targets};
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

/// Reads an IDX file of unsigned bytes (gzipped or not, detected from its first bytes),
/// streamed: the header's dimensions are checked against the memory limit
/// ([`crate::resources`]) before the data are read, and no more bytes are inflated than
/// the header declares (plus one, to tell a file with more).
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be read; [`Error::BadFile`] for a corrupt gzip
/// stream, a wrong magic number or type, or a data length that disagrees with the
/// header; [`Error::ResourceLimit`] for data that would not fit in the memory limit.
pub fn read_idx(path: &Path, limits: &crate::resources::Limits) -> Result<IdxArray> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    idx_from_reader(std::io::BufReader::new(file), path, limits)
}

/// Parses IDX bytes, gzipped or not (`path` only names the source in errors).
///
/// # Errors
///
/// As [`read_idx`].
pub fn idx_from_bytes(
    raw: &[u8],
    path: &Path,
    limits: &crate::resources::Limits,
) -> Result<IdxArray> {
    idx_from_reader(raw, path, limits)
}

/// [`read_idx`] from any reader.
fn idx_from_reader(
    mut r: impl std::io::BufRead,
    path: &Path,
    limits: &crate::resources::Limits,
) -> Result<IdxArray> {
    let gzip = r
        .fill_buf()
        .map_err(|e| Error::io(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    if gzip {
        read_stream(GzDecoder::new(r), path, "corrupt gzip stream", limits)
    } else {
        read_stream(r, path, "cannot read", limits)
    }
}

/// The largest IDX data read (4 GiB; the full MNIST training images are 47 MB).
pub const MAX_IDX_BYTES: u64 = 4 << 30;

/// Bytes held per data byte once an IDX file is a data set: the bytes and an f64 each.
const HELD_PER_BYTE: f64 = 9.0;

/// Reads an IDX array from a stream: the header, a check of its size, then exactly
/// the data it declares.
fn read_stream(
    mut r: impl Read,
    path: &Path,
    broken: &str,
    limits: &crate::resources::Limits,
) -> Result<IdxArray> {
    let failed = |e: std::io::Error| bad(path, format!("{broken}: {e}"));
    // Reads up to `buf.len()` bytes, fewer only at the end of the stream.
    let fill = |r: &mut dyn Read, buf: &mut [u8]| -> std::io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    };
    let mut head = [0u8; 4];
    let got = fill(&mut r, &mut head).map_err(failed)?;
    check_magic(&head[..got]).map_err(|reason| bad(path, reason))?;
    let n_dims = head[3] as usize;
    let mut dims_bytes = vec![0u8; 4 * n_dims];
    let got = fill(&mut r, &mut dims_bytes).map_err(failed)?;
    if got < dims_bytes.len() {
        return Err(bad(
            path,
            format!(
                "truncated header: {n_dims} dimensions need {} bytes, file has {}",
                4 + 4 * n_dims,
                4 + got
            ),
        ));
    }
    let dims: Vec<usize> = dims_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize)
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n as u64 <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            bad(
                path,
                format!("header says dimensions {dims:?}: more than {MAX_IDX_BYTES} bytes of data"),
            )
        })?;
    crate::resources::check(
        &format!("reading {} ({dims:?} in its header)", path.display()),
        crate::resources::Cost::default().with_bytes(n as f64 * HELD_PER_BYTE),
        limits,
    )?;
    let mut data = vec![0u8; n];
    let got = fill(&mut r, &mut data).map_err(failed)?;
    let more = got == n && fill(&mut r, &mut [0u8; 1]).map_err(failed)? > 0;
    if got < n || more {
        return Err(bad(
            path,
            if more {
                format!("header says dimensions {dims:?} ({n} bytes of data) but the file has more")
            } else {
                format!(
                    "header says dimensions {dims:?} ({n} bytes of data) but the file has {got} bytes of data (truncated)"
                )
            },
        ));
    }
    Ok(IdxArray { dims, data })
}

/// Checks an IDX file's first four bytes: two zeros, type 0x08, at least one dimension.
fn check_magic(head: &[u8]) -> std::result::Result<(), String> {
    if head.len() < 4 {
        return Err(format!("truncated header: {} bytes", head.len()));
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(format!(
            "wrong magic number {:#010x} (expected 0x00000801 labels or 0x00000803 images)",
            u32::from_be_bytes([head[0], head[1], head[2], head[3]])
        ));
    }
    if head[2] != 0x08 {
        return Err(format!(
            "element type {:#04x} is not unsigned byte (0x08)",
            head[2]
        ));
    }
    if head[3] == 0 {
        return Err("zero dimensions".into());
    }
    Ok(())
}

/// Parses IDX bytes (not gzipped), as [`read_stream`] does.
#[cfg(test)]
fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    read_stream(bytes, Path::new("x"), "cannot read", &Default::default()).map_err(|e| match e {
        Error::BadFile { reason, .. } => reason,
        other => other.to_string(),
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

/// The four MNIST files as distributed: training images and labels, then test images
/// and labels (the one list of them: the download fetches these, the readers take each
/// with or without `.gz`).
pub const MNIST_FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// [`MNIST_FILE_NAMES`] without `.gz`.
pub fn mnist_stems() -> [&'static str; 4] {
    MNIST_FILE_NAMES.map(|n| n.strip_suffix(".gz").expect("gzip names"))
}

/// The MNIST file `stem` in `dir`, gzipped or not.
///
/// # Errors
///
/// [`Error::Io`] naming the `.gz` path if neither is there.
pub fn find_mnist_file(dir: &Path, stem: &str) -> Result<PathBuf> {
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
pub fn load_mnist(
    dir: &Path,
    split: MnistSplit,
    limit: Option<usize>,
    limits: &crate::resources::Limits,
) -> Result<Dataset> {
    let (images, labels) = match split {
        MnistSplit::Train => (mnist_stems()[0], mnist_stems()[1]),
        MnistSplit::Test => (mnist_stems()[2], mnist_stems()[3]),
    };
    let img_path = find_mnist_file(dir, images)?;
    let lab_path = find_mnist_file(dir, labels)?;
    let images = read_idx(&img_path, limits)?;
    let labels = read_idx(&lab_path, limits)?;
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
                .contains("2 bytes of data) but the file has more")
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

    /// A gzip stream of zeros far longer than its header declares (a bomb) is read only
    /// as far as the header says, plus one byte; a header that declares more than the
    /// memory limit is refused before any data are inflated.
    #[test]
    fn gzip_streams_are_read_by_their_declared_size() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let gz = |header: Vec<u8>, zeros: usize| {
            let mut e = GzEncoder::new(Vec::new(), Compression::best());
            e.write_all(&header).unwrap();
            let block = vec![0u8; 1 << 20];
            for _ in 0..zeros >> 20 {
                e.write_all(&block).unwrap();
            }
            e.finish().unwrap()
        };
        // 2,000 images declared, 64 MiB of zeros behind them.
        let bomb = gz(idx([0, 0, 8, 3], &[2000, 28, 28], &[]), 64 << 20);
        assert!(bomb.len() < 200_000, "{}", bomb.len());
        let e = idx_from_bytes(&bomb, Path::new("bomb.gz"), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("but the file has more"), "{e}");
        // 4 G images of 1 byte: over any memory limit, refused from the header alone.
        let huge = gz(idx([0, 0, 8, 1], &[u32::MAX], &[]), 0);
        let e = idx_from_bytes(&huge, Path::new("huge.gz"), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("would need about"), "{e}");
    }
}
