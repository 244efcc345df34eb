//! A plain column table that studies return and the report module writes as Parquet.

use crate::error::{Error, Result};

/// One column's values.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Reals.
    F64(Vec<f64>),
    /// Reals with missing entries.
    OptF64(Vec<Option<f64>>),
    /// Counts.
    U64(Vec<u64>),
    /// Counts with missing entries (K of an exact row, say).
    OptU64(Vec<Option<u64>>),
    /// Text.
    Str(Vec<String>),
    /// Text with missing entries.
    OptStr(Vec<Option<String>>),
    /// Flags.
    Bool(Vec<bool>),
}

pub use crate::row::{Cell, Row};

/// A named table of equally long columns.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Table {
    /// File stem of the table.
    pub name: String,
    /// `(column name, values)`.
    pub columns: Vec<(String, Values)>,
}

impl Table {
    /// The table of `rows`, its columns (names and types) from [`Row::cells`] of a
    /// default row, so that no rows still give every column.
    pub fn of_rows<R: Row + Default>(name: &str, rows: &[R]) -> Self {
        let cells: Vec<Vec<(&'static str, Cell)>> = rows.iter().map(Row::cells).collect();
        let columns = R::default()
            .cells()
            .into_iter()
            .enumerate()
            .map(|(c, (column, kind))| {
                let column_of = cells.iter().map(|r| r[c].1.clone());
                macro_rules! gather {
                    ($variant:ident) => {
                        Values::$variant(
                            column_of
                                .map(|v| match v {
                                    Cell::$variant(x) => x,
                                    _ => unreachable!("column {column} has one type"),
                                })
                                .collect(),
                        )
                    };
                }
                let values = match kind {
                    Cell::F64(_) => gather!(F64),
                    Cell::OptF64(_) => gather!(OptF64),
                    Cell::U64(_) => gather!(U64),
                    Cell::OptU64(_) => gather!(OptU64),
                    Cell::Str(_) => gather!(Str),
                    Cell::OptStr(_) => gather!(OptStr),
                    Cell::Bool(_) => gather!(Bool),
                };
                (column.to_string(), values)
            })
            .collect();
        Table {
            name: name.to_string(),
            columns,
        }
    }

    /// An empty table called `name`.
    pub fn new(name: &str) -> Self {
        Table {
            name: name.to_string(),
            columns: Vec::new(),
        }
    }

    /// Adds a column (builder style).
    pub fn with(mut self, name: &str, values: Values) -> Self {
        self.columns.push((name.to_string(), values));
        self
    }

    /// Number of rows (0 without columns).
    pub fn height(&self) -> usize {
        self.columns.first().map_or(0, |(_, v)| match v {
            Values::F64(x) => x.len(),
            Values::OptF64(x) => x.len(),
            Values::U64(x) => x.len(),
            Values::OptU64(x) => x.len(),
            Values::Str(x) => x.len(),
            Values::OptStr(x) => x.len(),
            Values::Bool(x) => x.len(),
        })
    }

    /// The column called `name`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the table and the missing column.
    pub fn column(&self, name: &str) -> Result<&Values> {
        self.columns
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                Error::invalid(
                    "table",
                    &self.name,
                    format!("has no column `{name}` (a report of another version?)"),
                )
            })
    }

    /// A numeric column as reals: counts converted, a missing entry as NaN.
    ///
    /// # Errors
    ///
    /// A missing column, or one of text or flags, named.
    pub fn reals(&self, name: &str) -> Result<Vec<f64>> {
        Ok(match self.column(name)? {
            Values::F64(x) => x.clone(),
            Values::OptF64(x) => x.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
            Values::U64(x) => x.iter().map(|&v| v as f64).collect(),
            Values::OptU64(x) => x.iter().map(|v| v.map_or(f64::NAN, |v| v as f64)).collect(),
            _ => {
                return Err(Error::invalid(
                    "table",
                    &self.name,
                    format!("column `{name}` is not numeric"),
                ));
            }
        })
    }

    /// A text column, a missing entry as the empty string.
    ///
    /// # Errors
    ///
    /// A missing column, or one that is not text, named.
    pub fn texts(&self, name: &str) -> Result<Vec<String>> {
        Ok(match self.column(name)? {
            Values::Str(x) => x.clone(),
            Values::OptStr(x) => x.iter().map(|v| v.clone().unwrap_or_default()).collect(),
            _ => {
                return Err(Error::invalid(
                    "table",
                    &self.name,
                    format!("column `{name}` is not text"),
                ));
            }
        })
    }
}

/// The table called `name` among `tables`.
///
/// # Errors
///
/// [`Error::InvalidParameter`] naming the missing table.
pub fn find<'a>(tables: &'a [Table], name: &str) -> Result<&'a Table> {
    tables.iter().find(|t| t.name == name).ok_or_else(|| {
        Error::invalid(
            "tables",
            name,
            "no table of that name in the report (a report of another version?)",
        )
    })
}
