//! The `mi-est` command: a thin layer over the `mi_est` library. It parses arguments,
//! shows progress and prints; every computation is a library call.

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mi_est::data::DataSpec;
use mi_est::demo::{DemoConfig, run_demo};
use mi_est::elbo::Likelihood;
use mi_est::study::reproduce::Experiment;
use mi_est::study::{Objective, TrainRun, default_posterior_path, run_training};
use mi_est::train::{StepInfo, TrainConfig};
use mi_est::weights::Activation;

mod observer;
mod values;
use observer::{CliObserver, DownloadObserver};
use values::*;

#[derive(Parser, Debug)]
#[command(
    name = "mi-est",
    version,
    about = "Mutual information between hidden-unit permutations and the weights of variational BNNs"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Refuse computations whose estimated peak memory exceeds this many GiB [default: half of the available memory].
    #[arg(long, global = true, value_parser = positive_f64)]
    max_memory_gib: Option<f64>,
    /// Refuse computations whose estimated wall time exceeds this many hours [default: 72].
    #[arg(long, global = true, value_parser = positive_f64)]
    max_hours: Option<f64>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build a bundled architecture and posterior, check the symmetry, and estimate I(g; ω).
    Demo(DemoArgs),
    /// Train a mean-field variational MLP (MFVI or the symmetrized objective) and evaluate it.
    Train(TrainArgs),
    /// Estimate I(g; w) over trained posteriors on a grid of estimators, K and repeats; write Parquet reports and plots.
    Run(RunArgs),
    /// Combine the shard files of a sharded `run` into the full reports.
    Merge(MergeArgs),
    /// Say what a posterior file holds: architecture, naming scheme, how sigma is given, parameter count, ln|G|; or which tensor does not fit.
    Inspect(InspectArgs),
    /// Write (again) the index.html of report folders from what they hold: summary.md, every plot, the Parquet files and the manifest (run, merge and reproduce write it themselves).
    Page(PageArgs),
    /// Write the permutation spec of a posterior's layers read as a plain chain of linear and convolution layers (--sequential), for checking or editing; see docs/specs.md.
    Spec(SpecArgs),
    /// Download a data set into the data cache ($MI_EST_DATA, else the platform's cache folder) and verify it.
    Data(DataArgs),
    /// Reproduce an experiment of the paper (mode-interpolation, tractable-bnn, mnist, mode-proximity) or run a study beyond it (estimator-cost, mnist-objectives, tractable-sweep, symmetry-regime).
    Reproduce(ReproduceArgs),
}

#[derive(Parser, Debug)]
struct InspectArgs {
    /// Posterior files (safetensors or .npz).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Read the files under this permutation spec (JSON; docs/specs.md) [default: each file's `permutation_spec` metadata, else an MLP from the tensor shapes].
    #[arg(long)]
    spec: Option<PathBuf>,
    /// The forward order of the layers, by name (e.g. encoder,decoder), where the file does not state it (default: numeric indices in the names, an .npz's member order, or the only order whose shapes chain).
    #[arg(long, value_parser = parse_layers)]
    layers: Option<Layers>,
    /// The prior scale s of N(0, s^2 I) for files that record none (a file's `prior_scale` metadata wins) [default: 1].
    #[arg(long, value_parser = positive_f64)]
    prior_scale: Option<f64>,
}

#[derive(Parser, Debug)]
struct PageArgs {
    /// Report folders.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
}

#[derive(Parser, Debug)]
struct SpecArgs {
    /// The posterior file (safetensors or .npz) whose layers form the chain.
    posterior: PathBuf,
    /// Read the layers as a plain chain in forward order (the only generator so far).
    #[arg(long, required = true)]
    sequential: bool,
    /// The forward order of the layers, by name, where the file does not state it [default: as in `inspect`].
    #[arg(long, value_parser = parse_layers)]
    layers: Option<Layers>,
    /// Write the spec here [default: standard output].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long)]
    overwrite: bool,
}

/// The data sets `mi-est data` fetches.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DataSet {
    /// The four standard MNIST files (about 11 MB), from $MI_EST_MNIST_URL or the default mirror.
    Mnist,
}

#[derive(Parser, Debug)]
struct DataArgs {
    /// Which data set.
    #[arg(value_enum)]
    set: DataSet,
}

#[derive(Parser, Debug)]
struct ReproduceArgs {
    /// mode-interpolation, tractable-bnn, mnist, mode-proximity, estimator-cost, mnist-objectives, tractable-sweep or symmetry-regime.
    experiment: Experiment,
    /// The fast variant (seconds to minutes) that checks the qualitative claims.
    #[arg(long)]
    quick: bool,
    /// MNIST for the experiments that read it (mnist, mode-proximity, estimator-cost, mnist-objectives, symmetry-regime): `mnist:<dir>` or a folder of the four IDX files, or `mnist` (the data cache, downloaded on first use) [default: $MI_EST_MNIST; else, with --quick, the bundled subset data/mnist-small, and without it the data cache].
    #[arg(long)]
    data: Option<String>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Reports go to <out>/<experiment>[-quick]/ (the committed reports in reports/ stay as references; `--out reports --overwrite` rewrites them).
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Replace an existing report in the output folder.
    #[arg(long)]
    overwrite: bool,
    /// estimator-cost only: take each timed estimate's S from an earlier report folder (its manifest.json), which reproduces that report's values exactly [default: S from timed pilots].
    #[arg(long)]
    samples_from: Option<PathBuf>,
}

#[derive(Parser, Debug)]
struct RunArgs {
    /// Posterior files (safetensors or .npz) [default: the bundled MNIST 784-10-10 posterior, data/posteriors/mnist-small-784-10-10-mfvi.safetensors, found from the repository folder].
    #[arg(long, num_args = 1..)]
    posterior: Vec<PathBuf>,
    /// Estimators: infonce, exact, sandwich (lower and upper bound from the same draws: one row per K and repeat with both and their paired width), pairwise (both deterministic bounds; one hidden layer), or the single bounds pairwise-lower, pairwise-upper [default: infonce,exact where every posterior has an exact estimator, else infonce,sandwich].
    #[arg(long, value_delimiter = ',', value_parser = estimator_name)]
    estimators: Option<Vec<String>>,
    /// K grid of the InfoNCE estimator and the sandwich (which takes the K >= 2 of it).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = k_value,
        default_value = "1,2,4,8,16,32,64,128,256,512,1024,2048,4096"
    )]
    k: Vec<usize>,
    /// Weight draws per estimate.
    #[arg(long, default_value_t = 1000, value_parser = positive_usize)]
    samples: usize,
    /// Repeats per grid cell.
    #[arg(long, default_value_t = 5, value_parser = positive_usize)]
    repeats: usize,
    /// Master seed: each grid item draws with a seed derived from it and the item.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Data for the ELBO: mnist[:<dir>], csv:<file>, abs:<alpha>, … as in `train` [default: each posterior's recorded training data].
    #[arg(long)]
    data: Option<String>,
    /// Posterior draws of the ELBO.
    #[arg(long, default_value_t = 100, value_parser = positive_usize)]
    elbo_samples: usize,
    /// Read every posterior under this permutation spec (JSON; docs/specs.md); default: the file's `permutation_spec` metadata, else an MLP from the tensor shapes.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// The forward order of every posterior's layers, by name (e.g. encoder,decoder), where a file does not state it (default: numeric indices in the names, an .npz's member order, or the only order whose shapes chain; an ambiguous order is refused).
    #[arg(long, value_parser = parse_layers)]
    layers: Option<Layers>,
    /// The prior scale s of N(0, s^2 I) in the KL and ELBO columns, for files that record none (a file's `prior_scale` metadata wins; every bounds table prints the prior used) [default: 1].
    #[arg(long, value_parser = positive_f64)]
    prior_scale: Option<f64>,
    /// Output folder.
    #[arg(long, default_value = "reports/run")]
    out: PathBuf,
    /// Replace an existing report.
    #[arg(long)]
    overwrite: bool,
    /// This process's shard [default: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, else 0].
    #[arg(long)]
    shard_index: Option<usize>,
    /// Number of shards [default: SLURM_ARRAY_TASK_COUNT, else 1].
    #[arg(long, value_parser = positive_usize)]
    num_shards: Option<usize>,
}

#[derive(Parser, Debug)]
struct MergeArgs {
    /// The folder holding raw-shard-*.jsonl and their manifests; the reports are written there.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing reports in that folder.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Parser, Debug)]
struct DemoArgs {
    /// Layer widths d0,d1,…,dL.
    #[arg(long, value_delimiter = ',', value_parser = positive_usize, default_value = "784,10,10")]
    widths: Vec<usize>,
    /// Hidden activation (relu or tanh).
    #[arg(long, default_value = "relu")]
    activation: Activation,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// rho of every parameter, sigma = softplus(rho) (-3 gives sigma = 0.049; try 1 for overlapping units).
    #[arg(long, default_value_t = -3.0, allow_hyphen_values = true, value_parser = finite_f64)]
    rho: f64,
    /// Weight draws per estimate.
    #[arg(long, default_value_t = 200, value_parser = positive_usize)]
    samples: usize,
    /// Contrast sizes K of the InfoNCE estimates.
    #[arg(long, value_delimiter = ',', value_parser = k_value, default_value = "2,16,256")]
    k: Vec<usize>,
}

/// `--objective`: the training objective (K comes from `--k`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ObjectiveArg {
    /// Maximize L.
    Mfvi,
    /// The paper's L + I^K.
    Sgm,
    /// L + exact I (one hidden layer of width <= 24).
    SgmExact,
    /// L + the sandwich lower bound on I (one hidden layer).
    SgmSandwich,
}

#[derive(Parser, Debug)]
struct TrainArgs {
    /// Data: mnist[@limit] (the data cache, downloaded on first use), mnist:<dir>[@limit] (or a folder of IDX files), csv:<file>, abs:<alpha> (y = alpha|x|), mixture:<classes>:<dim>.
    #[arg(long)]
    data: DataSpec,
    /// Hidden widths, comma separated.
    #[arg(long, value_delimiter = ',', value_parser = positive_usize, default_value = "10")]
    hidden: Vec<usize>,
    /// Hidden activation (relu or tanh).
    #[arg(long, default_value = "relu")]
    activation: Activation,
    /// Objective: mfvi, sgm (the paper's L + I^K), sgm-exact (L + exact I, one hidden layer of width <= 24) or sgm-sandwich (L + the sandwich lower bound on I with K - 1 proposal draws, one hidden layer).
    #[arg(long, value_enum, default_value = "mfvi")]
    objective: ObjectiveArg,
    /// K of the symmetrized objective (sgm: K >= 1; sgm-sandwich: K >= 2).
    #[arg(long, default_value_t = 5, value_parser = k_value)]
    k: usize,
    /// Likelihood: softmax, gaussian or gaussian:<precision> [default: softmax for class labels, gaussian for real targets].
    #[arg(long)]
    likelihood: Option<Likelihood>,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10, value_parser = positive_usize)]
    epochs: usize,
    /// Minibatch size M (the likelihood is scaled by N/M).
    #[arg(long, default_value_t = 100, value_parser = positive_usize)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = positive_f64)]
    lr: f64,
    /// Seed of the initialization, the minibatches and every draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Prior scale s of N(0, s^2 I).
    #[arg(long, default_value_t = 1.0, value_parser = positive_f64)]
    prior_scale: f64,
    /// Initial rho of every parameter.
    #[arg(long, default_value_t = -3.0, allow_hyphen_values = true, value_parser = finite_f64)]
    init_rho: f64,
    /// Standard deviation of the initial weight means (biases start at 0).
    #[arg(long, default_value_t = 0.1, value_parser = nonnegative_f64)]
    init_mu_std: f64,
    /// Posterior samples of the predictive average.
    #[arg(long, default_value_t = 1000, value_parser = positive_usize)]
    predictive_samples: usize,
    /// Posterior samples of the full-data ELBO.
    #[arg(long, default_value_t = 20, value_parser = positive_usize)]
    elbo_samples: usize,
    /// K of the evaluation I^K.
    #[arg(long, default_value_t = 500, value_parser = k_value)]
    eval_k: usize,
    /// Posterior samples of the evaluation I^K.
    #[arg(long, default_value_t = 1000, value_parser = positive_usize)]
    mi_samples: usize,
    /// Posterior file to write (safetensors; its folder is created) [default: posterior-<hidden>-<objective>-seed<seed>.safetensors in the current folder].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    overwrite: bool,
}

/// Runs the command; on failure prints `error: <message>` (the causes joined, no
/// backtrace) and exits with status 1. Bad arguments exit with clap's status 2.
fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes, outermost first (no message repeats its cause).
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", msg.join(": "));
            // A bad value is a usage error, as clap's own (status 2).
            let usage = e.chain().any(|c| c.is::<Usage>());
            std::process::ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let mut limits = mi_est::resources::Limits::default_for_machine();
    if let Some(g) = cli.max_memory_gib {
        limits.max_bytes = g * (1u64 << 30) as f64;
    }
    if let Some(h) = cli.max_hours {
        limits.max_seconds = h * 3600.0;
    }
    limits.set()?;
    match cli.command {
        None => demo(DemoArgs::parse_from(["demo"])),
        Some(Command::Demo(a)) => demo(a),
        Some(Command::Train(a)) => train(a),
        Some(Command::Run(a)) => run(a),
        Some(Command::Merge(a)) => merge(a),
        Some(Command::Data(a)) => data(a),
        Some(Command::Inspect(a)) => inspect(a),
        Some(Command::Spec(a)) => spec(a),
        Some(Command::Page(a)) => page(a),
        Some(Command::Reproduce(a)) => reproduce(a),
    }
}

fn reproduce(a: ReproduceArgs) -> Result<()> {
    use mi_est::study::reproduce::ReproduceOptions;
    let experiment = a.experiment;
    let samples = match &a.samples_from {
        Some(_) if experiment != Experiment::EstimatorCost => {
            bail!("`--samples-from` applies to estimator-cost only")
        }
        Some(dir) => Some(mi_est::report::recorded_samples(dir)?),
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
    };
    eprintln!(
        "[reproduce] {} ({}) started",
        experiment.name(),
        if a.quick { "quick" } else { "full" }
    );
    let command_line: Vec<String> = std::env::args().collect();
    let (r, files) =
        mi_est::report::reproduce_into(&dir, experiment, options, a.overwrite, &command_line)?;
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
fn reproduce_mnist(data: Option<&str>, quick: bool, experiment: Experiment) -> Result<PathBuf> {
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

/// A data spec with `mnist` (the data cache) replaced by `$MI_EST_MNIST` when that is
/// set, and the data cache fetched when it is used and incomplete; a named folder must
/// exist.
fn resolve_mnist(spec: DataSpec, command: &str) -> Result<DataSpec> {
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

/// `mi-est inspect`: what each file holds, as read.
fn inspect(a: InspectArgs) -> Result<()> {
    let spec = a
        .spec
        .as_deref()
        .map(mi_est::study::grid::load_spec)
        .transpose()?;
    let options = mi_est::io::ReadOptions {
        spec: spec.as_ref().map(|s| &s.spec),
        layers: a.layers.as_ref().map(|l| l.0.as_slice()),
        prior_scale: a.prior_scale,
    };
    for path in &a.files {
        let (file, how) = mi_est::io::inspect(path, options)?;
        let q = &file.posterior;
        let group = q.space().group();
        let schemes: Vec<&str> = how.schemes.iter().map(|s| s.describe()).collect();
        println!("{}", path.display());
        println!("  naming        {}", schemes.join("; "));
        println!("  sigma         {}", how.sigma);
        println!("  layer order   {} ({})", how.layers.join(" → "), how.order);
        if !how.skipped.is_empty() {
            println!(
                "  skipped       {} (not parameters of the posterior: blitz's sampler noise, and its copies of the means and rhos, checked equal)",
                how.skipped.join(", ")
            );
        }
        match (q.arch(), q.space().spec_space()) {
            (Some(arch), _) => {
                let fixed: Vec<String> = (0..arch.n_layers())
                    .filter(|&i| arch.fixed(i).is_some())
                    .map(|i| i.to_string())
                    .collect();
                println!(
                    "  architecture  widths {:?}, {} activation, fixed layers: {}",
                    arch.widths(),
                    arch.activation().name(),
                    if fixed.is_empty() {
                        "none".to_string()
                    } else {
                        fixed.join(", ")
                    }
                );
            }
            (None, Some(space)) => {
                println!(
                    "  architecture  {} (permutation spec)",
                    q.space().describe()
                );
                for (name, shape) in space.layout() {
                    println!("    {name:<24} {shape:?}");
                }
                for (name, shape, _) in space.fixed() {
                    println!("    {name:<24} {shape:?} (fixed)");
                }
                for ((perm, n), pins) in space.spec().permutations().iter().zip(space.pins()) {
                    let Some(labels) = pins else { continue };
                    let n_classes = labels.iter().max().map_or(0, |m| m + 1);
                    let classes: Vec<String> = (0..n_classes)
                        .map(|c| {
                            let units: Vec<String> = (0..*n)
                                .filter(|&u| labels[u] == c)
                                .map(|u| u.to_string())
                                .collect();
                            format!("{{{}}}", units.join(", "))
                        })
                        .collect();
                    println!(
                        "  pinned        `{perm}`: its fixed tensors differ between units, so only permutations within {} keep q(g⁻¹·ω) > 0",
                        classes.join(" ")
                    );
                }
            }
            (None, None) => {}
        }
        println!("  parameters    {} (variational)", q.n_params());
        println!(
            "  ln|G|         {:.4} nats ({} {:?})",
            group.ln_order(),
            if q.arch().is_some() {
                "hidden widths"
            } else {
                "permutation sizes"
            },
            group.hidden_widths()
        );
        let sigma = q.sigma();
        let (lo, hi) = sigma
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &s| (a.min(s), b.max(s)));
        println!("  sigma range   [{lo:.3e}, {hi:.3e}]");
        if let Some(l) = file.likelihood {
            println!("  likelihood    {l}");
        }
        println!("  prior         N(0, {}²): {}", file.prior_scale, how.prior);
    }
    Ok(())
}

/// `mi-est page`: each folder's index.html from what it holds.
fn page(a: PageArgs) -> Result<()> {
    for dir in &a.dirs {
        let p = mi_est::report::folder_page(dir)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// `mi-est spec --sequential`: the spec of a posterior's layers as a plain chain,
/// checked against the file before it is written.
fn spec(a: SpecArgs) -> Result<()> {
    let layers = a.layers.as_ref().map(|l| l.0.as_slice());
    let spec = mi_est::io::sequential_spec(&a.posterior, layers)?;
    // The spec must read the file it came from (a fixed layer it would permute fails here).
    mi_est::io::load_with_bytes(&a.posterior, mi_est::io::ReadOptions::spec(Some(&spec)))?;
    let text = spec.to_json() + "\n";
    match &a.out {
        Some(out) => {
            mi_est::atomic::write_atomic(out, text.as_bytes(), a.overwrite)?;
            eprintln!("wrote {}", out.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `mi-est data mnist`: fetches what is missing, verifies everything.
fn data(a: DataArgs) -> Result<()> {
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
fn mnist_cache(command: &str) -> Result<PathBuf> {
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
    let fetched = fetch::fetch(&url, &dir, &fetch::MNIST_FILES, &|f, d, t| {
        shown.progress(f, d, t)
    });
    shown.finish();
    fetched.map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "`mi-est {command}` could not fetch MNIST from {url} (run `mi-est data mnist` to retry; set MI_EST_MNIST_URL to use a mirror, or pass --data <folder with the four IDX files>)"
        ))
    })?;
    Ok(dir)
}

fn run(a: RunArgs) -> Result<()> {
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
        let bundled = mi_est::study::grid::bundled_posterior();
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
        Some(names) => mi_est::study::grid::EstimatorKind::parse_list(names)
            .map_err(|e| flagged(e, RUN_FLAGS))?,
        None => {
            // The default: exact where every posterior has an exact estimator, else the
            // sandwich, which applies at any depth.
            let spec = a
                .spec
                .as_deref()
                .map(mi_est::study::grid::load_spec)
                .transpose()?;
            let read = mi_est::io::ReadOptions {
                spec: spec.as_ref().map(|s| &s.spec),
                layers: a.layers.as_ref().map(|l| l.0.as_slice()),
                prior_scale: a.prior_scale,
            };
            let loaded = mi_est::study::grid::load_posteriors(&posteriors, read)?;
            let (kinds, note) = mi_est::study::grid::default_estimators(&loaded);
            if let Some(note) = note {
                eprintln!("[run] {note}");
            }
            kinds
        }
    };
    let ks = a.k.clone();
    let shard = mi_est::study::grid::shard_from_env(a.shard_index, a.num_shards)?;
    let config = mi_est::study::grid::GridConfig {
        posteriors,
        spec: a.spec.clone(),
        layers: a.layers.clone().map(|l| l.0),
        prior_scale: a.prior_scale,
        estimators,
        ks,
        samples: a.samples,
        repeats: a.repeats,
        seed: a.seed,
        shard,
    };
    let options = mi_est::report::RunOptions {
        out: a.out.clone(),
        overwrite: a.overwrite,
        data,
        elbo_samples: a.elbo_samples,
        command_line: std::env::args().collect(),
    };
    let config = config.check().map_err(|e| flagged(e, RUN_FLAGS))?;
    let out = mi_est::report::run(&config, &options, &CliObserver::new("[run]", "estimates"))?;
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

fn merge(a: MergeArgs) -> Result<()> {
    print_report(&mi_est::report::merge(&a.out, a.overwrite)?);
    Ok(())
}

fn print_report(out: &mi_est::report::RunOutput) {
    print!(
        "{}",
        mi_est::report::format_summary(&out.bias_variance, &out.bounds)
    );
    print_files(out);
}

fn print_files(out: &mi_est::report::RunOutput) {
    for f in &out.files {
        println!("wrote {}", f.display());
    }
}

fn demo(args: DemoArgs) -> Result<()> {
    let config = DemoConfig {
        widths: args.widths,
        activation: args.activation,
        seed: args.seed,
        rho: args.rho,
        n_samples: args.samples,
        ks: args.k,
    };
    print!("{}", run_demo(&config).map_err(|e| flagged(e, DEMO_FLAGS))?);
    Ok(())
}

/// Progress for long loops: an indicatif bar on a terminal, periodic log lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    last_log: Instant,
}

impl Progress {
    fn new() -> Self {
        Progress {
            bar: None,
            last_log: Instant::now(),
        }
    }

    fn step(&mut self, info: &StepInfo, total_steps: u64) {
        let msg = format!(
            "epoch {} | ELBO/N {:.4}{}",
            info.epoch + 1,
            info.elbo_per_point,
            info.mi_term
                .map_or(String::new(), |m| format!(" | I^K {m:.3}"))
        );
        if std::io::stderr().is_terminal() {
            let bar = self.bar.get_or_insert_with(|| {
                let b = ProgressBar::new(total_steps);
                b.set_style(
                    ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} steps {elapsed_precise} eta {eta} {msg}",
                    )
                    .expect("template"),
                );
                b
            });
            bar.set_position(info.step + 1);
            bar.set_message(msg);
        } else if self.last_log.elapsed() >= Duration::from_secs(5) || info.step + 1 == total_steps
        {
            eprintln!("[train] step {}/{} {msg}", info.step + 1, total_steps);
            self.last_log = Instant::now();
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let data = resolve_mnist(a.data.clone(), "train")?;
    let likelihood = a.likelihood.unwrap_or_else(|| data.default_likelihood());
    let objective = match a.objective {
        ObjectiveArg::Mfvi => Objective::Mfvi,
        ObjectiveArg::Sgm => Objective::Sgm { k: a.k },
        ObjectiveArg::SgmExact => Objective::SgmExact,
        ObjectiveArg::SgmSandwich => Objective::SgmSandwich { k: a.k },
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| default_posterior_path(objective, &a.hidden, a.seed));
    let objective = objective.check().map_err(|e| flagged(e, TRAIN_FLAGS))?;
    // The output is checked, and its folder made, before any training.
    if out.exists() && !a.overwrite {
        bail!(
            "{}: already exists (pass --overwrite to replace it)",
            out.display()
        );
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        mi_est::atomic::create_folder(parent)?;
    }
    let mut config = TrainConfig::new(likelihood);
    config.epochs = a.epochs;
    config.batch_size = a.batch;
    config.lr = a.lr;
    config.seed = a.seed;
    config.prior_scale = a.prior_scale;
    config.init_rho = a.init_rho;
    config.init_mu_std = a.init_mu_std;
    let config = config.check().map_err(|e| flagged(e, TRAIN_FLAGS))?;
    let run = TrainRun {
        data,
        hidden: a.hidden,
        activation: a.activation,
        objective,
        config,
        predictive_samples: a.predictive_samples,
        elbo_samples: a.elbo_samples,
        eval_k: a.eval_k,
        mi_samples: a.mi_samples,
    };
    let mut progress = Progress::new();
    let mut total = 0u64;
    let epochs = run.config.epochs as u64;
    let report = run_training(&run, &mut |info: &StepInfo| {
        total = info.steps_per_epoch * epochs;
        progress.step(info, total);
    })
    .map_err(|e| flagged(e, TRAIN_FLAGS))?;
    progress.finish();
    mi_est::io::save(&out, &report.file, a.overwrite)?;
    print!("{report}");
    println!("posterior written to {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every option of every subcommand has a help line, and one that says what happens
    /// without it: clap prints a default value itself; an optional value's help names its
    /// default in words.
    #[test]
    fn every_option_has_a_help_line_with_its_default() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_positional() {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let flag = matches!(arg.get_action(), clap::ArgAction::SetTrue);
                let has_default = !arg.get_default_values().is_empty();
                let says_default = help.contains("default") || help.contains("Default");
                if help.trim().is_empty()
                    || !(flag || has_default || says_default || arg.is_required_set())
                {
                    missing.push(format!("{} --{id}: `{help}`", sub.get_name()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "options without a help line or default:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn list_values_refuse_empty_items_and_zero() {
        assert!(k_value("").is_err());
        assert!(k_value("0").is_err());
        assert_eq!(k_value(" 4"), Ok(4));
        assert!(positive_usize("x").is_err());
        assert!(estimator_name("").is_err());
        assert!(estimator_name("magic").is_err());
        assert_eq!(estimator_name("sandwich"), Ok("sandwich".into()));
    }
}
