//! Reports: row structs → Polars DataFrames → Parquet (written atomically), the run
//! manifest, and SVG plots. The only module that knows Polars.

mod plots;

use polars::prelude::*;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::study::grid::{
    BiasVarianceRow, BoundRow, GridConfig, RawRow, bias_variance, bounds, grid_items,
    load_posteriors, run_grid,
};

pub use plots::{write_plots, xy_plot};

use crate::study::reproduce::Reproduction;
use crate::study::table::{Table, Values};

fn polars_err(what: &str, e: PolarsError) -> Error {
    Error::invalid(what, "dataframe", e.to_string())
}

fn col<T, P>(name: &str, values: T) -> Column
where
    Series: NamedFrom<T, P>,
    T: AsRef<P>,
    P: ?Sized,
{
    Column::new(name.into(), values)
}

/// The raw rows as a DataFrame.
///
/// # Errors
///
/// Polars errors (not expected for well-formed rows).
pub fn raw_frame(rows: &[RawRow]) -> Result<DataFrame> {
    let g = |f: fn(&RawRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let opt = |f: fn(&RawRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<Option<f64>>>();
    DataFrame::new(
        rows.len(),
        vec![
            col("item", rows.iter().map(|r| r.item).collect::<Vec<u64>>()),
            col(
                "posterior_id",
                rows.iter()
                    .map(|r| r.posterior_id.clone())
                    .collect::<Vec<String>>(),
            ),
            col(
                "posterior_path",
                rows.iter()
                    .map(|r| r.posterior_path.clone())
                    .collect::<Vec<String>>(),
            ),
            col(
                "posterior_sha256",
                rows.iter()
                    .map(|r| r.posterior_sha256.clone())
                    .collect::<Vec<String>>(),
            ),
            col(
                "estimator",
                rows.iter()
                    .map(|r| r.estimator.clone())
                    .collect::<Vec<String>>(),
            ),
            col("k", rows.iter().map(|r| r.k).collect::<Vec<Option<u64>>>()),
            col(
                "n_samples",
                rows.iter().map(|r| r.n_samples).collect::<Vec<u64>>(),
            ),
            col(
                "repeat",
                rows.iter().map(|r| r.repeat).collect::<Vec<u64>>(),
            ),
            col("seed", rows.iter().map(|r| r.seed).collect::<Vec<u64>>()),
            col("mi_nats", g(|r| r.mi_nats)),
            col(
                "std_err_nats",
                rows.iter()
                    .map(|r| r.std_err_nats)
                    .collect::<Vec<Option<f64>>>(),
            ),
            col("ln_cap_nats", g(|r| r.ln_cap_nats)),
            col("ln_group_order_nats", g(|r| r.ln_group_order_nats)),
            col("entropy_q_nats", g(|r| r.entropy_q_nats)),
            col(
                "max_term_share",
                rows.iter()
                    .map(|r| r.max_term_share)
                    .collect::<Vec<Option<f64>>>(),
            ),
            col("upper_nats", opt(|r| r.upper_nats)),
            col("upper_std_err_nats", opt(|r| r.upper_std_err_nats)),
            col("width_nats", opt(|r| r.width_nats)),
            col("width_std_err_nats", opt(|r| r.width_std_err_nats)),
            col("wall_s", g(|r| r.wall_s)),
        ],
    )
    .map_err(|e| polars_err("raw", e))
}

/// The bias–variance table as a DataFrame.
///
/// # Errors
///
/// Polars errors (not expected).
pub fn bias_variance_frame(rows: &[BiasVarianceRow]) -> Result<DataFrame> {
    let opt =
        |f: fn(&BiasVarianceRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<Option<f64>>>();
    DataFrame::new(
        rows.len(),
        vec![
            col(
                "posterior_id",
                rows.iter()
                    .map(|r| r.posterior_id.clone())
                    .collect::<Vec<String>>(),
            ),
            col(
                "estimator",
                rows.iter()
                    .map(|r| r.estimator.clone())
                    .collect::<Vec<String>>(),
            ),
            col("k", rows.iter().map(|r| r.k).collect::<Vec<Option<u64>>>()),
            col(
                "n_repeats",
                rows.iter().map(|r| r.n_repeats).collect::<Vec<u64>>(),
            ),
            col(
                "n_samples",
                rows.iter().map(|r| r.n_samples).collect::<Vec<u64>>(),
            ),
            col(
                "mean_nats",
                rows.iter().map(|r| r.mean_nats).collect::<Vec<f64>>(),
            ),
            col("reference_nats", opt(|r| r.reference_nats)),
            col(
                "reference_kind",
                rows.iter()
                    .map(|r| r.reference_kind.clone())
                    .collect::<Vec<Option<String>>>(),
            ),
            col("bias_nats", opt(|r| r.bias_nats)),
            col("variance_nats2", opt(|r| r.variance_nats2)),
            col("rmse_nats", opt(|r| r.rmse_nats)),
            col("mean_std_err_nats", opt(|r| r.mean_std_err_nats)),
            col(
                "mean_wall_s",
                rows.iter().map(|r| r.mean_wall_s).collect::<Vec<f64>>(),
            ),
            col(
                "ln_cap_nats",
                rows.iter().map(|r| r.ln_cap_nats).collect::<Vec<f64>>(),
            ),
            col(
                "saturated",
                rows.iter().map(|r| r.saturated).collect::<Vec<bool>>(),
            ),
        ],
    )
    .map_err(|e| polars_err("bias_variance", e))
}

/// The bound table as a DataFrame.
///
/// # Errors
///
/// Polars errors (not expected).
pub fn bounds_frame(rows: &[BoundRow]) -> Result<DataFrame> {
    let opt = |f: fn(&BoundRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<Option<f64>>>();
    DataFrame::new(
        rows.len(),
        vec![
            col(
                "posterior_id",
                rows.iter()
                    .map(|r| r.posterior_id.clone())
                    .collect::<Vec<String>>(),
            ),
            col(
                "data",
                rows.iter()
                    .map(|r| r.data.clone())
                    .collect::<Vec<Option<String>>>(),
            ),
            col(
                "n_data",
                rows.iter().map(|r| r.n_data).collect::<Vec<Option<u64>>>(),
            ),
            col(
                "estimator",
                rows.iter()
                    .map(|r| r.estimator.clone())
                    .collect::<Vec<String>>(),
            ),
            col("k", rows.iter().map(|r| r.k).collect::<Vec<Option<u64>>>()),
            col("elbo_per_point", opt(|r| r.elbo_per_point)),
            col("elbo_per_point_std_err", opt(|r| r.elbo_per_point_std_err)),
            col(
                "kl_nats",
                rows.iter().map(|r| r.kl_nats).collect::<Vec<f64>>(),
            ),
            col(
                "mi_nats",
                rows.iter().map(|r| r.mi_nats).collect::<Vec<f64>>(),
            ),
            col("mi_std_err_nats", opt(|r| r.mi_std_err_nats)),
            col("elbo_sym_per_point", opt(|r| r.elbo_sym_per_point)),
            col(
                "elbo_sym_per_point_std_err",
                opt(|r| r.elbo_sym_per_point_std_err),
            ),
            col(
                "kl_sym_nats",
                rows.iter().map(|r| r.kl_sym_nats).collect::<Vec<f64>>(),
            ),
            col(
                "ln_group_order_nats",
                rows.iter()
                    .map(|r| r.ln_group_order_nats)
                    .collect::<Vec<f64>>(),
            ),
        ],
    )
    .map_err(|e| polars_err("bounds", e))
}

/// Writes `df` as Parquet to `path` atomically.
///
/// # Errors
///
/// [`Error::Io`] naming the path.
pub fn write_parquet(path: &Path, df: &mut DataFrame, overwrite: bool) -> Result<()> {
    write_atomic(path, &parquet_bytes(path, df)?, overwrite)
}

/// A frame as Parquet bytes (`path` names the destination in errors).
fn parquet_bytes(path: &Path, df: &mut DataFrame) -> Result<Vec<u8>> {
    let mut buf = Cursor::new(Vec::new());
    ParquetWriter::new(&mut buf)
        .finish(df)
        .map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
    Ok(buf.into_inner())
}

fn bad(path: &Path, reason: String) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        reason,
    }
}

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
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(&path, format!("not JSON: {e}")))?;
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
    /// The command line, for the manifest.
    pub command_line: Vec<String>,
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

/// The rows of a shard file written by [`shard_bytes`] (`path` names it in errors).
fn shard_rows(bytes: &[u8], path: &Path) -> Result<Vec<RawRow>> {
    let text = std::str::from_utf8(bytes).map_err(|e| bad(path, format!("not UTF-8: {e}")))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<RawRow>(line)
                .map_err(|e| bad(path, format!("line {} is not a raw row: {e}", i + 1)))
        })
        .collect()
}

fn prepare_out(out: &Path, overwrite: bool, first: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    if !overwrite && first.exists() {
        return Err(Error::Io {
            path: first.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a report is already there (pass --overwrite to replace it)",
            ),
        });
    }
    Ok(())
}

/// The git revision of the working directory, if it is a git checkout.
fn git_revision() -> Option<String> {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn manifest(
    config: &GridConfig,
    options: &RunOptions,
    posteriors: &[crate::study::grid::LoadedPosterior],
    git: Option<String>,
) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "tool": "mi-est",
        "version": env!("CARGO_PKG_VERSION"),
        "git_revision": git,
        "command_line": options.command_line,
        "seed": config.seed,
        "estimators": config.estimators.iter().map(|e| e.name()).collect::<Vec<_>>(),
        "k": config.ks,
        "samples": config.samples,
        "repeats": config.repeats,
        "shard": [config.shard.0, config.shard.1],
        "n_items_total": grid_items(config).len(),
        "data": options.data,
        "elbo_samples": options.elbo_samples,
        "posteriors": posteriors.iter().map(|p| serde_json::json!({"id": p.id, "path": p.path.display().to_string(), "sha256": p.sha256})).collect::<Vec<_>>(),
    }))
    .expect("manifest serializes")
}

/// Runs the grid (or this process's shard of it) and writes its reports under
/// `options.out`: `raw.parquet`, `bias_variance.parquet`, `bounds.parquet`,
/// `manifest.json` and SVG plots; a shard writes only `raw-shard-i-of-n.jsonl` (its raw
/// rows as JSON lines, floats as exact bits) and `manifest-shard-i-of-n.json` with that
/// file's SHA-256 (combine with [`merge`]).
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
    let posteriors = load_posteriors(&config.posteriors)?;
    let sharded = config.shard.1 > 1;
    let first = if sharded {
        shard_file(&options.out, config.shard)
    } else {
        options.out.join("raw.parquet")
    };
    prepare_out(&options.out, options.overwrite, &first)?;
    // Finished items go to a journal so that a killed run resumes (same settings and
    // posterior files ⇒ same fingerprint); it is removed once the reports are written.
    let fingerprint = crate::journal::fingerprint(&serde_json::json!({
        "seed": config.seed,
        "estimators": config.estimators.iter().map(|e| e.name()).collect::<Vec<_>>(),
        "k": config.ks,
        "samples": config.samples,
        "repeats": config.repeats,
        "shard": [config.shard.0, config.shard.1],
        "posteriors": posteriors.iter().map(|p| p.sha256.clone()).collect::<Vec<_>>(),
    }));
    let journal_path = options.out.join(if sharded {
        format!(
            ".journal-shard-{}-of-{}.jsonl",
            config.shard.0, config.shard.1
        )
    } else {
        ".journal.jsonl".to_string()
    });
    // Refuse what would not fit before anything is written.
    let shard_items = crate::study::grid::shard_items(&config);
    crate::study::grid::grid_cost(&config, &posteriors, &shard_items)?;
    let journal = crate::journal::Journal::open(&journal_path, &fingerprint, options.overwrite)?;
    if journal.n_done() > 0 {
        observer.resuming(journal.n_done(), &journal_path);
    }
    // The revision that computes, taken before the (possibly hours-long) work.
    let git = git_revision();
    let rows = run_grid(&config, &posteriors, observer, Some(&journal))?;
    let manifest = manifest(&config, options, &posteriors, git);
    if sharded {
        let mpath = options.out.join(format!(
            "manifest-shard-{}-of-{}.json",
            config.shard.0, config.shard.1
        ));
        let raw = shard_bytes(&rows);
        write_atomic(&first, &raw, options.overwrite)?;
        // `merge` decodes only shard files whose SHA-256 matches their manifest.
        let mut m: serde_json::Value = serde_json::from_str(&manifest).expect("manifest JSON");
        m["raw_sha256"] = serde_json::Value::String(crate::study::grid::sha256_hex(&raw));
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
        options.overwrite,
    )?;
    journal.finish()?;
    Ok(out)
}

/// The reports of a whole grid, from its raw rows: the bias–variance and bound tables
/// (with the ELBO of each posterior on `data`), `raw.parquet`, `bias_variance.parquet`,
/// `bounds.parquet`, `manifest.json` and the plots under `dir`. What [`run`] and
/// [`merge`] both end with.
#[allow(clippy::too_many_arguments)] // the settings of `bounds` plus where and what to write
fn write_reports(
    dir: &Path,
    rows: &[RawRow],
    posteriors: &[crate::study::grid::LoadedPosterior],
    data: Option<&str>,
    elbo_samples: usize,
    seed: u64,
    manifest: &str,
    overwrite: bool,
) -> Result<RunOutput> {
    let bv = bias_variance(rows);
    let bd = bounds(rows, posteriors, data, elbo_samples, seed)?;
    let mut files = Vec::new();
    for (name, mut df) in [
        ("raw.parquet", raw_frame(rows)?),
        ("bias_variance.parquet", bias_variance_frame(&bv)?),
        ("bounds.parquet", bounds_frame(&bd)?),
    ] {
        let p = dir.join(name);
        write_parquet(&p, &mut df, overwrite)?;
        files.push(p);
    }
    let mpath = dir.join("manifest.json");
    write_atomic(&mpath, manifest.as_bytes(), true)?;
    files.push(mpath);
    files.extend(write_plots(dir, &bv, &bd)?);
    Ok(RunOutput {
        files,
        bias_variance: bv,
        bounds: bd,
    })
}

/// Combines the shard files in `dir` (from runs with the same settings) into the full
/// reports, exactly as an unsharded run would have written them.
///
/// # Errors
///
/// [`Error::BadFile`] for missing, duplicate or foreign shards (checked against the
/// shard manifests), plus the errors of [`run`].
pub fn merge(dir: &Path, overwrite: bool) -> Result<RunOutput> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut shard_files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("raw-shard-")
                    && n.to_string_lossy().ends_with(".jsonl")
            })
        })
        .collect();
    shard_files.sort();
    if shard_files.is_empty() {
        return Err(bad(dir, "no raw-shard-*.jsonl files to merge".into()));
    }
    let manifest_of = |p: &Path| -> Result<serde_json::Value> {
        let name = p
            .file_name()
            .expect("file")
            .to_string_lossy()
            .replace("raw-", "manifest-")
            .replace(".jsonl", ".json");
        let mp = dir.join(name);
        let text = std::fs::read_to_string(&mp).map_err(|source| Error::Io {
            path: mp.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| bad(&mp, format!("not JSON: {e}")))
    };
    let first = manifest_of(&shard_files[0])?;
    let keys = [
        "seed",
        "estimators",
        "k",
        "samples",
        "repeats",
        "posteriors",
        "data",
        "elbo_samples",
        "n_items_total",
    ];
    let n_shards = first["shard"][1].as_u64().unwrap_or(0) as usize;
    let mut rows = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in &shard_files {
        let m = manifest_of(p)?;
        for k in keys {
            if m[k] != first[k] {
                return Err(bad(
                    p,
                    format!(
                        "shard settings differ from {} in `{k}`",
                        shard_files[0].display()
                    ),
                ));
            }
        }
        if m["shard"][1].as_u64() != Some(n_shards as u64)
            || !seen.insert(m["shard"][0].as_u64().unwrap_or(u64::MAX))
        {
            return Err(bad(p, "shard count differs or shard index repeats".into()));
        }
        // Read only the bytes the shard's run wrote: a corrupt or foreign file is
        // refused by its hash before it is parsed.
        let bytes = std::fs::read(p).map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?;
        let want = m["raw_sha256"].as_str().unwrap_or("(none)");
        if crate::study::grid::sha256_hex(&bytes) != want {
            return Err(bad(
                p,
                format!(
                    "SHA-256 does not match `raw_sha256` = {want} in its manifest (corrupt, truncated or from another run)"
                ),
            ));
        }
        rows.extend(shard_rows(&bytes, p)?);
    }
    if seen.len() != n_shards {
        return Err(bad(
            dir,
            format!("found {} of {n_shards} shards", seen.len()),
        ));
    }
    rows.sort_by_key(|r| r.item);
    let total = first["n_items_total"].as_u64().unwrap_or(0) as usize;
    if rows.len() != total || rows.iter().enumerate().any(|(i, r)| r.item != i as u64) {
        return Err(bad(
            dir,
            format!(
                "the shards hold {} rows, the grid has {total} items",
                rows.len()
            ),
        ));
    }
    let paths: Vec<PathBuf> = first["posteriors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["path"].as_str().map(PathBuf::from))
                .collect()
        })
        .unwrap_or_default();
    let posteriors = load_posteriors(&paths)?;
    for (lp, m) in posteriors
        .iter()
        .zip(first["posteriors"].as_array().into_iter().flatten())
    {
        if m["sha256"].as_str() != Some(lp.sha256.as_str()) {
            return Err(bad(
                &lp.path,
                "the posterior file changed since the shards ran (sha256 differs)".into(),
            ));
        }
    }
    let out_raw = dir.join("raw.parquet");
    prepare_out(dir, overwrite, &out_raw)?;
    let data = first["data"].as_str().map(str::to_string);
    let elbo_samples = first["elbo_samples"].as_u64().unwrap_or(1) as usize;
    let seed = first["seed"].as_u64().unwrap_or(0);
    let mut m = first.clone();
    m["shard"] = serde_json::json!([0, 1]);
    m["merged_from"] = serde_json::json!(
        shard_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    );
    let manifest = serde_json::to_string_pretty(&m).expect("json");
    write_reports(
        dir,
        &rows,
        &posteriors,
        data.as_deref(),
        elbo_samples,
        seed,
        &manifest,
        overwrite,
    )
}

/// The bias–variance table as aligned text for the terminal.
pub fn format_summary(bv: &[BiasVarianceRow], bd: &[BoundRow]) -> String {
    let mut s = String::new();
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
    s.push_str(&format!(
        "{:<28} {:<28} {:>6} {:>3} {:>10} {:>10} {:>10} {:>10} {:>8} {:>4}\n",
        "posterior", "estimator", "K", "R", "mean", "bias", "sd", "rmse", "cap", "sat"
    ));
    for r in bv {
        s.push_str(&format!(
            "{:<28} {:<28} {:>6} {:>3} {:>10.4} {:>10} {:>10} {:>10} {:>8.4} {:>4}\n",
            r.posterior_id,
            r.estimator,
            r.k.map_or("-".into(), |k| k.to_string()),
            r.n_repeats,
            r.mean_nats,
            f(r.bias_nats),
            f(r.variance_nats2.map(f64::sqrt)),
            f(r.rmse_nats),
            r.ln_cap_nats,
            if r.saturated { "yes" } else { "" }
        ));
    }
    s.push('\n');
    s.push_str(&format!(
        "{:<28} {:<28} {:>6} {:>12} {:>12} {:>12} {:>12}\n",
        "posterior", "estimator", "K", "L/N", "(L+I)/N", "KL", "KL_sym"
    ));
    for r in bd {
        s.push_str(&format!(
            "{:<28} {:<28} {:>6} {:>12} {:>12} {:>12.3} {:>12.3}\n",
            r.posterior_id,
            r.estimator,
            r.k.map_or("-".into(), |k| k.to_string()),
            r.elbo_per_point.map_or("-".into(), |v| format!("{v:.6}")),
            r.elbo_sym_per_point
                .map_or("-".into(), |v| format!("{v:.6}")),
            r.kl_nats,
            r.kl_sym_nats
        ));
    }
    s
}

/// A [`Table`] as a DataFrame.
///
/// # Errors
///
/// Columns of unequal length.
pub fn table_frame(t: &Table) -> Result<DataFrame> {
    let cols = t
        .columns
        .iter()
        .map(|(name, v)| match v {
            Values::F64(x) => col(name, x.clone()),
            Values::OptF64(x) => col(name, x.clone()),
            Values::U64(x) => col(name, x.clone()),
            Values::Str(x) => col(name, x.clone()),
            Values::Bool(x) => col(name, x.clone()),
        })
        .collect();
    DataFrame::new(t.height(), cols).map_err(|e| polars_err(&t.name, e))
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
    command_line: &[String],
) -> Result<(Reproduction, Vec<PathBuf>)> {
    let summary = dir.join("summary.md");
    prepare_out(dir, overwrite, &summary)?;
    let mut inputs = Vec::new();
    if experiment.needs_mnist() {
        for stem in [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ] {
            for name in [format!("{stem}.gz"), stem.to_string()] {
                let p = options.mnist_dir.join(&name);
                if p.is_file() {
                    let bytes = std::fs::read(&p).map_err(|source| Error::Io {
                        path: p.clone(),
                        source,
                    })?;
                    inputs.push(serde_json::json!({
                        "path": p.display().to_string(),
                        "sha256": crate::study::grid::sha256_hex(&bytes),
                    }));
                    break;
                }
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
    // The revision that computes, taken before the (possibly hours-long) work.
    let git = git_revision();
    let journal = crate::journal::Journal::open(
        &journal_path,
        &crate::journal::fingerprint(&settings),
        overwrite,
    )?;
    if journal.n_done() > 0
        && let Some(o) = &options.observer
    {
        o.resuming(journal.n_done(), &journal_path);
    }
    let journal = std::sync::Arc::new(journal);
    options.journal = Some(journal.clone());
    let r = crate::study::reproduce::reproduce(experiment, &options)?;
    options.journal = None;
    let mut files = write_reproduction(dir, &r, overwrite)?;
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
    });
    if let Some(samples) = &r.samples {
        manifest["samples"] = serde_json::json!(samples);
    }
    let manifest = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    let mpath = dir.join("manifest.json");
    write_atomic(&mpath, manifest.as_bytes(), true)?;
    files.push(mpath);
    if let Ok(j) = std::sync::Arc::try_unwrap(journal) {
        j.finish()?;
    }
    Ok((r, files))
}

/// Writes an experiment's tables (`<name>.parquet`), plots (`<name>.svg`) and
/// `summary.md` under `dir`.
///
/// # Errors
///
/// [`Error::Io`] naming an unwritable folder or an existing summary without
/// `overwrite`.
pub fn write_reproduction(dir: &Path, r: &Reproduction, overwrite: bool) -> Result<Vec<PathBuf>> {
    let summary = dir.join("summary.md");
    prepare_out(dir, overwrite, &summary)?;
    let mut files = Vec::new();
    for t in &r.tables {
        let p = dir.join(format!("{}.parquet", t.name));
        write_parquet(&p, &mut table_frame(t)?, true)?;
        files.push(p);
    }
    for spec in &r.plots {
        let p = dir.join(format!("{}.svg", spec.name));
        xy_plot(&p, spec)?;
        files.push(p);
    }
    let text = format!(
        "# {}\n\n{}\nWall time: {:.2} s.\n",
        r.experiment.name(),
        r.summary,
        r.wall_s
    );
    write_atomic(&summary, text.as_bytes(), true)?;
    files.push(summary);
    Ok(files)
}
