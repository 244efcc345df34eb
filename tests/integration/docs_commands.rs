//! Every `mi-est` command that README.md, REPRODUCTION.md, data/README.md and docs/ show
//! works as written on a fresh copy of the repository, with its committed reports present
//! (issue 26 item 10): each command is run from a copy of `data/` and `reports/`, as a
//! newcomer would run it, and must exit 0.
//!
//! What is run differently, and why:
//! * `reproduce` without `--quick` gets `--quick` added: the full experiments are runs of
//!   minutes to hours, not tests; the quick variant goes through the same words, data
//!   choice and output folder.
//! * MNIST from the data cache (`--data mnist`, and the experiments that read MNIST) comes
//!   from `MI_EST_MNIST` = the bundled subset: no download (the fetch tests cover that
//!   against a server on 127.0.0.1), and `data mnist`, which only downloads, is left out.
//! * Words in angle brackets (`<folder of the MNIST IDX files>`) stand for the reader's
//!   own values; such commands are left out. So are `cargo bench` lines (not `mi-est`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::Scratch;

/// The documents whose commands are checked.
const DOCS: &[&str] = &[
    "README.md",
    "REPRODUCTION.md",
    "data/README.md",
    "docs/mathematics.md",
    "docs/posteriors.md",
    "docs/reports.md",
    "docs/specs.md",
];

/// The `mi-est` commands of a markdown text: lines of fenced code blocks and inline code
/// spans that start with `cargo run --release --` or `mi-est `, joined across `\`
/// continuations, without a trailing `# comment`; as their argument lists.
fn commands(text: &str) -> Vec<Vec<String>> {
    let mut found: Vec<String> = Vec::new();
    let mut fenced = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            let l = line.trim();
            let joined = if pending.is_empty() {
                l.to_string()
            } else {
                format!("{pending} {l}")
            };
            if let Some(head) = joined.strip_suffix('\\') {
                pending = head.trim_end().to_string();
                continue;
            }
            pending.clear();
            found.push(joined);
        } else {
            // Inline code spans that are whole commands (`cargo run --release -- …`);
            // an inline `mi-est run` is a mention, not a command.
            let mut parts = line.split('`');
            parts.next();
            while let Some(code) = parts.next() {
                if code.starts_with("cargo run --release -- ") {
                    found.push(code.to_string());
                }
                parts.next();
            }
        }
    }
    found
        .into_iter()
        .filter_map(|c| {
            let c = c.split(" #").next().unwrap_or("").trim().to_string();
            let rest = c
                .strip_prefix("cargo run --release -- ")
                .or_else(|| c.strip_prefix("mi-est "))?;
            let args: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
            SUBCOMMANDS
                .contains(&args.first()?.as_str())
                .then_some(args)
        })
        .collect()
}

/// The command's subcommands (a line such as `mi-est = { git = … }` is not a command).
const SUBCOMMANDS: &[&str] = &[
    "demo",
    "train",
    "run",
    "merge",
    "inspect",
    "page",
    "spec",
    "data",
    "reproduce",
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn every_command_the_docs_show_works_as_written_on_a_fresh_copy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = Scratch::new("docs", "fresh");
    for d in ["data", "reports"] {
        copy_dir(&root.join(d), &copy.join(d));
    }
    let subset: PathBuf = copy.join("data/mnist-small");
    let mut ran = Vec::new();
    let mut failures = Vec::new();
    for doc in DOCS {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for mut args in commands(&text) {
            let shown = args.join(" ");
            // Reader's values, the bad-input table's own rows (their test runs them),
            // downloads, and the subcommand list of `mi-est reproduce <experiment>`.
            if shown.contains('<')
                || args.first().is_none_or(|a| a.starts_with('-'))
                || args[..] == ["data", "mnist"]
                || doc == &"README.md" && text_row_of_bad_input(&text, &shown)
            {
                continue;
            }
            if args[0] == "reproduce" && !args.iter().any(|a| a == "--quick") {
                args.push("--quick".into());
            }
            // Each command as on a fresh clone: no output of an earlier one in the way.
            for made in ["reports/run", "reports/mine", "runs"] {
                let _ = std::fs::remove_dir_all(copy.join(made));
            }
            let args = expand_globs(&copy, args);
            let started = std::time::Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_mi-est"))
                .args(&args)
                .current_dir(&*copy)
                .env("MI_EST_MNIST", &subset)
                .env("MI_EST_DATA", copy.join("cache"))
                .output()
                .unwrap();
            ran.push(format!(
                "{doc}: mi-est {} ({:.1} s)",
                args.join(" "),
                started.elapsed().as_secs_f64()
            ));
            if !out.status.success() {
                failures.push(format!(
                    "{doc}: `mi-est {}` exited {:?}:\n{}",
                    args.join(" "),
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(
        ran.len() >= 25,
        "only {} commands found:\n{}",
        ran.len(),
        ran.join("\n")
    );
    println!("{}", ran.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `dir/*.ext` arguments expanded as a shell would (sorted), relative to `cwd`.
fn expand_globs(cwd: &Path, args: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for a in args {
        match a.rsplit_once("/*") {
            Some((dir, suffix)) if !a.starts_with('-') => {
                let mut names: Vec<String> = std::fs::read_dir(cwd.join(dir))
                    .map(|rd| {
                        rd.filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .filter(|n| n.ends_with(suffix))
                            .map(|n| format!("{dir}/{n}"))
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                if names.is_empty() {
                    out.push(a);
                } else {
                    out.extend(names);
                }
            }
            _ => out.push(a),
        }
    }
    out
}

/// Whether `command` is a row of the README's bad-input table (those fail on purpose).
fn text_row_of_bad_input(readme: &str, command: &str) -> bool {
    let start = readme.find("<!-- bad-input-table:start -->").unwrap_or(0);
    let end = readme.find("<!-- bad-input-table:end -->").unwrap_or(0);
    readme[start..end].contains(&format!("`mi-est {command}`"))
}

#[test]
fn commands_are_found_in_code_blocks_and_spans() {
    let md = "a mention `mi-est run --k`, a command `cargo run --release -- inspect a.safetensors`\n```sh\ncargo run --release -- run --k 1,2 \\\n    --out x   # comment\nmi-est = { git = \"x\" }\n```\n";
    assert_eq!(
        commands(md),
        vec![
            vec!["inspect".to_string(), "a.safetensors".into()],
            vec![
                "run".to_string(),
                "--k".into(),
                "1,2".into(),
                "--out".into(),
                "x".into()
            ],
        ]
    );
}
