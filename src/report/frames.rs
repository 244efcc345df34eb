//! Row structs and tables as Polars DataFrames, written as Parquet (atomically). The
//! only file that knows Polars.

use polars::prelude::*;
use std::io::Cursor;
use std::path::Path;

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::grid::RawRow;
use crate::study::grid::{BiasVarianceRow, BoundRow};
use crate::study::table::{Table, Values};

fn polars_err(what: &str, e: PolarsError) -> Error {
    Error::Table {
        what: what.to_string(),
        source: Box::new(e),
    }
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
    table_frame(&Table::of_rows("raw", rows))
}

/// The bias–variance table as a DataFrame.
///
/// # Errors
///
/// Polars errors (not expected).
pub fn bias_variance_frame(rows: &[BiasVarianceRow]) -> Result<DataFrame> {
    table_frame(&Table::of_rows("bias_variance", rows))
}

/// The bound table as a DataFrame.
///
/// # Errors
///
/// Polars errors (not expected).
pub fn bounds_frame(rows: &[BoundRow]) -> Result<DataFrame> {
    table_frame(&Table::of_rows("bounds", rows))
}

/// Writes `df` as Parquet to `path` atomically; returns the SHA-256 of the bytes
/// written, for the report's manifest (`tables_sha256`: the only Parquet read back is
/// what this crate wrote, [`read_table`]).
///
/// # Errors
///
/// [`Error::Io`] naming the path.
pub fn write_parquet(path: &Path, df: &mut DataFrame, overwrite: bool) -> Result<String> {
    let bytes = parquet_bytes(path, df)?;
    write_atomic(path, &bytes, overwrite)?;
    Ok(crate::grid::sha256_hex(&bytes))
}

/// A frame as Parquet bytes (`path` names the destination in errors).
pub(super) fn parquet_bytes(path: &Path, df: &mut DataFrame) -> Result<Vec<u8>> {
    let mut buf = Cursor::new(Vec::new());
    ParquetWriter::new(&mut buf)
        .finish(df)
        .map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
    Ok(buf.into_inner())
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
            Values::OptU64(x) => col(name, x.clone()),
            Values::Str(x) => col(name, x.clone()),
            Values::OptStr(x) => col(name, x.clone()),
            Values::Bool(x) => col(name, x.clone()),
        })
        .collect();
    DataFrame::new(t.height(), cols).map_err(|e| polars_err(&t.name, e))
}

/// Memory held per byte of a Parquet file once read into a [`Table`] (decompressed,
/// columns, then the table's own copy).
const PARQUET_HELD_PER_BYTE: f64 = 64.0;

/// A Parquet file of a report read back as a [`Table`] named by the file's stem, for
/// drawing its figures again (`mi-est page`), only if its bytes are those this crate
/// wrote: their SHA-256 must be `sha256`, as the report's manifest recorded it. Polars'
/// Parquet decoder sizes allocations from the file's headers, so a foreign or corrupt
/// file is refused by its hash before it is parsed. Each column keeps its type; a
/// real, count or text column with a missing entry reads as its optional kind.
///
/// # Errors
///
/// [`Error::Io`] or [`Error::ResourceLimit`] naming the file; [`Error::BadFile`] for
/// bytes other than those recorded, or a column of a type no report writes.
pub fn read_table(path: &Path, sha256: &str, limits: &crate::resources::Limits) -> Result<Table> {
    let bytes = crate::resources::read_within_limits(path, PARQUET_HELD_PER_BYTE, limits)?;
    let bad = |reason: String| Error::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    if crate::grid::sha256_hex(&bytes) != sha256 {
        return Err(bad(format!(
            "SHA-256 does not match `tables_sha256` = {sha256} in the report's manifest (changed since it was written, or not written by mi-est); its tables are not read"
        )));
    }
    let df = ParquetReader::new(Cursor::new(bytes))
        .finish()
        .map_err(|e| bad(format!("not a Parquet table: {e}")))?;
    let name = path
        .file_stem()
        .map_or(String::new(), |s| s.to_string_lossy().into_owned());
    let mut table = Table::new(&name);
    for c in df.columns() {
        let s = c.as_materialized_series();
        let column = s.name().to_string();
        let nulls = s.null_count() > 0;
        let wrong = |e: PolarsError| bad(format!("column `{column}`: {e}"));
        let values = match s.dtype() {
            DataType::Float64 => {
                let v: Vec<Option<f64>> = {
                    let ca = s.f64().map_err(wrong)?;
                    (0..ca.len()).map(|i| ca.get(i)).collect()
                };
                if nulls {
                    Values::OptF64(v)
                } else {
                    Values::F64(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
                }
            }
            DataType::UInt64 => {
                let v: Vec<Option<u64>> = {
                    let ca = s.u64().map_err(wrong)?;
                    (0..ca.len()).map(|i| ca.get(i)).collect()
                };
                if nulls {
                    Values::OptU64(v)
                } else {
                    Values::U64(v.into_iter().map(|x| x.unwrap_or(0)).collect())
                }
            }
            DataType::String => {
                let ca = s.str().map_err(wrong)?;
                let v: Vec<Option<String>> = (0..ca.len())
                    .map(|i| ca.get(i).map(str::to_string))
                    .collect();
                if nulls {
                    Values::OptStr(v)
                } else {
                    Values::Str(v.into_iter().map(Option::unwrap_or_default).collect())
                }
            }
            DataType::Boolean => {
                let ca = s.bool().map_err(wrong)?;
                Values::Bool((0..ca.len()).map(|i| ca.get(i).unwrap_or(false)).collect())
            }
            other => {
                return Err(bad(format!(
                    "column `{column}` is of type {other}, which no report writes"
                )));
            }
        };
        table = table.with(&column, values);
    }
    Ok(table)
}
