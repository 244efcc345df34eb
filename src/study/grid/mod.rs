//! The `mi-est run` study: the grid itself is the lean [`crate::grid`] (settings, items,
//! seeds, sharding, the estimates); here the summary tables, whose bound table needs the
//! ELBO (docs/reports.md).

mod figures;
mod rows;
mod tables;

pub use figures::run_figures;
pub use tables::{BiasVarianceRow, BoundRow, bias_variance, bound_series, bounds, check_data};
