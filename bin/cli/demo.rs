//! `mi-est demo` (and `mi-est` alone): a bundled posterior, its symmetry checked, I(g; ω) estimated.

use anyhow::Result;

use mi_est::demo::{DemoConfig, run_demo};

use super::args::DemoArgs;
use super::values::*;

pub(crate) fn demo(args: DemoArgs, limits: &mi_est::resources::Limits) -> Result<()> {
    let config = DemoConfig {
        widths: args.widths,
        activation: args.activation,
        seed: args.seed,
        rho: args.rho,
        n_samples: args.samples,
        ks: args.k,
        limits: *limits,
    };
    print!("{}", run_demo(&config).map_err(|e| flagged(e, DEMO_FLAGS))?);
    Ok(())
}
