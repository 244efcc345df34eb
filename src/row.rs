//! A row of a table as data: its cells, named and typed, in column order ([`Row`]),
//! the one place a table's columns are listed. The lean library has it (the grid's raw
//! rows are rows); the tables and their Parquet files are built from it.

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
        impl $crate::row::Row for $t {
            fn cells(&self) -> Vec<(&'static str, $crate::row::Cell)> {
                vec![$((stringify!($field), $crate::row::Cell::$kind(self.$field.clone()))),*]
            }
        }
    };
}
pub(crate) use row;
