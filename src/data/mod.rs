//! Data sets: MNIST from IDX files, CSV, and synthetic generators.
//!
//! Every reader names the file and the field in its errors, and never panics on a
//! malformed file.

mod csv;
mod dataset;
pub mod fetch;
mod idx;
mod shift;
mod synthetic;

pub use csv::{csv_from_bytes, load_csv};
pub use dataset::{Dataset, Targets};
pub use idx::{
    IdxArray, MAX_IDX_BYTES, MNIST_FILE_NAMES, MnistSplit, find_mnist_file, idx_from_bytes,
    load_mnist, mnist_stems, read_idx,
};
pub use shift::{noised, rotated_quarter};
pub use synthetic::{abs_regression, gaussian_mixture};

use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::weights::Likelihood;

/// The value of a training record's `data_relative_to` when its `data_spec` path is
/// relative to the posterior file's folder (what [`crate::io::save`] writes).
pub const RELATIVE_TO_POSTERIOR: &str = "the posterior file's folder";

/// `path` made absolute against the current folder, with `.` and `..` resolved in the
/// text (no link followed).
fn lexical_absolute(path: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(path).ok()?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// The relative path from folder `base` to `target`, both given relative to the current
/// folder or absolute; `None` where there is none (another drive).
pub fn relative_path(target: &Path, base: &Path) -> Option<PathBuf> {
    let (t, b) = (lexical_absolute(target)?, lexical_absolute(base)?);
    let (tc, bc): (Vec<_>, Vec<_>) = (t.components().collect(), b.components().collect());
    if tc.first() != bc.first() {
        return None;
    }
    let common = tc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..bc.len() {
        rel.push("..");
    }
    for c in &tc[common..] {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    Some(rel)
}

/// A training record's data (its `data_spec` and `data_relative_to`) as a spec that
/// reads from the current folder, for a posterior file at `posterior`. A path written
/// relative to the posterior's folder is joined to it; a relative path in an older record
/// (relative to wherever training ran) is taken from the current folder, or from the
/// posterior's folder if only there; where both exist and differ, the two readings are
/// refused.
///
/// # Errors
///
/// [`Error::InvalidParameter`] for a spec that does not parse, or the two readings.
pub fn recorded_data(spec: &str, relative_to: Option<&str>, posterior: &Path) -> Result<DataSpec> {
    let parsed: DataSpec = spec.parse()?;
    let Some(p) = parsed.path().filter(|p| p.is_relative()) else {
        return Ok(parsed);
    };
    let folder = posterior.parent().unwrap_or(Path::new(""));
    let beside = folder.join(p);
    if relative_to == Some(RELATIVE_TO_POSTERIOR) {
        return Ok(parsed.with_path(beside));
    }
    let same = match (beside.canonicalize(), p.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        (Ok(_), Err(_)) => return Ok(parsed.with_path(beside)),
        _ => true,
    };
    if !same {
        return Err(Error::invalid(
            "recorded training data",
            spec,
            format!(
                "the path is relative and names two different things: `{}` (from the current folder) and `{}` (from the posterior's folder); pass the data explicitly",
                p.display(),
                beside.display()
            ),
        ));
    }
    Ok(parsed)
}

/// A data source named on the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSpec {
    /// `mnist:<dir>` (or a directory): the standard IDX files; train and test splits.
    /// `mnist` alone is the copy in the data cache ([`fetch::mnist_dir`]), which the
    /// command line downloads on first use.
    Mnist {
        /// Folder with the four IDX files.
        dir: PathBuf,
        /// Keep only the first images of each split.
        limit: Option<usize>,
    },
    /// `csv:<path>` (or a `.csv` file): inputs then target column(s).
    Csv {
        /// The file.
        path: PathBuf,
    },
    /// `abs:<alpha>`: the paper's y = α|x|, x ~ U[−10, 10] (100 train, 100 test).
    Abs {
        /// Slope α.
        alpha: f64,
    },
    /// `mixture:<classes>:<dim>`: Gaussian clusters (1000 train, 1000 test).
    Mixture {
        /// Number of classes.
        n_classes: usize,
        /// Input dimension.
        dim: usize,
    },
}

impl FromStr for DataSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::invalid("data", s, reason);
        // `mnist` (or `mnist@N`) alone: the downloaded copy in the data cache.
        if s == "mnist" || s.starts_with("mnist@") {
            let limit = match s.strip_prefix("mnist@") {
                Some(l) => Some(
                    l.parse()
                        .map_err(|_| bad("the limit after @ is not a count"))?,
                ),
                None => None,
            };
            return Ok(DataSpec::Mnist {
                dir: fetch::mnist_dir()?,
                limit,
            });
        }
        if let Some(rest) = s.strip_prefix("mnist:") {
            let (dir, limit) = match rest.rsplit_once('@') {
                Some((d, l)) => (
                    d,
                    Some(
                        l.parse()
                            .map_err(|_| bad("the limit after @ is not a count"))?,
                    ),
                ),
                None => (rest, None),
            };
            return Ok(DataSpec::Mnist {
                dir: dir.into(),
                limit,
            });
        }
        if let Some(rest) = s.strip_prefix("csv:") {
            return Ok(DataSpec::Csv { path: rest.into() });
        }
        if let Some(rest) = s.strip_prefix("abs:") {
            let alpha = rest
                .parse()
                .map_err(|_| bad("abs:<alpha> needs a number"))?;
            return Ok(DataSpec::Abs { alpha });
        }
        if let Some(rest) = s.strip_prefix("mixture:") {
            let (c, d) = rest
                .split_once(':')
                .ok_or_else(|| bad("expected mixture:<classes>:<dim>"))?;
            return Ok(DataSpec::Mixture {
                n_classes: c.parse().map_err(|_| bad("classes is not a count"))?,
                dim: d.parse().map_err(|_| bad("dim is not a count"))?,
            });
        }
        let p = PathBuf::from(s);
        if p.is_dir() {
            return Ok(DataSpec::Mnist {
                dir: p,
                limit: None,
            });
        }
        if p.extension().is_some_and(|e| e == "csv") {
            return Ok(DataSpec::Csv { path: p });
        }
        Err(bad(
            "expected mnist:<dir>[@limit], a folder, csv:<file>, a .csv file, abs:<alpha> or mixture:<classes>:<dim>",
        ))
    }
}

impl std::fmt::Display for DataSpec {
    /// The form [`DataSpec::from_str`] parses back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSpec::Mnist { dir, limit: None } => write!(f, "mnist:{}", dir.display()),
            DataSpec::Mnist {
                dir,
                limit: Some(l),
            } => write!(f, "mnist:{}@{l}", dir.display()),
            DataSpec::Csv { path } => write!(f, "csv:{}", path.display()),
            DataSpec::Abs { alpha } => write!(f, "abs:{alpha}"),
            DataSpec::Mixture { n_classes, dim } => write!(f, "mixture:{n_classes}:{dim}"),
        }
    }
}

impl DataSpec {
    /// The file or folder the data are read from, if they are read from one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataSpec::Mnist { dir, .. } => Some(dir),
            DataSpec::Csv { path } => Some(path),
            DataSpec::Abs { .. } | DataSpec::Mixture { .. } => None,
        }
    }

    /// The same data read from `path` (for data read from a file or folder).
    pub fn with_path(&self, path: PathBuf) -> DataSpec {
        match self {
            DataSpec::Mnist { limit, .. } => DataSpec::Mnist {
                dir: path,
                limit: *limit,
            },
            DataSpec::Csv { .. } => DataSpec::Csv { path },
            other => other.clone(),
        }
    }

    /// The likelihood that fits the data when none is given.
    pub fn default_likelihood(&self) -> Likelihood {
        match self {
            DataSpec::Mnist { .. } | DataSpec::Mixture { .. } => Likelihood::Softmax,
            DataSpec::Csv { .. } | DataSpec::Abs { .. } => Likelihood::Gaussian { precision: 1.0 },
        }
    }

    /// Loads (training set, test set). CSV files have no separate test set; synthetic
    /// sets draw a fresh test set from the same task.
    ///
    /// # Errors
    ///
    /// The readers' errors, naming the file; a data set beyond `limits`.
    pub fn load(
        &self,
        likelihood: Likelihood,
        seed: u64,
        limits: &crate::resources::Limits,
    ) -> Result<(Dataset, Option<Dataset>)> {
        Ok(match self {
            DataSpec::Mnist { dir, limit } => (
                load_mnist(dir, MnistSplit::Train, *limit, limits)?,
                Some(load_mnist(dir, MnistSplit::Test, *limit, limits)?),
            ),
            DataSpec::Csv { path } => {
                let classification = matches!(likelihood, Likelihood::Softmax);
                (load_csv(path, 1, classification, limits)?, None)
            }
            DataSpec::Abs { alpha } => (
                abs_regression(100, *alpha, 0.0, seed)?,
                Some(abs_regression(100, *alpha, 0.0, seed.wrapping_add(1))?),
            ),
            DataSpec::Mixture { n_classes, dim } => {
                // Two sets of 1000 points and the class means, checked before drawing.
                let values = (2000.0 + *n_classes as f64) * *dim as f64;
                crate::resources::check(
                    &format!("the data set {self}"),
                    crate::resources::Cost::default().with_bytes(values * 8.0),
                    limits,
                )?;
                (
                    gaussian_mixture(1000, *n_classes, *dim, 2.0, seed, 0)?,
                    Some(gaussian_mixture(1000, *n_classes, *dim, 2.0, seed, 1)?),
                )
            }
        })
    }
}
