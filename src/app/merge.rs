//! `mi-est merge`: the shards of a sharded run, checked (hashes, settings, every row
//! against the grid) and combined into the reports an unsharded run writes.

use std::path::{Path, PathBuf};

use super::run::{RunOutput, write_reports};
use crate::error::{Error, Result};
use crate::grid::{GridConfig, RawRow, load_posteriors, load_spec};
use crate::io::ReadOptions;
use crate::report::{bad, read_json};

/// Combines the shard files in `dir` (from runs with the same settings) into the full
/// reports, exactly as an unsharded run would have written them.
///
/// # Errors
///
/// [`Error::BadFile`] for missing, duplicate or foreign shards (checked against the
/// shard manifests), plus the errors of [`run`](super::run).
pub fn merge(dir: &Path, overwrite: bool, limits: &crate::resources::Limits) -> Result<RunOutput> {
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
        ));
    }
    let _lock = crate::atomic::FolderLock::acquire(dir, None, "mi-est merge")?;
    let shard_files = shard_files(dir)?;
    let first = manifest_of(&shard_files[0])?;
    let rows = checked_rows(dir, &shard_files, &first, limits)?;
    let (paths, layers, posteriors) = shard_posteriors(&first, limits)?;
    // As in `run`: a journal names the merge until its reports are all written, so that
    // a merge killed while writing them can be rerun.
    let journal_path = dir.join(".journal-merge.jsonl");
    let fingerprint = crate::journal::fingerprint(&serde_json::json!(
        shard_files
            .iter()
            .map(|p| manifest_of(p).map(|m| m["raw_sha256"].clone()))
            .collect::<Result<Vec<_>>>()?
    ));
    // Every row is checked against the grid the manifests describe: a shard that hashes
    // right but holds rows of another grid (or values no estimator returns) is refused.
    let grid = grid_of_manifest(&first, &paths, layers.clone(), limits)
        .map_err(|e| bad(&manifest_path(&shard_files[0]), e.to_string()))?;
    crate::grid::check_rows(&grid, &posteriors, &rows).map_err(|e| {
        bad(
            dir,
            format!("the shards do not hold the grid of their manifests: {e}"),
        )
    })?;
    let (journal, overwrite_set) = super::begin_report_set(
        dir,
        &dir.join("raw.parquet"),
        &journal_path,
        &fingerprint,
        overwrite,
    )?;
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
    let out = write_reports(
        dir,
        &rows,
        &posteriors,
        data.as_deref(),
        elbo_samples,
        seed,
        &manifest,
        overwrite_set,
        limits,
    )?;
    journal.finish()?;
    Ok(out)
}

/// The shard files of `dir` (`raw-shard-*.jsonl`), sorted.
fn shard_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
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
    Ok(shard_files)
}

/// The manifest written beside a shard file.
fn manifest_path(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .expect("file")
        .to_string_lossy()
        .replace("raw-", "manifest-")
        .replace(".jsonl", ".json");
    p.with_file_name(name)
}

/// The manifest of a shard file, read.
fn manifest_of(p: &Path) -> Result<serde_json::Value> {
    read_json(&manifest_path(p))
}

/// The rows of every shard, in item order, after checking that the shards are one grid:
/// the same settings as the first, each index once and all of them, each file as its
/// manifest hashed it, every item of the grid once.
fn checked_rows(
    dir: &Path,
    shard_files: &[PathBuf],
    first: &serde_json::Value,
    limits: &crate::resources::Limits,
) -> Result<Vec<RawRow>> {
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
    for p in shard_files {
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
        // A shard holds a few hundred bytes per row, and rows are held in memory anyway.
        let limit = (limits.max_bytes / 4.0) as u64;
        let bytes = crate::atomic::read_bounded(p, limit)?;
        let want = m["raw_sha256"].as_str().unwrap_or("(none)");
        if crate::grid::sha256_hex(&bytes) != want {
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
    if let Some(w) = rows.windows(2).find(|w| w[0].item == w[1].item) {
        return Err(bad(
            dir,
            format!("item {} of the grid is in the shards twice", w[0].item),
        ));
    }
    if let Some(missing) =
        (0..total as u64).find(|&i| rows.get(i as usize).is_none_or(|r| r.item != i))
    {
        return Err(bad(
            dir,
            format!("item {missing} of the grid's {total} is in no shard"),
        ));
    }
    if rows.len() != total {
        return Err(bad(
            dir,
            format!(
                "the shards hold {} rows, the grid has {total} items",
                rows.len()
            ),
        ));
    }
    Ok(rows)
}

/// The posteriors the shards ran on, read as they were (spec, layers, prior scale) and
/// checked unchanged against their hashes: their paths, the layer order and the files.
#[allow(clippy::type_complexity)] // the three things the merge goes on with
fn shard_posteriors(
    first: &serde_json::Value,
    limits: &crate::resources::Limits,
) -> Result<(
    Vec<PathBuf>,
    Option<Vec<String>>,
    Vec<crate::grid::LoadedPosterior>,
)> {
    let paths: Vec<PathBuf> = first["posteriors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["path"].as_str().map(PathBuf::from))
                .collect()
        })
        .unwrap_or_default();
    let spec = match first["spec"]["path"].as_str() {
        Some(p) => {
            let s = load_spec(Path::new(p))?;
            if first["spec"]["sha256"].as_str() != Some(s.sha256.as_str()) {
                return Err(bad(
                    &s.path,
                    "the permutation spec changed since the shards ran (sha256 differs)".into(),
                ));
            }
            Some(s)
        }
        None => None,
    };
    let layers: Option<Vec<String>> = first["layers"].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    });
    let read = ReadOptions {
        spec: spec.as_ref().map(|s| &s.spec),
        layers: layers.as_deref(),
        prior_scale: first["prior_scale"].as_f64(),
        limits: *limits,
    };
    let posteriors = load_posteriors(&paths, read)?;
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
    Ok((paths, layers, posteriors))
}

/// The whole grid (one shard) that a shard manifest describes.
pub(super) fn grid_of_manifest(
    m: &serde_json::Value,
    posteriors: &[PathBuf],
    layers: Option<Vec<String>>,
    limits: &crate::resources::Limits,
) -> Result<GridConfig> {
    let missing =
        |k: &str| Error::invalid(format!("manifest `{k}`"), &m[k], "missing or malformed");
    let number = |k: &str| m[k].as_u64().ok_or_else(|| missing(k));
    let estimators = m["estimators"]
        .as_array()
        .ok_or_else(|| missing("estimators"))?
        .iter()
        .map(|e| {
            e.as_str()
                .ok_or_else(|| missing("estimators"))
                .and_then(crate::estimators::EstimatorKind::parse)
        })
        .collect::<Result<Vec<_>>>()?;
    let ks = m["k"]
        .as_array()
        .ok_or_else(|| missing("k"))?
        .iter()
        .map(|k| k.as_u64().map(|k| k as usize).ok_or_else(|| missing("k")))
        .collect::<Result<Vec<_>>>()?;
    let temperatures = match m.get("temperatures") {
        None => crate::grid::DEFAULT_TEMPERATURES.to_vec(),
        Some(t) => t
            .as_array()
            .ok_or_else(|| missing("temperatures"))?
            .iter()
            .map(|t| {
                t.as_u64()
                    .map(|t| t as usize)
                    .ok_or_else(|| missing("temperatures"))
            })
            .collect::<Result<Vec<_>>>()?,
    };
    GridConfig {
        posteriors: posteriors.to_vec(),
        spec: m["spec"]["path"].as_str().map(PathBuf::from),
        layers,
        prior_scale: m["prior_scale"].as_f64(),
        estimators,
        ks,
        temperatures,
        samples: number("samples")? as usize,
        repeats: number("repeats")? as usize,
        seed: number("seed")?,
        shard: (0, 1),
        limits: *limits,
    }
    .check()
}

/// The rows of a shard file written by [`shard_bytes`] (`path` names it in errors).
pub(super) fn shard_rows(bytes: &[u8], path: &Path) -> Result<Vec<RawRow>> {
    let text = std::str::from_utf8(bytes).map_err(|e| bad(path, format!("not UTF-8: {e}")))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<RawRow>(line)
                .map_err(|e| bad(path, format!("line {} is not a raw row: {e}", i + 1)))
        })
        .collect()
}
