//! Reports, only written from what they are given (the application, [`crate::app`],
//! computes): tables as Parquet, written atomically (`frames.rs`), figures as SVG
//! (`plots/`), pages (`page.rs`), the terminal tables (`summary.rs`). What is read back is what this crate
//! wrote: shards and recorded S as JSON, and (to draw a report's figures again) its
//! Parquet tables only where their SHA-256 matches the manifest's `tables_sha256`.

mod frames;
mod page;
mod plots;
mod run_report;
mod summary;

use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::study::reproduce::Reproduction;

pub use frames::{
    bias_variance_frame, bounds_frame, raw_frame, read_table, table_frame, write_parquet,
};
pub use page::{PageFigure, PageTable, write_index};
pub use plots::{draw_figures, xy_plot};
pub use run_report::write_run_report;
pub use summary::format_summary;

pub(crate) fn bad(path: &Path, reason: String) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        reason,
    }
}

/// A JSON file this crate wrote (a manifest), errors naming it.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = crate::atomic::read_text(path, crate::atomic::MAX_TEXT_BYTES)?;
    serde_json::from_str(&text).map_err(|e| bad(path, format!("not JSON: {e}")))
}

pub(crate) fn prepare_out(out: &Path, overwrite: bool, first: &Path) -> Result<()> {
    crate::atomic::create_folder(out)?;
    if !overwrite && first.exists() {
        return Err(Error::Io {
            path: first.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a report is already there (set `overwrite` to replace it)",
            ),
        });
    }
    Ok(())
}

/// The page figures of `figures`: their files' stems and captions.
pub(crate) fn page_figures(figures: &[crate::study::experiment::Figure]) -> Vec<PageFigure> {
    figures
        .iter()
        .map(|f| PageFigure {
            stem: f.plot.name.clone(),
            caption: f.caption.clone(),
        })
        .collect()
}

/// The page of a reproduction folder ([`write_index`]): its figures (drawn from its
/// tables, [`crate::study::experiment::Study::figures`]), its summary and its tables.
///
/// # Errors
///
/// Those of [`write_index`] and of the experiment's figures.
pub fn reproduction_page(dir: &Path, r: &Reproduction) -> Result<PathBuf> {
    let tables: Vec<PageTable> = r.tables.iter().map(PageTable::of).collect();
    let figures = r.experiment.study().figures(&r.tables)?;
    let summary = format!("{}\n\nWall time: {:.2} s.\n", r.summary, r.wall_s);
    write_index(
        dir,
        &format!("mi-est reproduce {}", r.experiment.name()),
        &summary,
        &page_figures(&figures),
        &tables,
    )
}

/// The tables of a report folder that its manifest's `tables_sha256` lists, each read
/// back ([`read_table`]) if its bytes are those recorded, sorted by name.
fn folder_tables(
    dir: &Path,
    hashes: &serde_json::Map<String, serde_json::Value>,
    limits: &crate::resources::Limits,
) -> Result<Vec<crate::study::table::Table>> {
    let mut names: Vec<(&String, &str)> = hashes
        .iter()
        .filter_map(|(name, sha)| Some((name, sha.as_str()?)))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|(name, sha)| {
            if name.contains('/') || name.contains('\\') || !name.ends_with(".parquet") {
                return Err(bad(
                    &dir.join("manifest.json"),
                    format!("`tables_sha256` names `{name}`, not a table file of the folder"),
                ));
            }
            read_table(&dir.join(name), sha, limits)
        })
        .collect()
}

/// The page of an existing report folder, from what is on disk (`mi-est page`): for a
/// report of `reproduce` (its manifest names the experiment) or of `run` (it has
/// `bias_variance.parquet` and `bounds.parquet`), the figures are drawn again from its
/// Parquet tables, so that a page follows the current figures without computing
/// anything; its `summary.md`, its tables and its manifest. The Parquet files and the
/// summary are only read. A folder of neither kind shows its plots as they are.
///
/// # Errors
///
/// Those of [`write_index`] and [`read_table`]; [`Error::Io`] for an unreadable summary;
/// a table or column the figures need that the folder lacks, named.
pub fn folder_page(dir: &Path, limits: &crate::resources::Limits) -> Result<PathBuf> {
    let _lock = crate::atomic::FolderLock::acquire(dir, None, "mi-est page")?;
    let summary_path = dir.join("summary.md");
    let (title, summary) = if summary_path.is_file() {
        let text = crate::atomic::read_text(&summary_path, crate::atomic::MAX_TEXT_BYTES)?;
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        match first.strip_prefix("# ") {
            Some(t) => (
                format!("mi-est reproduce {t}"),
                lines.collect::<Vec<_>>().join("\n"),
            ),
            None => (format!("mi-est report {}", dir.display()), text.clone()),
        }
    } else {
        (format!("mi-est report {}", dir.display()), String::new())
    };
    let manifest_path = dir.join("manifest.json");
    let manifest = if manifest_path.is_file() {
        Some(read_json(&manifest_path)?)
    } else {
        None
    };
    let experiment = manifest
        .as_ref()
        .and_then(|m| m.get("experiment"))
        .and_then(|e| e.as_str())
        .map(crate::study::reproduce::Experiment::parse)
        .transpose()?;
    let hashes = manifest
        .as_ref()
        .and_then(|m| m.get("tables_sha256"))
        .and_then(|h| h.as_object());
    let is_run =
        dir.join("bias_variance.parquet").is_file() && dir.join("bounds.parquet").is_file();
    // The figures are drawn again only from tables this crate wrote (their hashes are in
    // the manifest); a folder without them keeps the plots it has.
    let (figures, tables) = if let Some(hashes) = hashes.filter(|_| experiment.is_some() || is_run)
    {
        let tables = folder_tables(dir, hashes, limits)?;
        let figures = match experiment {
            Some(e) => e.study().figures(&tables)?,
            None => crate::study::grid::run_figures(&tables)?,
        };
        draw_figures(dir, &figures)?;
        (
            page_figures(&figures),
            tables.iter().map(PageTable::of).collect(),
        )
    } else {
        let mut stems: Vec<String> = page::files_with(dir, "svg")?
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        stems.sort();
        let figures = stems
            .into_iter()
            .map(|stem| PageFigure {
                caption: format!(
                    "The plot {stem}.svg as the folder holds it (drawn when the report was written; its manifest records no table hashes, so its tables are not read back)."
                ),
                stem,
            })
            .collect();
        (figures, Vec::new())
    };
    let title = if is_run && experiment.is_none() && !summary_path.is_file() {
        "mi-est run".to_string()
    } else {
        title
    };
    let summary = if is_run && summary.is_empty() {
        RUN_SUMMARY.to_string()
    } else {
        summary
    };
    write_index(dir, &title, &summary, &figures, &tables)
}

/// The text at the top of a `run` report's page.
pub(crate) const RUN_SUMMARY: &str =
    "Estimates of I(g; ω) per posterior, estimator and K (docs/reports.md explains every column).";

/// Writes an experiment's tables (`<name>.parquet`), figures (`<name>.svg`, drawn from
/// the tables) and `summary.md` under `dir`.
///
/// # Errors
///
/// [`Error::Io`] naming an unwritable folder or an existing summary without
/// `overwrite`; those of the experiment's figures.
pub fn write_reproduction(dir: &Path, r: &Reproduction, overwrite: bool) -> Result<Vec<PathBuf>> {
    Ok(write_reproduction_hashed(dir, r, overwrite)?.0)
}

/// [`write_reproduction`], also returning each table file's SHA-256 by file name (the
/// manifest's `tables_sha256`).
pub(crate) fn write_reproduction_hashed(
    dir: &Path,
    r: &Reproduction,
    overwrite: bool,
) -> Result<(Vec<PathBuf>, serde_json::Map<String, serde_json::Value>)> {
    let summary = dir.join("summary.md");
    prepare_out(dir, overwrite, &summary)?;
    let mut files = Vec::new();
    let mut hashes = serde_json::Map::new();
    for t in &r.tables {
        let name = format!("{}.parquet", t.name);
        let p = dir.join(&name);
        hashes.insert(name, write_parquet(&p, &mut table_frame(t)?, true)?.into());
        files.push(p);
    }
    files.extend(draw_figures(
        dir,
        &r.experiment.study().figures(&r.tables)?,
    )?);
    let text = format!(
        "# {}\n\n{}\nWall time: {:.2} s.\n",
        r.experiment.name(),
        r.summary,
        r.wall_s
    );
    write_atomic(&summary, text.as_bytes(), true)?;
    files.push(summary);
    Ok((files, hashes))
}
