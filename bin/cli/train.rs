//! `mi-est train`: a mean-field MLP trained and evaluated, with its progress shown.

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use mi_est::study::{Objective, TrainRun, default_posterior_path, run_training};
use mi_est::train::{StepInfo, TrainConfig};

use super::args::{ObjectiveArg, TrainArgs};
use super::data::resolve_mnist;
use super::values::*;

/// Training's progress: an indicatif bar on a terminal, a log line every 5 s (and at the
/// last step) otherwise.
struct Progress {
    epochs: u64,
    state: std::sync::Mutex<(Option<ProgressBar>, Instant)>,
}

impl Progress {
    fn new(epochs: u64) -> Self {
        Progress {
            epochs,
            state: std::sync::Mutex::new((None, Instant::now())),
        }
    }

    fn finish(&self) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = &state.0 {
            b.finish();
        }
    }
}

impl mi_est::observe::Observer for Progress {
    fn step(&self, info: &StepInfo) {
        let total_steps = info.steps_per_epoch * self.epochs;
        let msg = format!(
            "epoch {} | ELBO/N {:.4}{}",
            info.epoch + 1,
            info.elbo_per_point,
            info.mi_term
                .map_or(String::new(), |m| format!(" | I^K {m:.3}"))
        );
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if std::io::stderr().is_terminal() {
            let bar = state.0.get_or_insert_with(|| {
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
        } else if state.1.elapsed() >= Duration::from_secs(5) || info.step + 1 == total_steps {
            eprintln!("[train] step {}/{} {msg}", info.step + 1, total_steps);
            state.1 = Instant::now();
        }
    }
}

pub(crate) fn train(a: TrainArgs, limits: &mi_est::resources::Limits) -> Result<()> {
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
        limits: *limits,
    };
    let progress = Progress::new(run.config.epochs as u64);
    let report = run_training(&run, &progress).map_err(|e| flagged(e, TRAIN_FLAGS))?;
    progress.finish();
    mi_est::io::save(&out, &report.file, a.overwrite)?;
    print!("{report}");
    println!("posterior written to {}", out.display());
    Ok(())
}
