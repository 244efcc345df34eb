//! `mi-est page`: a report folder's page, written again from what it holds.

use anyhow::Result;

use super::args::PageArgs;

/// `mi-est page`: each folder's index.html from what it holds.
pub(crate) fn page(a: PageArgs, limits: &mi_est::resources::Limits) -> Result<()> {
    for dir in &a.dirs {
        let p = mi_est::report::folder_page(dir, limits)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}
