//! A data set in memory: inputs as a matrix, targets as values or class labels, checked
//! finite and within range when built. What the readers produce and training and the
//! ELBO read.

use faer::Mat;

use crate::error::{Error, Result};
use crate::posterior::LARGEST;

/// Regression values or class labels.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// `n × dL` real targets.
    Values(Mat<f64>),
    /// `n` labels in `0..n_classes`.
    Classes(Vec<u32>),
}

/// Inputs and targets, validated against each other.
#[derive(Clone, Debug)]
pub struct Dataset {
    x: Mat<f64>,
    targets: Targets,
    n_classes: Option<usize>,
    /// The inputs row by row, built on the first minibatch gather and kept: a column-major
    /// gather of M random rows touches M · d0 scattered cache lines (DRAM-bound for
    /// MNIST), a row-major one M contiguous rows.
    x_by_rows: std::sync::OnceLock<Vec<f64>>,
}

impl PartialEq for Dataset {
    fn eq(&self, other: &Self) -> bool {
        self.x == other.x && self.targets == other.targets && self.n_classes == other.n_classes
    }
}

impl Dataset {
    /// A data set of `x` (`n × d0`) and targets.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for an empty set, NaN or infinite inputs or targets, or
    /// one beyond ±1e30 ([`LARGEST`]: a squared error that can overflow f64);
    /// [`Error::LengthMismatch`] if the number of targets is not the number of rows.
    pub fn new(x: Mat<f64>, targets: Targets) -> Result<Self> {
        let n = x.nrows();
        if n == 0 {
            return Err(Error::invalid("data", "0 rows", "the data set is empty"));
        }
        for c in 0..x.ncols() {
            for r in 0..n {
                if !(-LARGEST..=LARGEST).contains(&x[(r, c)]) {
                    return Err(Error::invalid(
                        format!("x[{r}, {c}]"),
                        Error::num(x[(r, c)]),
                        "inputs must be finite and within ±1e30",
                    ));
                }
            }
        }
        let n_classes = match &targets {
            Targets::Values(y) => {
                if y.nrows() != n {
                    return Err(Error::length("targets", n, y.nrows()));
                }
                for c in 0..y.ncols() {
                    for r in 0..n {
                        if !(-LARGEST..=LARGEST).contains(&y[(r, c)]) {
                            return Err(Error::invalid(
                                format!("y[{r}, {c}]"),
                                Error::num(y[(r, c)]),
                                "targets must be finite and within ±1e30",
                            ));
                        }
                    }
                }
                None
            }
            Targets::Classes(y) => {
                if y.len() != n {
                    return Err(Error::length("labels", n, y.len()));
                }
                Some(y.iter().copied().max().unwrap_or(0) as usize + 1)
            }
        };
        Ok(Dataset {
            x,
            targets,
            n_classes,
            x_by_rows: std::sync::OnceLock::new(),
        })
    }

    /// Number of data points.
    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    /// Whether there are no data points (never true for a checked set).
    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }

    /// Inputs, `n × d0`.
    pub fn x(&self) -> &Mat<f64> {
        &self.x
    }

    /// Targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// One more than the largest label, for classification.
    pub fn n_classes(&self) -> Option<usize> {
        self.n_classes
    }

    /// The rows `rows` of the inputs as a new matrix.
    pub fn x_rows(&self, rows: &[usize]) -> Mat<f64> {
        Mat::from_fn(rows.len(), self.x.ncols(), |r, c| self.x[(rows[r], c)])
    }

    /// The inputs row by row (`n · d0` values, point `r` at `r · d0 ..`), built on the
    /// first call and kept: the trainer's minibatch gather copies whole rows from it.
    pub fn x_by_rows(&self) -> &[f64] {
        let d = self.x.ncols();
        self.x_by_rows.get_or_init(|| {
            let n = self.x.nrows();
            let mut v = vec![0.0; n * d];
            // Blocks of rows keep the strided writes within cache.
            for r0 in (0..n).step_by(64) {
                let r1 = (r0 + 64).min(n);
                for c in 0..d {
                    for r in r0..r1 {
                        v[r * d + c] = self.x[(r, c)];
                    }
                }
            }
            v
        })
    }
}
