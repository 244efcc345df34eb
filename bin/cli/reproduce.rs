//! `mi-est reproduce`: an experiment of the paper, or a study beyond it, into its folder.

use anyhow::{Result, bail};
use std::path::PathBuf;

use mi_est::data::DataSpec;
use mi_est::study::reproduce::Experiment;

use super::args::ReproduceArgs;
use super::data::resolve_mnist;
use super::observer::CliObserver;

pub(crate) fn reproduce(a: ReproduceArgs, limits: &mi_est::resources::Limits) -> Result<()> {
    use mi_est::study::reproduce::ReproduceOptions;
    let experiment = a.experiment;
    let samples = match &a.samples_from {
        Some(_) if experiment != Experiment::EstimatorCost => {
            bail!("`--samples-from` applies to estimator-cost only")
        }
        Some(dir) => Some(mi_est::app::recorded_samples(dir)?),
        None => None,
    };
    let mnist_dir = if experiment.needs_mnist() {
        Some(reproduce_mnist(a.data.as_deref(), a.quick, experiment)?)
    } else {
        None
    };
    let dir = a.out.join(format!(
        "{}{}",
        experiment.name(),
        if a.quick { "-quick" } else { "" }
    ));
    let options = ReproduceOptions {
        quick: a.quick,
        seed: a.seed,
        mnist_dir: mnist_dir.unwrap_or_default(),
        observer: Some(std::sync::Arc::new(CliObserver::new("[reproduce]", "runs"))),
        journal: None,
        samples,
        limits: *limits,
    };
    eprintln!(
        "[reproduce] {} ({}) started",
        experiment.name(),
        if a.quick { "quick" } else { "full" }
    );
    let (r, files) =
        mi_est::app::reproduce_into(&dir, experiment, options, a.overwrite, &super::provenance())?;
    println!("{}", r.summary);
    println!("wall time {:.2} s", r.wall_s);
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// The MNIST folder of `reproduce`: `--data` (`mnist:<dir>`, a folder, or `mnist` for
/// the data cache), else `$MI_EST_MNIST`, else with `--quick` the bundled subset, else the
/// data cache (fetched on first use). Says which, on standard error.
pub(crate) fn reproduce_mnist(
    data: Option<&str>,
    quick: bool,
    experiment: Experiment,
) -> Result<PathBuf> {
    let command = format!("reproduce {}", experiment.name());
    let env_set = std::env::var_os("MI_EST_MNIST").is_some_and(|v| !v.is_empty());
    let bundled = std::path::Path::new("data").join("mnist-small");
    let spec: DataSpec = match data {
        Some(d) => d.parse().map_err(|e| {
            anyhow::anyhow!(
                "--data `{d}`: {e} (reproduce reads MNIST: mnist:<dir>, a folder, or mnist)"
            )
        })?,
        None if quick && !env_set && bundled.is_dir() => {
            eprintln!(
                "[reproduce] --quick reads the bundled MNIST subset {} (2,000 training / 500 test images); --data <folder> for another",
                bundled.display()
            );
            return Ok(bundled);
        }
        // The data cache, or $MI_EST_MNIST in its place (`resolve_mnist`).
        None => "mnist".parse()?,
    };
    let DataSpec::Mnist { dir, limit: None } = resolve_mnist(spec, &command)? else {
        bail!(
            "--data `{}`: {} reads MNIST (mnist:<dir>, a folder of the four IDX files, or mnist), without a limit",
            data.unwrap_or(""),
            experiment.name()
        );
    };
    Ok(dir)
}
