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
    /// Text.
    Str(Vec<String>),
    /// Flags.
    Bool(Vec<bool>),
}

/// A named table of equally long columns.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Table {
    /// File stem of the table.
    pub name: String,
    /// `(column name, values)`.
    pub columns: Vec<(String, Values)>,
}

impl Table {
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
            Values::Str(x) => x.len(),
            Values::Bool(x) => x.len(),
        })
    }
}
