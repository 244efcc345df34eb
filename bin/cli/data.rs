//! `mi-est data`: the data cache, fetched and verified; and the MNIST folder every
//! command reads (`--data mnist`, `$MI_EST_MNIST`, the cache).

use anyhow::{Result, bail};
use std::path::PathBuf;

use mi_est::data::DataSpec;

use super::args::{DataArgs, DataSet};
use super::observer::DownloadObserver;

/// A data spec with `mnist` (the data cache) replaced by `$MI_EST_MNIST` when that is
/// set, and the data cache fetched when it is used and incomplete; a named folder must
/// exist.
pub(crate) fn resolve_mnist(spec: DataSpec, command: &str) -> Result<DataSpec> {
    let DataSpec::Mnist { dir, limit } = spec else {
        return Ok(spec);
    };
    let cache = mi_est::data::fetch::mnist_dir()?;
    if dir == cache {
        if let Some(env) = std::env::var_os("MI_EST_MNIST").filter(|v| !v.is_empty()) {
            let env = PathBuf::from(env);
            if !env.is_dir() {
                bail!(
                    "MI_EST_MNIST = {}: MNIST folder not found (unset it to use the data cache)",
                    env.display()
                );
            }
            return Ok(DataSpec::Mnist { dir: env, limit });
        }
        mnist_cache(command)?;
        return Ok(DataSpec::Mnist { dir, limit });
    }
    if !dir.is_dir() {
        bail!(
            "{}: MNIST folder not found (--data mnist:<folder with the four IDX files>)",
            dir.display()
        );
    }
    Ok(DataSpec::Mnist { dir, limit })
}

/// `mi-est data mnist`: fetches what is missing, verifies everything.
pub(crate) fn data(a: DataArgs) -> Result<()> {
    match a.set {
        DataSet::Mnist => {
            let dir = mnist_cache("data mnist")?;
            println!(
                "mnist: {} files verified in {}",
                mi_est::data::fetch::MNIST_FILES.len(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// The MNIST folder of the data cache, fetched first if it is not complete (saying so).
pub(crate) fn mnist_cache(command: &str) -> Result<PathBuf> {
    use mi_est::data::fetch;
    let dir = fetch::mnist_dir()?;
    if fetch::is_complete(&dir, &fetch::MNIST_FILES) {
        return Ok(dir);
    }
    let url = fetch::mnist_base_url();
    eprintln!(
        "[data] `{command}` needs MNIST: fetching it from {url} into {} (once)",
        dir.display()
    );
    let shown = DownloadObserver::new();
    let fetched = fetch::fetch(&url, &dir, &fetch::MNIST_FILES, &shown);
    shown.finish();
    fetched.map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "`mi-est {command}` could not fetch MNIST from {url} (run `mi-est data mnist` to retry; set MI_EST_MNIST_URL to use a mirror, or pass --data <folder with the four IDX files>)"
        ))
    })?;
    Ok(dir)
}
