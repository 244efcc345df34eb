//! The command's parts: its arguments, the values its flags take, its progress display,
//! and one file per subcommand.

pub(crate) mod args;
pub(crate) mod data;
pub(crate) mod demo;
pub(crate) mod inspect;
pub(crate) mod merge;
pub(crate) mod observer;
pub(crate) mod page;
pub(crate) mod reproduce;
pub(crate) mod run;
pub(crate) mod spec;
pub(crate) mod train;
pub(crate) mod values;

/// This invocation's provenance for a report's manifest: the command line, and the git
/// revision of the working folder where it is a checkout (taken before the work, which
/// may take hours).
pub(crate) fn provenance() -> mi_est::app::Provenance {
    let git_revision = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    mi_est::app::Provenance {
        command_line: std::env::args().collect(),
        git_revision,
    }
}
