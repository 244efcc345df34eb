//! A plain column table that studies return and the report module writes as Parquet.

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

/// One cell of a [`Row`], typed as its column is.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// A real.
    F64(f64),
    /// A real that some rows lack.
    OptF64(Option<f64>),
    /// A count.
    U64(u64),
    /// A count that some rows lack.
    OptU64(Option<u64>),
    /// Text.
    Str(String),
    /// Text that some rows lack.
    OptStr(Option<String>),
    /// A flag.
    Bool(bool),
}

/// A row of a table: its cells with their column names, in column order, the one place
/// a table's columns are listed (the Parquet file, the page and the Python package read
/// them from here).
pub trait Row {
    /// `(column name, cell)` in column order.
    fn cells(&self) -> Vec<(&'static str, Cell)>;
}

/// Implements [`Row`] for a struct from its fields, listed once in column order with the
/// [`Cell`] variant of each: `row!(BoundRow { posterior_id: Str, k: OptU64, … })`.
macro_rules! row {
    ($t:ty { $($field:ident: $kind:ident),* $(,)? }) => {
        impl $crate::study::table::Row for $t {
            fn cells(&self) -> Vec<(&'static str, $crate::study::table::Cell)> {
                vec![$((stringify!($field), $crate::study::table::Cell::$kind(self.$field.clone()))),*]
            }
        }
    };
}
pub(crate) use row;

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
}
