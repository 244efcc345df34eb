//! The application: what `mi-est run`, `merge` and `reproduce` do, as library calls
//! (the command only parses flags and prints). It owns the journal, the manifests, the
//! overwrite policy and the folder lock; its settings carry the limits and where a
//! report came from ([`Provenance`]); [`crate::report`] only writes what it is given.

mod merge;
mod reproduce;
mod run;

use std::path::Path;

use crate::error::Result;
use crate::report::prepare_out;

pub use merge::merge;
pub use reproduce::{recorded_samples, reproduce_into};
pub use run::{RunOptions, RunOutput, run};

/// Where a report came from, for its manifest: the command line and the revision of
/// the code that computed it. The application gathers them (the library runs no
/// `git` and reads no arguments).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provenance {
    /// The command line (or what stands in for it, e.g. a Python call).
    pub command_line: Vec<String>,
    /// The git revision of the code, where it is a checkout.
    pub git_revision: Option<String>,
}

/// Begins a set of reports in `dir` (its first file `first`) for the computation
/// `fingerprint`, recorded in the journal at `journal_path`: while a journal of this very
/// computation is there, the reports beside it are its unfinished set (killed while
/// writing them, say), which may be replaced. Returns the journal and whether existing
/// reports may be replaced (`overwrite`, or that unfinished set).
///
/// # Errors
///
/// Those of [`prepare_out`] and [`crate::journal::Journal::open`].
pub(crate) fn begin_report_set(
    dir: &Path,
    first: &Path,
    journal_path: &Path,
    fingerprint: &str,
    overwrite: bool,
) -> Result<(crate::journal::Journal, bool)> {
    let replace = overwrite || crate::journal::Journal::is_of(journal_path, fingerprint);
    prepare_out(dir, replace, first)?;
    let journal = crate::journal::Journal::open(journal_path, fingerprint, overwrite)?;
    Ok((journal, replace))
}
