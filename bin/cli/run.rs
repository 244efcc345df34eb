//! `mi-est run`: the estimator grid over posterior files, into its reports.

use anyhow::{Result, bail};

use mi_est::data::DataSpec;

use super::args::RunArgs;
use super::data::resolve_mnist;
use super::observer::CliObserver;
use super::values::*;

pub(crate) fn run(a: RunArgs, limits: &mi_est::resources::Limits) -> Result<()> {
    // `--data mnist` is $MI_EST_MNIST when set, else the data cache (fetched now).
    let data = match a.data.as_deref() {
        Some(d) => {
            let spec: DataSpec = d
                .parse()
                .map_err(|e| anyhow::anyhow!("--data `{d}`: {e}"))?;
            Some(resolve_mnist(spec, "run")?.to_string())
        }
        None => None,
    };
    let posteriors = if a.posterior.is_empty() {
        // The project's bundled default, found from the repository folder.
        let bundled = std::path::Path::new("data")
            .join("posteriors")
            .join("mnist-small-784-10-10-mfvi.safetensors");
        if !bundled.is_file() {
            return Err(Usage(format!(
                "no --posterior given, and the bundled default posterior {} is not here (it is found from the repository folder): pass --posterior <file>",
                bundled.display()
            ))
            .into());
        }
        vec![bundled]
    } else {
        a.posterior.clone()
    };
    let estimators = match &a.estimators {
        Some(names) => mi_est::estimators::EstimatorKind::parse_list(names)
            .map_err(|e| flagged(e, RUN_FLAGS))?,
        None => {
            // The default: exact where every posterior has an exact estimator, else the
            // sandwich, which applies at any depth.
            let spec = a.read.load_spec()?;
            let read = a.read.options(spec.as_ref(), limits);
            let loaded = mi_est::grid::load_posteriors(&posteriors, read)?;
            let (kinds, note) = mi_est::grid::default_estimators(&loaded);
            if let Some(note) = note {
                eprintln!("[run] {note}");
            }
            kinds
        }
    };
    let ks = a.k.clone();
    let shard = shard_from_env(a.shard_index, a.num_shards)?;
    let config = mi_est::grid::GridConfig {
        posteriors,
        spec: a.read.spec.clone(),
        layers: a.read.layers.clone().map(|l| l.0),
        prior_scale: a.read.prior_scale,
        estimators,
        ks,
        temperatures: a.temperatures.clone(),
        samples: a.samples,
        repeats: a.repeats,
        seed: a.seed,
        shard,
        limits: *limits,
    };
    let options = mi_est::app::RunOptions {
        out: a.out.clone(),
        overwrite: a.overwrite,
        data,
        elbo_samples: a.elbo_samples,
        provenance: super::provenance(),
    };
    let config = config.check().map_err(|e| flagged(e, RUN_FLAGS))?;
    let out = mi_est::app::run(&config, &options, &CliObserver::new("[run]", "estimates"))?;
    if shard.1 > 1 {
        println!(
            "shard {} of {} written; combine with `mi-est merge --out {}`",
            shard.0,
            shard.1,
            a.out.display()
        );
        print_files(&out);
        return Ok(());
    }
    print_report(&out);
    Ok(())
}

pub(crate) fn print_report(out: &mi_est::app::RunOutput) {
    print!(
        "{}",
        mi_est::report::format_summary(&out.bias_variance, &out.bounds)
    );
    print_files(out);
}

pub(crate) fn print_files(out: &mi_est::app::RunOutput) {
    for f in &out.files {
        println!("wrote {}", f.display());
    }
}

/// Reads the shard settings from the arguments, falling back to
/// `SLURM_ARRAY_TASK_ID`/`SLURM_ARRAY_TASK_COUNT` or `JOB_COMPLETION_INDEX` (with the
/// count from `--num-shards`).
///
/// The environment is the command's to read: the library takes the shard as a value
/// ([`mi_est::grid::GridConfig::shard`]).
fn shard_from_env(index: Option<usize>, count: Option<usize>) -> Result<(usize, usize)> {
    let env = |k: &str| -> Result<Option<usize>> {
        match std::env::var(k) {
            Ok(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("invalid `{k}` = {v}: not a number")),
            Err(_) => Ok(None),
        }
    };
    let index = match index {
        Some(i) => Some(i),
        None => match env("SLURM_ARRAY_TASK_ID")? {
            Some(i) => Some(i),
            None => env("JOB_COMPLETION_INDEX")?,
        },
    };
    let count = match count {
        Some(c) => Some(c),
        None => env("SLURM_ARRAY_TASK_COUNT")?,
    };
    Ok(match (index, count) {
        (None, None) => (0, 1),
        (Some(i), Some(n)) => (i, n),
        (Some(i), None) => {
            bail!("invalid `num-shards` = missing: shard index {i} given without a shard count");
        }
        (None, Some(n)) => {
            bail!("invalid `shard-index` = missing: {n} shards given without a shard index");
        }
    })
}
