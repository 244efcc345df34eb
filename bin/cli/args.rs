//! The command's arguments: every subcommand's flags, with their help lines and
//! defaults, as clap parses them.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

use mi_est::data::DataSpec;
use mi_est::study::reproduce::Experiment;
use mi_est::weights::Activation;
use mi_est::weights::Likelihood;

use super::values::*;

#[derive(Parser, Debug)]
#[command(
    name = "mi-est",
    version,
    about = "Mutual information between hidden-unit permutations and the weights of variational BNNs"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Refuse computations whose estimated peak memory exceeds this many GiB [default: half of the available memory].
    #[arg(long, global = true, value_parser = positive_f64)]
    pub(crate) max_memory_gib: Option<f64>,
    /// Refuse computations whose estimated wall time exceeds this many hours [default: 72].
    #[arg(long, global = true, value_parser = positive_f64)]
    pub(crate) max_hours: Option<f64>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
    /// Reproduce an experiment of the paper (mode-interpolation, tractable-bnn, mnist, mode-proximity) or run a study beyond it (estimator-cost, mnist-objectives, tractable-sweep, symmetry-regime, symmetry-replication).
    Reproduce(ReproduceArgs),
}

#[derive(Parser, Debug)]
pub(crate) struct InspectArgs {
    /// Posterior files (safetensors or .npz).
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) read: ReadArgs,
}

/// How posterior files are read, where they do not say it themselves: the flags of
/// `inspect` and `run`.
#[derive(clap::Args, Debug)]
pub(crate) struct ReadArgs {
    /// Read every posterior under this permutation spec (JSON; docs/specs.md); default: the file's `permutation_spec` metadata, else an MLP from the tensor shapes.
    #[arg(long)]
    pub(crate) spec: Option<PathBuf>,
    /// The forward order of every posterior's layers, by name (e.g. encoder,decoder), where a file does not state it (default: numeric indices in the names, an .npz's member order, or the only order whose shapes chain; an ambiguous order is refused).
    #[arg(long, value_parser = parse_layers)]
    pub(crate) layers: Option<Layers>,
    /// The prior scale s of N(0, s^2 I) in the KL and ELBO, for files that record none (a file's `prior_scale` metadata wins; every bounds table prints the prior used) [default: 1].
    #[arg(long, value_parser = positive_f64)]
    pub(crate) prior_scale: Option<f64>,
}

impl ReadArgs {
    /// The spec file named by `--spec`, read.
    pub(crate) fn load_spec(&self) -> mi_est::Result<Option<mi_est::grid::LoadedSpec>> {
        self.spec
            .as_deref()
            .map(mi_est::grid::load_spec)
            .transpose()
    }

    /// The reader's options: under `spec` (from [`load_spec`](Self::load_spec)), the
    /// layer order and prior scale of the flags, within `limits`.
    pub(crate) fn options<'a>(
        &'a self,
        spec: Option<&'a mi_est::grid::LoadedSpec>,
        limits: &mi_est::resources::Limits,
    ) -> mi_est::io::ReadOptions<'a> {
        mi_est::io::ReadOptions {
            spec: spec.map(|s| &s.spec),
            layers: self.layers.as_ref().map(|l| l.0.as_slice()),
            prior_scale: self.prior_scale,
            limits: *limits,
        }
    }
}

#[derive(Parser, Debug)]
pub(crate) struct PageArgs {
    /// Report folders.
    #[arg(required = true)]
    pub(crate) dirs: Vec<PathBuf>,
}

#[derive(Parser, Debug)]
pub(crate) struct SpecArgs {
    /// The posterior file (safetensors or .npz) whose layers form the chain.
    pub(crate) posterior: PathBuf,
    /// Read the layers as a plain chain in forward order (the only generator so far).
    #[arg(long, required = true)]
    pub(crate) sequential: bool,
    /// The forward order of the layers, by name, where the file does not state it [default: as in `inspect`].
    #[arg(long, value_parser = parse_layers)]
    pub(crate) layers: Option<Layers>,
    /// Write the spec here [default: standard output].
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long)]
    pub(crate) overwrite: bool,
}

/// The data sets `mi-est data` fetches.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum DataSet {
    /// The four standard MNIST files (about 11 MB), from $MI_EST_MNIST_URL or the default mirror.
    Mnist,
}

#[derive(Parser, Debug)]
pub(crate) struct DataArgs {
    /// Which data set.
    #[arg(value_enum)]
    pub(crate) set: DataSet,
}

#[derive(Parser, Debug)]
pub(crate) struct ReproduceArgs {
    /// mode-interpolation, tractable-bnn, mnist, mode-proximity, estimator-cost, mnist-objectives, tractable-sweep or symmetry-regime.
    pub(crate) experiment: Experiment,
    /// The fast variant (seconds to minutes) that checks the qualitative claims.
    #[arg(long)]
    pub(crate) quick: bool,
    /// MNIST for the experiments that read it (mnist, mode-proximity, estimator-cost, mnist-objectives, symmetry-regime): `mnist:<dir>` or a folder of the four IDX files, or `mnist` (the data cache, downloaded on first use) [default: $MI_EST_MNIST; else, with --quick, the bundled subset data/mnist-small, and without it the data cache].
    #[arg(long)]
    pub(crate) data: Option<String>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Reports go to <out>/<experiment>[-quick]/ (the committed reports in reports/ stay as references; `--out reports --overwrite` rewrites them).
    #[arg(long, default_value = "runs")]
    pub(crate) out: PathBuf,
    /// Replace an existing report in the output folder.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// estimator-cost only: take each timed estimate's S from an earlier report folder (its manifest.json), which reproduces that report's values exactly [default: S from timed pilots].
    #[arg(long)]
    pub(crate) samples_from: Option<PathBuf>,
}

#[derive(Parser, Debug)]
pub(crate) struct RunArgs {
    /// Posterior files (safetensors or .npz) [default: the bundled MNIST 784-10-10 posterior, data/posteriors/mnist-small-784-10-10-mfvi.safetensors, found from the repository folder].
    #[arg(long, num_args = 1..)]
    pub(crate) posterior: Vec<PathBuf>,
    /// Estimators: infonce, exact (or one exact estimator by name: exact-enumeration, exact-permanent, exact-pruned), sandwich (lower and upper bound from the same draws: one row per K and repeat with both and their paired width), annealed (lower and upper bound by annealed importance sampling over the permutations, forward and reverse, for MLPs of any depth: one row per --temperatures T and repeat), pairwise (both deterministic bounds; one hidden layer), or the single bounds pairwise-lower, pairwise-upper [default: infonce,exact where every posterior has an exact estimator, else infonce,sandwich, and annealed where every posterior is an MLP].
    #[arg(long, value_delimiter = ',', value_parser = estimator_name)]
    pub(crate) estimators: Option<Vec<String>>,
    /// K grid of the InfoNCE estimator and the sandwich (which takes the K >= 2 of it).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = k_value,
        default_value = "1,2,4,8,16,32,64,128,256,512,1024,2048,4096"
    )]
    pub(crate) k: Vec<usize>,
    /// Numbers of temperatures T of the annealed bounds (one row per T and repeat; more temperatures narrow the interval, in proportion to the time).
    #[arg(long, value_delimiter = ',', value_parser = positive_usize, default_value = "1000")]
    pub(crate) temperatures: Vec<usize>,
    /// Weight draws per estimate.
    #[arg(long, default_value_t = 1000, value_parser = positive_usize)]
    pub(crate) samples: usize,
    /// Repeats per grid cell.
    #[arg(long, default_value_t = 5, value_parser = positive_usize)]
    pub(crate) repeats: usize,
    /// Master seed: each grid item draws with a seed derived from it and the item.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Data for the ELBO: mnist[:<dir>], csv:<file>, abs:<alpha>, … as in `train` [default: each posterior's recorded training data].
    #[arg(long)]
    pub(crate) data: Option<String>,
    /// Posterior draws of the ELBO.
    #[arg(long, default_value_t = 100, value_parser = positive_usize)]
    pub(crate) elbo_samples: usize,
    #[command(flatten)]
    pub(crate) read: ReadArgs,
    /// Output folder.
    #[arg(long, default_value = "reports/run")]
    pub(crate) out: PathBuf,
    /// Replace an existing report.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// This process's shard [default: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, else 0].
    #[arg(long)]
    pub(crate) shard_index: Option<usize>,
    /// Number of shards [default: SLURM_ARRAY_TASK_COUNT, else 1].
    #[arg(long, value_parser = positive_usize)]
    pub(crate) num_shards: Option<usize>,
}

#[derive(Parser, Debug)]
pub(crate) struct MergeArgs {
    /// The folder holding raw-shard-*.jsonl and their manifests; the reports are written there.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Replace existing reports in that folder.
    #[arg(long)]
    pub(crate) overwrite: bool,
}

#[derive(Parser, Debug)]
pub(crate) struct DemoArgs {
    /// Layer widths d0,d1,…,dL.
    #[arg(long, value_delimiter = ',', value_parser = positive_usize, default_value = "784,10,10")]
    pub(crate) widths: Vec<usize>,
    /// Hidden activation (relu or tanh).
    #[arg(long, default_value = "relu")]
    pub(crate) activation: Activation,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// rho of every parameter, sigma = softplus(rho) (-3 gives sigma = 0.049; try 1 for overlapping units).
    #[arg(long, default_value_t = -3.0, allow_hyphen_values = true, value_parser = finite_f64)]
    pub(crate) rho: f64,
    /// Weight draws per estimate.
    #[arg(long, default_value_t = 200, value_parser = positive_usize)]
    pub(crate) samples: usize,
    /// Contrast sizes K of the InfoNCE estimates.
    #[arg(long, value_delimiter = ',', value_parser = k_value, default_value = "2,16,256")]
    pub(crate) k: Vec<usize>,
}

/// `--objective`: the training objective (K comes from `--k`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum ObjectiveArg {
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
pub(crate) struct TrainArgs {
    /// Data: mnist[@limit] (the data cache, downloaded on first use), mnist:<dir>[@limit] (or a folder of IDX files), csv:<file>, abs:<alpha> (y = alpha|x|), mixture:<classes>:<dim>.
    #[arg(long)]
    pub(crate) data: DataSpec,
    /// Hidden widths, comma separated.
    #[arg(long, value_delimiter = ',', value_parser = positive_usize, default_value = "10")]
    pub(crate) hidden: Vec<usize>,
    /// Hidden activation (relu or tanh).
    #[arg(long, default_value = "relu")]
    pub(crate) activation: Activation,
    /// Objective: mfvi, sgm (the paper's L + I^K), sgm-exact (L + exact I, one hidden layer of width <= 24) or sgm-sandwich (L + the sandwich lower bound on I with K - 1 proposal draws, one hidden layer).
    #[arg(long, value_enum, default_value = "mfvi")]
    pub(crate) objective: ObjectiveArg,
    /// K of the symmetrized objective (sgm: K >= 1; sgm-sandwich: K >= 2).
    #[arg(long, default_value_t = 5, value_parser = k_value)]
    pub(crate) k: usize,
    /// Likelihood: softmax, gaussian or gaussian:<precision> [default: softmax for class labels, gaussian for real targets].
    #[arg(long)]
    pub(crate) likelihood: Option<Likelihood>,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10, value_parser = positive_usize)]
    pub(crate) epochs: usize,
    /// Minibatch size M (the likelihood is scaled by N/M).
    #[arg(long, default_value_t = 100, value_parser = positive_usize)]
    pub(crate) batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = positive_f64)]
    pub(crate) lr: f64,
    /// Seed of the initialization, the minibatches and every draw.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Prior scale s of N(0, s^2 I).
    #[arg(long, default_value_t = 1.0, value_parser = positive_f64)]
    pub(crate) prior_scale: f64,
    /// Initial rho of every parameter.
    #[arg(long, default_value_t = -3.0, allow_hyphen_values = true, value_parser = finite_f64)]
    pub(crate) init_rho: f64,
    /// Standard deviation of the initial weight means (biases start at 0).
    #[arg(long, default_value_t = 0.1, value_parser = nonnegative_f64)]
    pub(crate) init_mu_std: f64,
    /// Posterior samples of the predictive average.
    #[arg(long, default_value_t = 1000, value_parser = positive_usize)]
    pub(crate) predictive_samples: usize,
    /// Posterior samples of the full-data ELBO.
    #[arg(long, default_value_t = 20, value_parser = positive_usize)]
    pub(crate) elbo_samples: usize,
    /// K of the evaluation I^K.
    #[arg(long, default_value_t = 500, value_parser = k_value)]
    pub(crate) eval_k: usize,
    /// Posterior samples of the evaluation I^K.
    #[arg(long, default_value_t = 1000, value_parser = positive_usize)]
    pub(crate) mi_samples: usize,
    /// Posterior file to write (safetensors; its folder is created) [default: posterior-<hidden>-<objective>-seed<seed>.safetensors in the current folder].
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub(crate) overwrite: bool,
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
