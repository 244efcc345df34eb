//! `mi-est merge`: a sharded run's shards, checked and combined into its reports.

use anyhow::Result;

use super::args::MergeArgs;
use super::run::print_report;

pub(crate) fn merge(a: MergeArgs, limits: &mi_est::resources::Limits) -> Result<()> {
    print_report(&mi_est::app::merge(&a.out, a.overwrite, limits)?);
    Ok(())
}
