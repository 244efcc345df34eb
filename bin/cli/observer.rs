//! What the command shows of long work.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// What the command shows of long work: a progress bar on a terminal, a log line every
/// 5 s (and at the end) elsewhere, and a line when a journal lets the work resume.
pub struct CliObserver {
    /// `[run]` or `[reproduce]`.
    tag: &'static str,
    /// What the items are (`estimates`, `runs`).
    items: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    last: std::sync::Mutex<Instant>,
}

impl CliObserver {
    /// An observer whose lines start with `tag` and count `items`.
    pub fn new(tag: &'static str, items: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(&format!(
                    "{{bar:30}} {{pos}}/{{len}} {items} {{elapsed_precise}} eta {{eta}}"
                ))
                .expect("template"),
            );
            b
        });
        CliObserver {
            tag,
            items,
            bar,
            started: Instant::now(),
            last: std::sync::Mutex::new(Instant::now()),
        }
    }
}

impl mi_est::observe::Observer for CliObserver {
    fn progress(&self, done: usize, total: usize) {
        match &self.bar {
            Some(b) => {
                b.set_length(total as u64);
                b.set_position(done as u64);
            }
            None => {
                let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= Duration::from_secs(5) || done == total {
                    eprintln!(
                        "{} {done}/{total} {}, {:.1} s",
                        self.tag,
                        self.items,
                        self.started.elapsed().as_secs_f64()
                    );
                    *last = Instant::now();
                }
            }
        }
    }

    fn resuming(&self, done: usize, journal: &std::path::Path) {
        eprintln!(
            "{} resuming: {done} finished {} taken from {}",
            self.tag,
            self.items,
            journal.display()
        );
    }
}

/// What the command shows of a download: a byte bar per file on a terminal, a log line
/// every 5 s (and at the end of each file) elsewhere.
pub struct DownloadObserver {
    bar: Option<ProgressBar>,
    state: std::sync::Mutex<(String, Instant)>,
}

impl DownloadObserver {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{msg:28} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("template"),
            );
            b
        });
        DownloadObserver {
            bar,
            state: std::sync::Mutex::new((String::new(), Instant::now())),
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl mi_est::observe::Observer for DownloadObserver {
    fn bytes(&self, file: &str, done: u64, total: Option<u64>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let new_file = state.0 != file;
        if new_file {
            state.0 = file.to_string();
        }
        match &self.bar {
            Some(b) => {
                if new_file {
                    b.set_message(file.to_string());
                }
                b.set_length(total.unwrap_or(0));
                b.set_position(done);
            }
            None => {
                let finished = total == Some(done);
                if new_file || finished || state.1.elapsed() >= Duration::from_secs(5) {
                    let of = total.map_or(String::new(), |t| format!(" of {t}"));
                    eprintln!("[data] {file}: {done}{of} bytes");
                    state.1 = Instant::now();
                }
            }
        }
    }
}
