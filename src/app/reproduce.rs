//! `mi-est reproduce`: an experiment into its report folder, resumable.

use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::report::{bad, read_json};
use crate::study::reproduce::Reproduction;

use super::{Provenance, begin_report_set};

/// The S of each timed estimate of the `estimator-cost` report in `dir`, as its
/// `manifest.json` records them (`samples`): with them as [`ReproduceOptions::samples`]
/// a rerun computes that report's values exactly (S is otherwise chosen from timed
/// pilots).
///
/// [`ReproduceOptions::samples`]: crate::study::reproduce::ReproduceOptions::samples
///
/// # Errors
///
/// [`Error::Io`] or [`Error::BadFile`] naming `manifest.json` (unreadable, not JSON, no
/// `samples` object, an S that is not a whole number ≥ 1).
pub fn recorded_samples(dir: &Path) -> Result<std::collections::BTreeMap<String, usize>> {
    let path = dir.join("manifest.json");
    let manifest = read_json(&path)?;
    let Some(samples) = manifest.get("samples").and_then(|s| s.as_object()) else {
        return Err(bad(
            &path,
            "no `samples` object (only `reproduce estimator-cost` records the S of its estimates)"
                .into(),
        ));
    };
    samples
        .iter()
        .map(|(key, s)| match s.as_u64() {
            Some(s) if s >= 1 => Ok((key.clone(), s as usize)),
            _ => Err(bad(
                &path,
                format!("`samples.{key}` = {s} is not a number of draws ≥ 1"),
            )),
        })
        .collect()
}

/// Runs an experiment into `dir` (`reports/<experiment>[-quick]/` for the CLI): refuses an
/// existing report without `overwrite` before computing anything, records finished runs
/// in `dir/.journal.jsonl` so that a killed run resumes with the same command, writes
/// the tables, plots, `summary.md` and `manifest.json` (version, git revision, command
/// line, seed, and the SHA-256 of every input file), then removes the journal.
///
/// # Errors
///
/// An existing report, unreadable inputs, a journal of other settings (without
/// `overwrite`), the experiment's own errors, unwritable files.
pub fn reproduce_into(
    dir: &Path,
    experiment: crate::study::reproduce::Experiment,
    mut options: crate::study::reproduce::ReproduceOptions,
    overwrite: bool,
    provenance: &Provenance,
) -> Result<(Reproduction, Vec<PathBuf>)> {
    let command_line = &provenance.command_line;
    let summary = dir.join("summary.md");
    let _lock = crate::atomic::FolderLock::acquire(dir, None, &command_line.join(" "))?;
    let mut inputs = Vec::new();
    if experiment.needs_mnist() {
        for stem in crate::data::mnist_stems() {
            if let Ok(p) = crate::data::find_mnist_file(&options.mnist_dir, stem) {
                let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
                inputs.push(serde_json::json!({
                    "path": p.display().to_string(),
                    "sha256": crate::grid::sha256_hex(&bytes),
                }));
            }
        }
    }
    let settings = serde_json::json!({
        "experiment": experiment.name(),
        "quick": options.quick,
        "seed": options.seed,
        "version": env!("CARGO_PKG_VERSION"),
        "inputs": inputs.iter().map(|i| i["sha256"].clone()).collect::<Vec<_>>(),
        "samples": options.samples,
    });
    let journal_path = dir.join(".journal.jsonl");
    let fingerprint = crate::journal::fingerprint(&settings);
    let (journal, overwrite) =
        begin_report_set(dir, &summary, &journal_path, &fingerprint, overwrite)?;
    let git = provenance.git_revision.clone();
    // Results read back from an earlier run (an interrupted one, say): the observer
    // hears of them, and the summary and the manifest say that the wall time covers
    // only the rest.
    let resumed = journal.n_done();
    if resumed > 0
        && let Some(o) = &options.observer
    {
        o.resuming(resumed, &journal_path);
    }
    let journal = std::sync::Arc::new(journal);
    options.journal = Some(journal.clone());
    let mut r = crate::study::reproduce::reproduce(experiment, &options)?;
    if resumed > 0 {
        r.summary.push_str(&format!(
            "\n{resumed} results were read from the journal of an earlier run with the same settings (an interrupted one, say); the wall time below is this run's alone.\n"
        ));
    }
    options.journal = None;
    let (mut files, hashes) = crate::report::write_reproduction_hashed(dir, &r, overwrite)?;
    let mut manifest = serde_json::json!({
        "tool": "mi-est",
        "version": env!("CARGO_PKG_VERSION"),
        "git_revision": git,
        "command_line": command_line,
        "experiment": experiment.name(),
        "quick": options.quick,
        "seed": options.seed,
        "threads": rayon::current_num_threads(),
        "inputs": inputs,
        "wall_s": r.wall_s,
        "resumed_from_journal": resumed,
        "tables_sha256": hashes,
    });
    if let Some(samples) = &r.samples {
        manifest["samples"] = serde_json::json!(samples);
    }
    let manifest = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    let mpath = dir.join("manifest.json");
    write_atomic(&mpath, manifest.as_bytes(), true)?;
    files.push(mpath);
    files.push(crate::report::reproduction_page(dir, &r)?);
    if let Ok(j) = std::sync::Arc::try_unwrap(journal) {
        j.finish()?;
    }
    Ok((r, files))
}
