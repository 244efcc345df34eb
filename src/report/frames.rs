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

/// Writes `df` as Parquet to `path` atomically.
///
/// # Errors
///
/// [`Error::Io`] naming the path.
pub fn write_parquet(path: &Path, df: &mut DataFrame, overwrite: bool) -> Result<()> {
    write_atomic(path, &parquet_bytes(path, df)?, overwrite)
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
