//! The hostile corpus through every command (issue 27): a generator
//! ([`super::hostile_files`]) writes the files an
//! adversarial user would hand the tool (non-finite and overflowing values, duplicate
//! `.npz` members and spec keys, decompression bombs, absurd work, forged shards), and
//! each case runs the command with a time limit. Every case must end: with a result where
//! one is right, else with exit 1 or 2 and a one-line error that names the problem.
//!
//! The counts (cases, clean errors, results, panics, hangs, wrong results) are printed;
//! `MI_EST_HOSTILE_BIN=<binary>` runs the corpus against another build of the command
//! (an older one, to count what it got wrong) and reports instead of asserting.
//!
//! A `run` killed at each rename of its report write and two writers in one folder are
//! [`super::writers`]' tests.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::Scratch;
use super::hostile_files::*;

/// The longest a case may take before it counts as a hang.
pub(super) const CASE_LIMIT: Duration = Duration::from_secs(60);

/// What a case must do.
#[derive(Clone, Debug)]
enum Expect {
    /// Exit 0, no NaN or ∞ printed.
    Works,
    /// Exit 1 or 2 with one `error:` line containing this excerpt.
    Refused(&'static str),
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    expect: Expect,
}

/// A case running `command` (its words, separated by spaces).
fn case(name: &'static str, command: &str, expect: Expect) -> Case {
    Case {
        name,
        args: command.split_whitespace().map(str::to_string).collect(),
        expect,
    }
}

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The refusal the case expects: exit 1 or 2, one error line with the excerpt.
    CleanError,
    /// The result the case expects.
    Result,
    /// Exit 101, an abort or another signal, or a panic message.
    Panic,
    /// Still running at the time limit (killed).
    Hang,
    /// Exit 0 where a refusal is right, NaN or ∞ printed, an error where a result is
    /// right, or an error that is not one line naming the problem.
    Wrong,
}

/// Writes the corpus into `dir` and lists its cases.
fn corpus(dir: &Path) -> Vec<Case> {
    use Expect::{Refused, Works};
    write_corpus_files(dir);
    // Shards of a real run, forged in six ways with their hashes recomputed.
    let forgeries: [(&'static str, Edit, &'static str); 6] = [
        ("k3", |r| r[0]["k"] = 3.into(), "`k` of the row of item `0`"),
        (
            "magic",
            |r| r[0]["estimator"] = "magic".into(),
            "`estimator` of the row of item `0`",
        ),
        (
            "seed",
            |r| r[0]["seed"] = (r[0]["seed"].as_u64().unwrap() ^ 1).into(),
            "`seed` of the row of item `0`",
        ),
        (
            "nan",
            |r| r[0]["mi_nats"] = "7ff8000000000000".into(),
            "must be finite",
        ),
        (
            "inf",
            |r| r[0]["mi_nats"] = "7ff0000000000000".into(),
            "must be finite",
        ),
        ("twice", |r| r[1] = r[0].clone(), "is in the shards twice"),
    ];
    let mut cases = vec![
        case(
            "μ = 1e155",
            "run --posterior mu-1e155.safetensors --out o",
            Refused("beyond ±1e30"),
        ),
        case(
            "ρ = 1e155",
            "run --posterior rho-1e155.safetensors --out o",
            Refused("above 1e30"),
        ),
        case(
            "σ = e^-120",
            "inspect sigma-tiny.safetensors",
            Refused("below 1e-30"),
        ),
        case(
            "μ = 1e29 (finite, large)",
            "run --posterior mu-1e29.safetensors --k 2 --samples 5 --repeats 1 --out o",
            Works,
        ),
        case(
            "Pyro scale 1e308",
            "run --posterior pyro-scale-1e308.safetensors --k 2 --samples 5 --repeats 1 --out o",
            Refused("1e30"),
        ),
        case(
            "npz member twice",
            "inspect npz-twice.npz",
            Refused("stored twice"),
        ),
        case(
            "npz bomb (256 MiB of zeros)",
            "run --posterior npz-bomb.npz --out o",
            Refused("would need about"),
        ),
        case(
            "npz member declaring more than it holds",
            "inspect npz-lying-size.npz",
            Refused("layers.0.weight_mu"),
        ),
        case(
            "npz cut short",
            "inspect npz-cut.npz",
            Refused("npz-cut.npz"),
        ),
        case(
            "empty posterior file",
            "inspect empty.safetensors",
            Refused("empty.safetensors"),
        ),
        case(
            "a folder as posterior",
            "inspect idx-long",
            Refused("idx-long"),
        ),
        case(
            "/dev/zero as posterior",
            "inspect /dev/zero",
            Refused("would need about"),
        ),
        case(
            "aliased layer indices",
            "run --posterior aliased.safetensors --out o",
            Refused("have the same index"),
        ),
        case(
            "sandwich on a 100,000-wide layer",
            "run --posterior wide.npz --estimators sandwich --k 2 --out o",
            Refused("would need about"),
        ),
        case(
            "exact on two hidden layers of 40",
            "run --posterior two-hidden-40.safetensors --estimators exact --out o",
            Refused("exact I needs"),
        ),
        case(
            "spec key twice",
            "run --posterior good.safetensors --spec spec-twice.json --out o",
            Refused("given twice"),
        ),
        case(
            "spec size 1e18",
            "inspect good.safetensors --spec spec-huge.json",
            Refused("h1"),
        ),
        case(
            "spec on an MLP file with ELBO data",
            "run --posterior good.safetensors --spec spec-good.json --data abs:0.1 --k 2 --samples 5 --out o",
            Refused("abs:0.1"),
        ),
        case(
            "CSV target 1e300",
            "train --data csv:target-1e300.csv --hidden 2 --epochs 1 --out t.safetensors",
            Refused("beyond ±1e30"),
        ),
        case(
            "CSV typo in the first row",
            "train --data csv:typo-first.csv --hidden 2 --out t.safetensors",
            Refused("`1x` is not a number"),
        ),
        case(
            "csv:/dev/zero",
            "train --data csv:/dev/zero --out t.safetensors",
            Refused("would need about"),
        ),
        case(
            "IDX header of 1.37 M images",
            "train --data mnist:idx-huge --out t.safetensors",
            Refused("would need about"),
        ),
        case(
            "IDX of 2,000 images over 64 MiB",
            "train --data mnist:idx-long --out t.safetensors",
            Refused("but the file has more"),
        ),
        case(
            "mixture of dimension 1e12",
            "train --data mixture:3:1000000000000 --out t.safetensors",
            Refused("would need about"),
        ),
        case(
            "--repeats 1e9",
            "run --posterior good.safetensors --repeats 1000000000 --out o",
            Refused("at most 10000000 items"),
        ),
        case(
            "--elbo-samples 1e11",
            "run --posterior regression.safetensors --data abs:0.1 --elbo-samples 100000000000 --k 2 --out o",
            Refused("would need about"),
        ),
        case(
            "--k 1e12",
            "run --posterior good.safetensors --k 1000000000000 --out o",
            Refused("would need about"),
        ),
        case(
            "train --epochs 1e12",
            "train --data abs:0.1 --epochs 1000000000000 --out t.safetensors",
            Refused("would need about"),
        ),
        case(
            "train --predictive-samples 1e13",
            "train --data abs:0.1 --predictive-samples 10000000000000 --out t.safetensors",
            Refused("would need about"),
        ),
        case(
            "train --elbo-samples 1e11",
            "train --data abs:0.1 --elbo-samples 100000000000 --out t.safetensors",
            Refused("would need about"),
        ),
        case(
            "train --k 1e9",
            "train --data abs:0.1 --objective sgm --k 1000000000 --out t.safetensors",
            Refused("would need about"),
        ),
        case(
            "train --hidden 1e8",
            "train --data abs:0.1 --hidden 100000000 --out t.safetensors",
            Refused("would need about"),
        ),
        case(
            "demo --widths 1,100000,1",
            "demo --widths 1,100000,1",
            Refused("would need about"),
        ),
        case(
            "spec of μ = 1e155",
            "spec --sequential mu-1e155.safetensors --out s.json",
            Refused("beyond ±1e30"),
        ),
        case(
            "inspect --layers naming no layer",
            "inspect good.safetensors --layers nope",
            Refused("`nope`"),
        ),
        case(
            "page of a folder whose summary is /dev/zero",
            "page endless-page",
            Works,
        ),
        case(
            "reproduce with a forged recorded S",
            "reproduce estimator-cost --quick --samples-from huge-samples --out rq",
            Refused("no S recorded"),
        ),
        case(
            "annealed bounds with no temperatures",
            "run --posterior good.safetensors --estimators annealed --temperatures 0 --out o",
            Refused("--temperatures"),
        ),
        case(
            "annealed bounds with 2^64 - 1 temperatures",
            "run --posterior good.safetensors --estimators annealed --temperatures 18446744073709551615 --samples 2 --repeats 1 --out o",
            Refused("years of computing"),
        ),
        case(
            "data set that does not exist",
            "data bogus",
            Refused("bogus"),
        ),
        case(
            "merge of a folder that does not exist",
            "merge --out nowhere",
            Refused("no such folder"),
        ),
    ];
    for (name, edit, excerpt) in forgeries {
        let shards = dir.join(format!("shards-{name}"));
        for i in ["0", "1"] {
            let out = Command::new(binary().0)
                .args([
                    "run",
                    "--posterior",
                    "good.safetensors",
                    "--estimators",
                    "infonce,exact",
                    "--k",
                    "2",
                    "--samples",
                    "5",
                    "--repeats",
                    "2",
                    "--num-shards",
                    "2",
                    "--shard-index",
                    i,
                    "--out",
                ])
                .arg(&shards)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        forge(&shards, edit);
        let shards = shards.file_name().unwrap().to_string_lossy().into_owned();
        cases.push(Case {
            name: Box::leak(format!("forged shard: {name}").into_boxed_str()),
            args: vec!["merge".into(), "--out".into(), shards],
            expect: Refused(excerpt),
        });
    }
    cases
}

/// Runs one case with the time limit and the memory limit of the test machine.
fn run_case(dir: &Path, c: &Case) -> (Outcome, String) {
    let mut child = Command::new(binary().0)
        .args(["--max-memory-gib", "2"])
        .args(&c.args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > CASE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(status) = status else {
        return (Outcome::Hang, format!("still running after {CASE_LIMIT:?}"));
    };
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    let said = stderr.lines().last().unwrap_or_default().to_string();
    if stderr.contains("panicked") || stderr.contains("memory allocation of") {
        return (Outcome::Panic, said);
    }
    match (status.code(), &c.expect) {
        (None, _) | (Some(101), _) => (Outcome::Panic, format!("{status}: {said}")),
        (Some(0), Expect::Works) => {
            let bad = ["NaN", "inf"].iter().any(|t| {
                stdout
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| w == *t)
            });
            if bad {
                (Outcome::Wrong, "printed NaN or inf".into())
            } else {
                (Outcome::Result, String::new())
            }
        }
        (Some(0), Expect::Refused(_)) => (Outcome::Wrong, "accepted (exit 0)".into()),
        (Some(1 | 2), Expect::Refused(excerpt)) => {
            if errors.len() == 1 && errors[0].contains(excerpt) && !errors[0].contains('\n') {
                (Outcome::CleanError, said)
            } else {
                (Outcome::Wrong, format!("error without `{excerpt}`: {said}"))
            }
        }
        (Some(code), _) => (Outcome::Wrong, format!("exit {code}: {said}")),
    }
}

#[test]
fn the_hostile_corpus_ends_with_a_result_or_a_named_error_in_every_command() {
    let dir = Scratch::new("hostile", "corpus");
    let cases = corpus(&dir);
    let (_, other) = binary();
    let mut counts = std::collections::BTreeMap::new();
    let mut report = String::new();
    let mut failures = Vec::new();
    for c in &cases {
        let (outcome, said) = run_case(&dir, c);
        *counts.entry(format!("{outcome:?}")).or_insert(0) += 1;
        let said = said.chars().take(160).collect::<String>();
        report.push_str(&format!("{outcome:>10?}  {}  {said}\n", c.name));
        if !matches!(outcome, Outcome::CleanError | Outcome::Result) {
            failures.push(format!("{}: {outcome:?}: {said}", c.name));
        }
        // Nothing partial: a refused run leaves no report and no temporary behind.
        if matches!(outcome, Outcome::CleanError) && !other {
            let o = dir.join("o");
            if o.exists() {
                let left: Vec<String> = std::fs::read_dir(&o)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                assert!(
                    left.is_empty(),
                    "{}: left {left:?} in its output folder",
                    c.name
                );
            }
        }
        let _ = std::fs::remove_dir_all(dir.join("o"));
    }
    println!("{} cases: {counts:?}\n{report}", cases.len());
    if !other {
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
