//! Numeric CSV files: one row per data point, the last `n_targets` columns are the
//! targets (for classification: one column of integer labels). A first line that does
//! not parse as numbers is taken as a header (all of them: a first line with a number
//! beside a non-number is a data row with a typo, and is refused naming the cell).

use faer::Mat;
use std::path::Path;

use crate::data::{Dataset, Targets};
use crate::error::{Error, Result};
use crate::posterior::LARGEST;

/// Loads a CSV data set.
///
/// # Errors
///
/// [`Error::Io`] if unreadable; [`Error::BadFile`] naming the line and column of a
/// non-numeric or non-finite value, a row with the wrong number of columns, a
/// non-integer or negative label, or no data rows.
pub fn load_csv(
    path: &Path,
    n_targets: usize,
    classification: bool,
    limits: &crate::resources::Limits,
) -> Result<Dataset> {
    let bytes = crate::resources::read_within_limits(path, HELD_PER_BYTE, limits)?;
    csv_from_bytes(&bytes, path, n_targets, classification)
}

/// Bytes held per byte of a CSV file while it becomes a data set, at most: the text, a
/// row vector of f64 per line (one value per two bytes at the densest, `0,`) and the
/// matrix.
const HELD_PER_BYTE: f64 = 24.0;

/// Parses CSV bytes as [`load_csv`] reads a file (`path` only names the source in
/// errors).
///
/// # Errors
///
/// As [`load_csv`], plus [`Error::BadFile`] for bytes that are not UTF-8.
pub fn csv_from_bytes(
    bytes: &[u8],
    path: &Path,
    n_targets: usize,
    classification: bool,
) -> Result<Dataset> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::BadFile {
        path: path.to_path_buf(),
        reason: format!("not UTF-8 text: {e}"),
    })?;
    let bad = |reason: String| Error::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let n_targets = if classification { 1 } else { n_targets };
    if n_targets == 0 {
        return Err(Error::invalid(
            "n_targets",
            0,
            "need at least one target column",
        ));
    }
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut width = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: std::result::Result<Vec<f64>, usize> = cells
            .iter()
            .enumerate()
            .map(|(c, s)| s.parse::<f64>().map_err(|_| c))
            .collect();
        let values = match parsed {
            Ok(v) => v,
            // A header: the first line, none of whose cells is a number. A first line with
            // numbers beside a non-number is a data row with a typo, not a header.
            Err(_)
                if rows.is_empty()
                    && width.is_none()
                    && cells.iter().all(|s| s.parse::<f64>().is_err()) =>
            {
                width = Some(cells.len());
                continue;
            }
            Err(c) => {
                let header = if rows.is_empty() && width.is_none() {
                    " (a header line has no numeric cell, so this is a data row)"
                } else {
                    ""
                };
                return Err(bad(format!(
                    "line {}, column {}: `{}` is not a number{header}",
                    i + 1,
                    c + 1,
                    cells[c]
                )));
            }
        };
        if let Some(c) = values
            .iter()
            .position(|v| !(-LARGEST..=LARGEST).contains(v))
        {
            return Err(bad(format!(
                "line {}, column {}: value {} is not finite or beyond ±1e30",
                i + 1,
                c + 1,
                Error::num(values[c])
            )));
        }
        let w = *width.get_or_insert(values.len());
        if values.len() != w {
            return Err(bad(format!(
                "line {}: {} columns, expected {w}",
                i + 1,
                values.len()
            )));
        }
        if w <= n_targets {
            return Err(bad(format!(
                "line {}: {w} columns leave no inputs besides {n_targets} target(s)",
                i + 1
            )));
        }
        rows.push(values);
    }
    if rows.is_empty() {
        return Err(bad("no data rows".into()));
    }
    let w = rows[0].len();
    let d_in = w - n_targets;
    let x = Mat::from_fn(rows.len(), d_in, |r, c| rows[r][c]);
    let targets = if classification {
        let mut labels = Vec::with_capacity(rows.len());
        for (r, row) in rows.iter().enumerate() {
            let v = row[d_in];
            if v < 0.0 || v.fract() != 0.0 || v > u32::MAX as f64 {
                return Err(bad(format!(
                    "data row {}: label {v} is not a non-negative integer",
                    r + 1
                )));
            }
            labels.push(v as u32);
        }
        Targets::Classes(labels)
    } else {
        Targets::Values(Mat::from_fn(rows.len(), n_targets, |r, c| {
            rows[r][d_in + c]
        }))
    };
    Dataset::new(x, targets)
}
