//! `mi-est run` and `merge`: the grid (or one shard of it) into reports, shards as JSON
//! lines that `merge` combines into exactly the reports an unsharded run writes.

use crate::io::ReadOptions;
use crate::study::grid::{LoadedSpec, load_spec};
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::study::grid::{
    BiasVarianceRow, BoundRow, GridConfig, RawRow, bias_variance, bounds, grid_items,
    load_posteriors, run_grid,
};

use super::frames::{bias_variance_frame, bounds_frame, raw_frame, write_parquet};
use super::{bad, git_revision, prepare_out, read_json, write_plots};

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
    posteriors: &[crate::study::grid::LoadedPosterior],
    spec: Option<&LoadedSpec>,
    git: Option<String>,
) -> String {
    let mut m = settings(config, spec);
    m.extend(object(serde_json::json!({
        "tool": "mi-est",
        "version": env!("CARGO_PKG_VERSION"),
        "git_revision": git,
        "command_line": options.command_line,
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
    let spec = config.spec.as_deref().map(load_spec).transpose()?;
    let read = ReadOptions {
        spec: spec.as_ref().map(|s| &s.spec),
        layers: config.layers.as_deref(),
        prior_scale: config.prior_scale,
    };
    let posteriors = load_posteriors(&config.posteriors, read)?;
    // The ELBO's data are checked before any estimate (they are used after them).
    crate::study::grid::check_data(&posteriors, options.data.as_deref(), options.elbo_samples)?;
    let sharded = config.shard.1 > 1;
    let first = if sharded {
        shard_file(&options.out, config.shard)
    } else {
        options.out.join("raw.parquet")
    };
    // Refuse what would not fit before anything is written.
    let shard_items = crate::study::grid::shard_items(&config);
    crate::study::grid::grid_cost(&config, &posteriors, &shard_items)?;
    // One writer at a time in the folder.
    let part = sharded.then(|| format!("shard-{}-of-{}", config.shard.0, config.shard.1));
    let _lock = crate::atomic::FolderLock::acquire(
        &options.out,
        part.as_deref(),
        &options.command_line.join(" "),
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
    // While the journal of this computation is there, the reports beside it are an
    // unfinished set of this very run (killed while writing them, say): this run may
    // replace them.
    let overwrite =
        options.overwrite || crate::journal::Journal::is_of(&journal_path, &fingerprint);
    prepare_out(&options.out, overwrite, &first)?;
    let journal = crate::journal::Journal::open(&journal_path, &fingerprint, options.overwrite)?;
    if journal.n_done() > 0 {
        observer.resuming(journal.n_done(), &journal_path);
    }
    // The revision that computes, taken before the (possibly hours-long) work.
    let git = git_revision();
    let rows = run_grid(&config, &posteriors, observer, Some(&journal))?;
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
        overwrite,
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
    files.push(super::write_index(
        dir,
        "mi-est run",
        "Estimates of I(g; ω) per posterior, estimator and K (docs/reports.md explains every column).",
        &page_tables(&bv, &bd),
    )?);
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
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
        ));
    }
    let _lock = crate::atomic::FolderLock::acquire(dir, None, "mi-est merge")?;
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
    let manifest_path = |p: &Path| -> PathBuf {
        let name = p
            .file_name()
            .expect("file")
            .to_string_lossy()
            .replace("raw-", "manifest-")
            .replace(".jsonl", ".json");
        dir.join(name)
    };
    let manifest_of = |p: &Path| -> Result<serde_json::Value> { read_json(&manifest_path(p)) };
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
        // A shard holds a few hundred bytes per row, and rows are held in memory anyway.
        let limit = (crate::resources::Limits::current().max_bytes / 4.0) as u64;
        let bytes = crate::atomic::read_bounded(p, limit)?;
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
    // As in `run`: a journal names the merge until its reports are all written, so that
    // a merge killed while writing them can be rerun.
    let journal_path = dir.join(".journal-merge.jsonl");
    let fingerprint = crate::journal::fingerprint(&serde_json::json!(
        shard_files
            .iter()
            .map(|p| manifest_of(p).map(|m| m["raw_sha256"].clone()))
            .collect::<Result<Vec<_>>>()?
    ));
    let overwrite_set = overwrite || crate::journal::Journal::is_of(&journal_path, &fingerprint);
    // Every row is checked against the grid the manifests describe: a shard that hashes
    // right but holds rows of another grid (or values no estimator returns) is refused.
    let grid = grid_of_manifest(&first, &paths, layers.clone())
        .map_err(|e| bad(&manifest_path(&shard_files[0]), e.to_string()))?;
    crate::study::grid::check_rows(&grid, &posteriors, &rows).map_err(|e| {
        bad(
            dir,
            format!("the shards do not hold the grid of their manifests: {e}"),
        )
    })?;
    let out_raw = dir.join("raw.parquet");
    prepare_out(dir, overwrite_set, &out_raw)?;
    let journal = crate::journal::Journal::open(&journal_path, &fingerprint, overwrite)?;
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
    )?;
    journal.finish()?;
    Ok(out)
}

/// The whole grid (one shard) that a shard manifest describes.
fn grid_of_manifest(
    m: &serde_json::Value,
    posteriors: &[PathBuf],
    layers: Option<Vec<String>>,
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
                .and_then(crate::study::grid::EstimatorKind::parse)
        })
        .collect::<Result<Vec<_>>>()?;
    let ks = m["k"]
        .as_array()
        .ok_or_else(|| missing("k"))?
        .iter()
        .map(|k| k.as_u64().map(|k| k as usize).ok_or_else(|| missing("k")))
        .collect::<Result<Vec<_>>>()?;
    GridConfig {
        posteriors: posteriors.to_vec(),
        spec: m["spec"]["path"].as_str().map(PathBuf::from),
        layers,
        prior_scale: m["prior_scale"].as_f64(),
        estimators,
        ks,
        samples: number("samples")? as usize,
        repeats: number("repeats")? as usize,
        seed: number("seed")?,
        shard: (0, 1),
    }
    .check()
}

/// The bias–variance and bound tables for the report's page.
fn page_tables(bv: &[BiasVarianceRow], bd: &[BoundRow]) -> Vec<super::PageTable> {
    let f = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{x:.4}"));
    let k = |k: Option<u64>| k.map_or("–".to_string(), |k| k.to_string());
    vec![
        super::PageTable {
            name: "bias_variance".into(),
            header: [
                "posterior",
                "estimator",
                "K",
                "R",
                "mean",
                "bias",
                "sd",
                "RMSE",
                "cap",
                "saturated",
            ]
            .map(String::from)
            .to_vec(),
            rows: bv
                .iter()
                .map(|r| {
                    vec![
                        r.posterior_id.clone(),
                        r.estimator.clone(),
                        k(r.k),
                        r.n_repeats.to_string(),
                        if r.n_cut > 0 {
                            format!("{:.4} (cut)", r.mean_nats)
                        } else {
                            format!("{:.4}", r.mean_nats)
                        },
                        f(r.bias_nats),
                        f(r.variance_nats2.map(f64::sqrt)),
                        f(r.rmse_nats),
                        format!("{:.4}", r.ln_cap_nats),
                        if r.saturated { "yes" } else { "" }.into(),
                    ]
                })
                .collect(),
        },
        super::PageTable {
            name: "bounds".into(),
            header: [
                "posterior",
                "estimator",
                "K",
                "prior",
                "I",
                "L/N",
                "(L+I)/N",
                "KL",
                "KL_sym",
            ]
            .map(String::from)
            .to_vec(),
            rows: bd
                .iter()
                .map(|r| {
                    vec![
                        r.posterior_id.clone(),
                        r.estimator.clone(),
                        k(r.k),
                        format!("N(0, {}²)", r.prior_scale),
                        if r.n_cut > 0 || r.cut_at_kl {
                            format!("{:.4} (cut)", r.mi_nats)
                        } else {
                            format!("{:.4}", r.mi_nats)
                        },
                        r.elbo_per_point.map_or("–".into(), |v| format!("{v:.6}")),
                        r.elbo_sym_per_point
                            .map_or("–".into(), |v| format!("{v:.6}")),
                        format!("{:.3}", r.kl_nats),
                        format!("{:.3}", r.kl_sym_nats),
                    ]
                })
                .collect(),
        },
    ]
}

/// The bias–variance and bound tables as aligned text for the terminal: the page's
/// tables ([`page_tables`]), the posterior and estimator columns left-aligned in 28
/// characters and the numbers right-aligned, with `-` for a missing value.
pub fn format_summary(bv: &[BiasVarianceRow], bd: &[BoundRow]) -> String {
    // Column widths after the two 28-character name columns, per table.
    const WIDTHS: [&[usize]; 2] = [&[6, 3, 16, 10, 10, 10, 8, 4], &[6, 10, 16, 12, 12, 12, 12]];
    let mut s = String::new();
    for (t, (table, widths)) in page_tables(bv, bd).iter().zip(WIDTHS).enumerate() {
        if t > 0 {
            s.push('\n');
        }
        // The terminal header says "rmse" and "sat" where the page says "RMSE" and
        // "saturated".
        let header: Vec<String> = table
            .header
            .iter()
            .map(|h| match h.as_str() {
                "RMSE" => "rmse".into(),
                "saturated" => "sat".into(),
                _ => h.clone(),
            })
            .collect();
        for row in std::iter::once(&header).chain(&table.rows) {
            let mut line = format!("{:<28} {:<28}", row[0], row[1]);
            for (cell, w) in row[2..].iter().zip(widths) {
                let cell = if cell == "–" { "-" } else { cell.as_str() };
                line.push_str(&format!(" {cell:>w$}"));
            }
            s.push_str(&line);
            s.push('\n');
        }
    }
    s
}
