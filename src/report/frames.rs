//! Row structs and tables as Polars DataFrames, written as Parquet (atomically). The
//! only file that knows Polars.

use polars::prelude::*;
use std::io::Cursor;
use std::path::Path;

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::grid::RawValue;
use crate::study::grid::{BiasVarianceRow, BoundRow, RawRow};
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
    let values: Vec<_> = rows.iter().map(RawRow::columns).collect();
    // The column types come from a template row, so that no rows still give every column.
    let columns = RawRow::default()
        .columns()
        .iter()
        .enumerate()
        .map(|(c, (name, kind))| {
            let cells = values.iter().map(|v| &v[c].1);
            macro_rules! gather {
                ($variant:ident, $t:ty) => {
                    col(
                        name,
                        cells
                            .map(|v| match v {
                                RawValue::$variant(x) => x.clone(),
                                _ => unreachable!("column {name} has one type"),
                            })
                            .collect::<Vec<$t>>(),
                    )
                };
            }
            match kind {
                RawValue::Str(_) => gather!(Str, String),
                RawValue::U64(_) => gather!(U64, u64),
                RawValue::OptU64(_) => gather!(OptU64, Option<u64>),
                RawValue::F64(_) => gather!(F64, f64),
                RawValue::OptF64(_) => gather!(OptF64, Option<f64>),
            }
        })
        .collect();
    DataFrame::new(rows.len(), columns).map_err(|e| polars_err("raw", e))
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
            col(
                "mean_raw_nats",
                rows.iter().map(|r| r.mean_raw_nats).collect::<Vec<f64>>(),
            ),
            col("n_cut", rows.iter().map(|r| r.n_cut).collect::<Vec<u64>>()),
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
            col(
                "mi_raw_nats",
                rows.iter().map(|r| r.mi_raw_nats).collect::<Vec<f64>>(),
            ),
            col("n_cut", rows.iter().map(|r| r.n_cut).collect::<Vec<u64>>()),
            col(
                "cut_at_kl",
                rows.iter().map(|r| r.cut_at_kl).collect::<Vec<bool>>(),
            ),
            col(
                "prior_scale",
                rows.iter().map(|r| r.prior_scale).collect::<Vec<f64>>(),
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
            Values::Str(x) => col(name, x.clone()),
            Values::Bool(x) => col(name, x.clone()),
        })
        .collect();
    DataFrame::new(t.height(), cols).map_err(|e| polars_err(&t.name, e))
}
