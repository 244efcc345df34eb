//! The `mi-est` command: a thin layer over the `mi_est` library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use mi_est::demo::{DemoConfig, run_demo};

#[derive(Parser, Debug)]
#[command(
    name = "mi-est",
    version,
    about = "Mutual information between hidden-unit permutations and the weights of variational BNNs"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build a bundled architecture and posterior, check the symmetry, and estimate I(g; ω).
    Demo(DemoArgs),
}

#[derive(Parser, Debug)]
struct DemoArgs {
    /// Layer widths d0,d1,…,dL.
    #[arg(long, value_delimiter = ',', default_value = "784,10,10")]
    widths: Vec<usize>,
    /// Hidden activation (relu or tanh).
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// rho of every parameter, sigma = softplus(rho) (-3 gives sigma = 0.049; try 1 for overlapping units).
    #[arg(long, default_value_t = -3.0, allow_hyphen_values = true)]
    rho: f64,
    /// Weight draws per estimate.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Contrast sizes K of the InfoNCE estimates.
    #[arg(long, value_delimiter = ',', default_value = "2,16,256")]
    k: Vec<usize>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Demo(a)) => a,
        None => DemoArgs::parse_from(["demo"]),
    };
    let config = DemoConfig {
        widths: args.widths,
        activation: args.activation.parse().context("--activation")?,
        seed: args.seed,
        rho: args.rho,
        n_samples: args.samples,
        ks: args.k,
    };
    let report = run_demo(&config)?;
    print!("{report}");
    Ok(())
}
