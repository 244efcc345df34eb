//! A `run` report's files from its rows and tables: what the application computed,
//! written (`mi-est run` and `merge` end here).

use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::Result;
use crate::grid::RawRow;
use crate::study::grid::{BiasVarianceRow, BoundRow};

use super::draw_figures;
use super::frames::{bias_variance_frame, bounds_frame, raw_frame, write_parquet};
use super::summary::page_tables;

/// Writes a grid's reports under `dir`: `raw.parquet`, `bias_variance.parquet`,
/// `bounds.parquet`, `manifest.json` (`manifest` with the tables' SHA-256 added), the
/// figures and the page. Returns the files written.
///
/// # Errors
///
/// [`Error::Io`](crate::Error::Io) naming a file that cannot be written; an existing
/// table without `overwrite`.
pub fn write_run_report(
    dir: &Path,
    rows: &[RawRow],
    bv: &[BiasVarianceRow],
    bd: &[BoundRow],
    manifest: &str,
    overwrite: bool,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut hashes = serde_json::Map::new();
    for (name, mut df) in [
        ("raw.parquet", raw_frame(rows)?),
        ("bias_variance.parquet", bias_variance_frame(bv)?),
        ("bounds.parquet", bounds_frame(bd)?),
    ] {
        let p = dir.join(name);
        hashes.insert(name.into(), write_parquet(&p, &mut df, overwrite)?.into());
        files.push(p);
    }
    // The tables' hashes: `mi-est page` reads back only the bytes written here.
    let mut m: serde_json::Value = serde_json::from_str(manifest).expect("manifest JSON");
    m["tables_sha256"] = hashes.into();
    let manifest = serde_json::to_string_pretty(&m).expect("manifest serializes");
    let mpath = dir.join("manifest.json");
    write_atomic(&mpath, manifest.as_bytes(), true)?;
    files.push(mpath);
    let tables = [
        crate::study::table::Table::of_rows("bias_variance", bv),
        crate::study::table::Table::of_rows("bounds", bd),
    ];
    let figures = crate::study::grid::run_figures(&tables)?;
    files.extend(draw_figures(dir, &figures)?);
    files.push(super::write_index(
        dir,
        "mi-est run",
        super::RUN_SUMMARY,
        &super::page_figures(&figures),
        &page_tables(bv, bd),
    )?);
    Ok(files)
}
