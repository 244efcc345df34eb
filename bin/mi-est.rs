//! The `mi-est` command: a thin layer over the `mi_est` library. It parses arguments,
//! shows progress and prints; every computation is a library call.

use anyhow::Result;
use clap::Parser;

mod cli;
use cli::args::{Cli, Command, DemoArgs};
use cli::values::Usage;

/// Runs the command; on failure prints `error: <message>` (the causes joined, no
/// backtrace) and exits with status 1. Bad arguments exit with clap's status 2.
fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes, outermost first (no message repeats its cause).
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", as_flags(&msg.join(": ")));
            // A bad value is a usage error, as clap's own (status 2).
            let usage = e.chain().any(|c| c.is::<Usage>());
            std::process::ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// The library names a setting the way every caller can read (``set `overwrite` ``); the
/// command says which flag sets it.
fn as_flags(message: &str) -> String {
    message
        .replace("set `overwrite`", "pass --overwrite")
        .replace(
            "set `max_memory_gib`, `max_hours`",
            "--max-memory-gib, --max-hours",
        )
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    // The limits every command passes on to what it computes (no global).
    let limits = mi_est::resources::Limits::new(cli.max_memory_gib, cli.max_hours)?;
    let l = &limits;
    match cli.command {
        None => cli::demo::demo(DemoArgs::parse_from(["demo"]), l),
        Some(Command::Demo(a)) => cli::demo::demo(a, l),
        Some(Command::Train(a)) => cli::train::train(a, l),
        Some(Command::Run(a)) => cli::run::run(a, l),
        Some(Command::Merge(a)) => cli::merge::merge(a, l),
        Some(Command::Data(a)) => cli::data::data(a),
        Some(Command::Inspect(a)) => cli::inspect::inspect(a, l),
        Some(Command::Spec(a)) => cli::spec::spec(a, l),
        Some(Command::Page(a)) => cli::page::page(a, l),
        Some(Command::Reproduce(a)) => cli::reproduce::reproduce(a, l),
    }
}
