//! The columns of the `run` tables, listed once per row struct ([`crate::study::table::Row`]):
//! what their Parquet files and pages are built from.

use super::{BiasVarianceRow, BoundRow};

// The raw rows' columns are listed beside `RawRow` in the lean grid.

crate::row::row!(BiasVarianceRow {
    posterior_id: Str,
    estimator: Str,
    k: OptU64,
    n_repeats: U64,
    n_samples: U64,
    mean_nats: F64,
    mean_raw_nats: F64,
    n_cut: U64,
    reference_nats: OptF64,
    reference_kind: OptStr,
    bias_nats: OptF64,
    variance_nats2: OptF64,
    rmse_nats: OptF64,
    mean_std_err_nats: OptF64,
    mean_wall_s: F64,
    ln_cap_nats: F64,
    saturated: Bool,
});

crate::row::row!(BoundRow {
    posterior_id: Str,
    data: OptStr,
    n_data: OptU64,
    estimator: Str,
    k: OptU64,
    elbo_per_point: OptF64,
    elbo_per_point_std_err: OptF64,
    kl_nats: F64,
    mi_nats: F64,
    mi_raw_nats: F64,
    n_cut: U64,
    cut_at_kl: Bool,
    prior_scale: F64,
    mi_std_err_nats: OptF64,
    elbo_sym_per_point: OptF64,
    elbo_sym_per_point_std_err: OptF64,
    kl_sym_nats: F64,
    ln_group_order_nats: F64,
});
