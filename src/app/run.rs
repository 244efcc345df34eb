//! `mi-est run`: the grid (or one shard of it) into reports, shards as JSON lines that
//! `merge` combines into exactly the reports an unsharded run writes.

use crate::grid::{LoadedSpec, load_spec};
use crate::io::ReadOptions;
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::Result;
use crate::grid::{GridConfig, RawRow, grid_items, load_posteriors, run_grid};
use crate::study::grid::{BiasVarianceRow, BoundRow, bias_variance, bounds};

use super::Provenance;

/// Everything `mi-est run` needs besides the grid itself.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Replace existing reports.
    pub overwrite: bool,
    /// Data for the ELBO (else each posterior's recorded training data).
    pub data: Option<String>,
    /// Weight draws of the ELBO.
    pub elbo_samples: usize,
    /// The command line and code revision, for the manifest.
    pub provenance: Provenance,
}

/// What a finished run wrote.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// The bias–variance table (empty for a shard).
    pub bias_variance: Vec<BiasVarianceRow>,
    /// The bound table (empty for a shard).
    pub bounds: Vec<BoundRow>,
}

fn shard_file(out: &Path, shard: (usize, usize)) -> PathBuf {
    out.join(format!("raw-shard-{}-of-{}.jsonl", shard.0, shard.1))
}

/// A shard's raw rows as JSON lines, floats as exact bit patterns
/// ([`crate::journal::exact`]): what [`merge`] reads back, in a format this crate owns
/// end to end.
fn shard_bytes(rows: &[RawRow]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut out, r).expect("a raw row serializes");
        out.push(b'\n');
    }
    out
}

/// The settings that decide a grid's numbers: what the journal's fingerprint covers
/// (with the posteriors' SHA-256) and what the manifest records (with more).
fn settings(
    config: &GridConfig,
    spec: Option<&LoadedSpec>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = object(serde_json::json!({
        "seed": config.seed,
        "estimators": config.estimators.iter().map(|e| e.name()).collect::<Vec<_>>(),
        "k": config.ks,
        "samples": config.samples,
        "repeats": config.repeats,
        "shard": [config.shard.0, config.shard.1],
    }));
    // Only where they are used: a grid without the annealed bounds keeps the settings
    // (and so the journal's fingerprint) it had before they existed.
    if config
        .estimators
        .contains(&crate::estimators::EstimatorKind::Annealed)
    {
        m.insert(
            "temperatures".into(),
            serde_json::json!(config.temperatures),
        );
    }
    if let Some(s) = spec {
        m.insert(
            "spec".into(),
            serde_json::json!({"path": s.path.display().to_string(), "sha256": s.sha256}),
        );
    }
    if let Some(layers) = &config.layers {
        m.insert("layers".into(), serde_json::json!(layers));
    }
    if let Some(s) = config.prior_scale {
        m.insert("prior_scale".into(), serde_json::json!(s));
    }
    m
}

/// The fields of a JSON object literal.
fn object(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

fn manifest(
    config: &GridConfig,
    options: &RunOptions,
    posteriors: &[crate::grid::LoadedPosterior],
    spec: Option<&LoadedSpec>,
    git: Option<String>,
) -> String {
    let mut m = settings(config, spec);
    m.extend(object(serde_json::json!({
        "tool": "mi-est",
        "version": env!("CARGO_PKG_VERSION"),
        "git_revision": git,
        "command_line": options.provenance.command_line,
        "n_items_total": grid_items(config).len(),
        "data": options.data,
        "elbo_samples": options.elbo_samples,
        "posteriors": posteriors.iter().map(|p| serde_json::json!({"id": p.id, "path": p.path.display().to_string(), "sha256": p.sha256})).collect::<Vec<_>>(),
    })));
    serde_json::to_string_pretty(&m).expect("manifest serializes")
}

/// Runs the grid (or this process's shard of it) and writes its reports under
/// `options.out`: `raw.parquet`, `bias_variance.parquet`, `bounds.parquet`,
/// `manifest.json` and SVG plots; a shard writes only `raw-shard-i-of-n.jsonl` (its raw
/// rows as JSON lines, floats as exact bits) and `manifest-shard-i-of-n.json` with that
/// file's SHA-256 (combine with [`merge`](super::merge)).
///
/// # Errors
///
/// Bad settings, unreadable posteriors, an existing report without `overwrite`, an
/// unwritable folder: named errors, and no partial file is left.
pub fn run(
    config: &GridConfig,
    options: &RunOptions,
    observer: &dyn crate::observe::Observer,
) -> Result<RunOutput> {
    let config = config.clone().check()?;
    let spec = config.spec.as_deref().map(load_spec).transpose()?;
    let read = ReadOptions {
        spec: spec.as_ref().map(|s| &s.spec),
        layers: config.layers.as_deref(),
        prior_scale: config.prior_scale,
        limits: config.limits,
    };
    let posteriors = load_posteriors(&config.posteriors, read)?;
    // The ELBO's data are checked before any estimate (they are used after them).
    crate::study::grid::check_data(
        &posteriors,
        options.data.as_deref(),
        options.elbo_samples,
        &config.limits,
    )?;
    let sharded = config.shard.1 > 1;
    let first = if sharded {
        shard_file(&options.out, config.shard)
    } else {
        options.out.join("raw.parquet")
    };
    // Refuse what would not fit before anything is written.
    let grid = crate::grid::check_grid(&config, &posteriors)?;
    // One writer at a time in the folder.
    let part = sharded.then(|| format!("shard-{}-of-{}", config.shard.0, config.shard.1));
    let _lock = crate::atomic::FolderLock::acquire(
        &options.out,
        part.as_deref(),
        &options.provenance.command_line.join(" "),
    )?;
    // Finished items go to a journal so that a killed run resumes (same settings and
    // posterior files ⇒ same fingerprint); it is removed once the reports are written.
    let mut covered = settings(&config, spec.as_ref());
    covered.insert(
        "posteriors".into(),
        posteriors.iter().map(|p| p.sha256.clone()).collect(),
    );
    let fingerprint = crate::journal::fingerprint(&serde_json::Value::Object(covered));
    let journal_path = options.out.join(if sharded {
        format!(
            ".journal-shard-{}-of-{}.jsonl",
            config.shard.0, config.shard.1
        )
    } else {
        ".journal.jsonl".to_string()
    });
    let (journal, overwrite) = super::begin_report_set(
        &options.out,
        &first,
        &journal_path,
        &fingerprint,
        options.overwrite,
    )?;
    if journal.n_done() > 0 {
        observer.resuming(journal.n_done(), &journal_path);
    }
    let git = options.provenance.git_revision.clone();
    let rows = run_grid(&config, &posteriors, &grid, observer, Some(&journal))?;
    let manifest = manifest(&config, options, &posteriors, spec.as_ref(), git);
    if sharded {
        let mpath = options.out.join(format!(
            "manifest-shard-{}-of-{}.json",
            config.shard.0, config.shard.1
        ));
        let raw = shard_bytes(&rows);
        write_atomic(&first, &raw, overwrite)?;
        // `merge` decodes only shard files whose SHA-256 matches their manifest.
        let mut m: serde_json::Value = serde_json::from_str(&manifest).expect("manifest JSON");
        m["raw_sha256"] = serde_json::Value::String(crate::grid::sha256_hex(&raw));
        let manifest = serde_json::to_string_pretty(&m).expect("manifest serializes");
        write_atomic(&mpath, manifest.as_bytes(), true)?;
        journal.finish()?;
        return Ok(RunOutput {
            files: vec![first, mpath],
            bias_variance: vec![],
            bounds: vec![],
        });
    }
    let out = write_reports(
        &options.out,
        &rows,
        &posteriors,
        options.data.as_deref(),
        options.elbo_samples,
        config.seed,
        &manifest,
        overwrite,
        &config.limits,
    )?;
    journal.finish()?;
    Ok(out)
}

/// The reports of a whole grid, from its raw rows: the bias–variance and bound tables
/// (with the ELBO of each posterior on `data`), written by
/// [`crate::report::write_run_report`]. What [`run`] and [`merge`](super::merge) both
/// end with.
#[allow(clippy::too_many_arguments)] // the settings of `bounds` plus where and what to write
pub(super) fn write_reports(
    dir: &Path,
    rows: &[RawRow],
    posteriors: &[crate::grid::LoadedPosterior],
    data: Option<&str>,
    elbo_samples: usize,
    seed: u64,
    manifest: &str,
    overwrite: bool,
    limits: &crate::resources::Limits,
) -> Result<RunOutput> {
    let bv = bias_variance(rows);
    let bd = bounds(rows, posteriors, data, elbo_samples, seed, limits)?;
    let files = crate::report::write_run_report(dir, rows, &bv, &bd, manifest, overwrite)?;
    Ok(RunOutput {
        files,
        bias_variance: bv,
        bounds: bd,
    })
}
