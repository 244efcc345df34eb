//! The crate's error type.
//!
//! Every variant carries the data a user needs to find the problem: the field, the
//! offending value, the expected shape. Library code returns [`Result`]; only
//! programmer errors in the API (documented under `# Panics`) panic.

use std::path::PathBuf;

/// Errors returned by `mi_est`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter has a value outside its domain.
    #[error("invalid `{field}` = {value}: {reason}")]
    InvalidParameter {
        /// Name of the parameter or field.
        field: String,
        /// The offending value, formatted.
        value: String,
        /// What the value must satisfy.
        reason: String,
    },
    /// A vector or matrix has the wrong length or shape.
    #[error("`{field}` has length {actual}, expected {expected}")]
    LengthMismatch {
        /// Name of the vector.
        field: String,
        /// Length the architecture implies.
        expected: usize,
        /// Length that was given.
        actual: usize,
    },
    /// An activation name that is neither `relu` nor `tanh`.
    #[error("unknown activation `{0}` (expected `relu` or `tanh`)")]
    UnknownActivation(String),
    /// A σ transform name that is neither `softplus` nor `exp`.
    #[error("unknown sigma transform `{0}` (expected `softplus` or `exp`)")]
    UnknownSigmaTransform(String),
    /// A fixed (deterministic) layer that is not invariant under the permutations of
    /// the hidden layer next to it, so the hidden-unit permutations would not be a
    /// symmetry of the network.
    #[error(
        "fixed layer {layer} is not invariant under permutations of hidden layer {hidden_width_index}: {reason}"
    )]
    FixedLayerBreaksSymmetry {
        /// 0-based layer index.
        layer: usize,
        /// Index into the widths of the hidden layer it touches.
        hidden_width_index: usize,
        /// Which entries differ.
        reason: String,
    },
    /// The permutation group is too large to enumerate.
    #[error(
        "group too large to enumerate: |G| = exp({ln_order:.3}) ≈ {order:.3e} elements exceeds the limit of {limit}"
    )]
    GroupTooLarge {
        /// ln |G|.
        ln_order: f64,
        /// |G| as a float (may be `inf`).
        order: f64,
        /// The configured limit.
        limit: u64,
    },
    /// A hidden layer too wide for the exact permanent.
    #[error("hidden width {width} is too large for the exact permanent (at most {max})")]
    WidthTooLarge {
        /// The hidden width.
        width: usize,
        /// The largest supported width.
        max: usize,
    },
    /// A permutation spec that is malformed or does not fit the posterior's tensors.
    #[error("permutation spec: {0}")]
    Spec(String),
    /// An estimator that needs a particular architecture was given another.
    #[error("{estimator} needs {needs}, but the posterior has {architecture}")]
    UnsupportedArchitecture {
        /// The estimator's name.
        estimator: &'static str,
        /// What it needs.
        needs: &'static str,
        /// The architecture it got (`widths [..]` or the spec's permutations).
        architecture: String,
    },
    /// Training produced a NaN or infinite loss, gradient or scale.
    #[error("training diverged at step {step} (epoch {epoch}): {what} = {value}")]
    Diverged {
        /// 0-based optimizer step.
        step: u64,
        /// 0-based epoch.
        epoch: usize,
        /// Which quantity.
        what: String,
        /// Its value.
        value: f64,
    },
    /// A computation whose up-front estimate exceeds the memory or time limit
    /// ([`crate::resources`]).
    #[error(
        "{what} would need about {bytes} of memory and {time} of computing, over the limit of {max_bytes} and {max_time}; ask for less, or raise the limits (set `max_memory_gib`, `max_hours`)"
    )]
    ResourceLimit {
        /// What was refused.
        what: String,
        /// Estimated peak memory.
        bytes: String,
        /// Estimated wall time on the available threads.
        time: String,
        /// The memory limit.
        max_bytes: String,
        /// The time limit.
        max_time: String,
    },
    /// A malformed input file.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field or tensor.
        reason: String,
    },
    /// An I/O error on a named file.
    #[error("{}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system (or the writer) reported.
        source: std::io::Error,
    },
    /// A report table could not be built (the table library's error is the source).
    #[error("the `{what}` table could not be built")]
    Table {
        /// The table.
        what: String,
        /// The table library's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A plot could not be drawn (the plotting library's error is the source).
    #[error("{}: the plot could not be drawn", path.display())]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// The plotting library's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A download failed.
    #[error("{url}: {reason}")]
    Download {
        /// What was being fetched.
        url: String,
        /// Why it failed (the server's status, a dropped connection, …).
        reason: String,
    },
    /// A step of a larger computation failed; `source` says why.
    #[error("{what}")]
    Context {
        /// What was being done (naming the input it was done for).
        what: String,
        /// Why it failed.
        source: Box<Error>,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidParameter {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// A float for a message: as written for ordinary sizes, in scientific notation
    /// beyond them (1e155, not 155 digits).
    pub(crate) fn num(v: f64) -> String {
        if v.is_finite() && v != 0.0 && !(1e-6..1e16).contains(&v.abs()) {
            format!("{v:e}")
        } else {
            format!("{v}")
        }
    }

    /// Shorthand for [`Error::Io`].
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Shorthand for [`Error::LengthMismatch`].
    pub(crate) fn length(field: impl Into<String>, expected: usize, actual: usize) -> Self {
        Error::LengthMismatch {
            field: field.into(),
            expected,
            actual,
        }
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
