//! The `mi-est` command end to end.

use std::process::Command;

fn mi_est(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args(args)
        .output()
        .expect("run mi-est")
}

#[test]
fn demo_runs_on_the_bundled_default() {
    let out = mi_est(&[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[784, 10, 10]"), "{text}");
    assert!(text.contains("ln|G|               15.1044"), "{text}");
    assert!(text.contains("exact-permanent"), "{text}");
}

#[test]
fn bad_demo_arguments_exit_non_zero_with_a_named_error() {
    for (args, needle) in [
        (vec!["demo", "--widths", "3,0,2"], "'0' for '--widths"),
        (vec!["demo", "--activation", "sigmoid"], "sigmoid"),
        (vec!["demo", "--samples", "0"], "'0' for '--samples"),
        (vec!["demo", "--k", "0"], "'0' for '--k"),
        (vec!["demo", "--rho", "-800"], "underflows"),
    ] {
        let out = mi_est(&args);
        // A bad value is a usage error, with clap's status 2.
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

fn tmp_dir(name: &str) -> crate::common::Scratch {
    crate::common::Scratch::new("cli", name)
}

#[test]
fn train_writes_a_loadable_posterior_and_refuses_to_overwrite() {
    let dir = tmp_dir("train");
    let out = dir.join("p.safetensors");
    let out_s = out.to_str().unwrap();
    let args = [
        "train",
        "--data",
        "abs:0.1",
        "--hidden",
        "2",
        "--epochs",
        "2",
        "--batch",
        "10",
        "--lr",
        "5e-3",
        "--objective",
        "sgm",
        "--k",
        "2",
        "--likelihood",
        "gaussian:10",
        "--predictive-samples",
        "20",
        "--elbo-samples",
        "4",
        "--eval-k",
        "8",
        "--mi-samples",
        "20",
        "--out",
        out_s,
    ];
    let run = mi_est(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = String::from_utf8(run.stdout).unwrap();
    assert!(
        text.contains("test MSE") && text.contains("exact I") && text.contains("L^K / N"),
        "{text}"
    );
    // Off a terminal, progress comes as log lines.
    assert!(String::from_utf8_lossy(&run.stderr).contains("[train] step 20/20"));
    let f = mi_est::io::load(&out).unwrap();
    assert_eq!(f.posterior.arch().unwrap().widths(), &[1, 2, 1]);
    assert!(f.train_config.unwrap().contains("sgm(K=2)"));
    let again = mi_est(&args);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn train_errors_exit_non_zero_and_write_nothing() {
    let dir = tmp_dir("train-bad");
    let csv = dir.join("huge.csv");
    std::fs::write(&csv, "1,1e200\n2,1e200\n3,1e200\n").unwrap();
    let csv_arg = format!("csv:{}", csv.display());
    let out = dir.join("never.safetensors");
    let out_s = out.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["train", "--data", "mnist:/no/such/dir"],
            "/no/such/dir",
        ),
        (
            vec!["train", "--data", "abs:0.1", "--lr", "0"],
            "'0' for '--lr",
        ),
        (
            vec!["train", "--data", "abs:0.1", "--batch", "0"],
            "'0' for '--batch",
        ),
        (
            vec![
                "train",
                "--data",
                "abs:0.1",
                "--objective",
                "sgm-sandwich",
                "--k",
                "1",
            ],
            "`1` for --k",
        ),
        (
            vec!["train", "--data", "abs:0.1", "--objective", "adam"],
            "objective",
        ),
        (vec!["train", "--data", "abs:x"], "abs:<alpha>"),
        (
            vec!["train", "--data", csv_arg.as_str(), "--batch", "1"],
            "is not finite or beyond ±1e30",
        ),
    ] {
        let mut args = args.clone();
        args.extend(["--out", out_s]);
        let run = mi_est(&args);
        assert!(!run.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} left a file");
    }
}

#[test]
fn reproduce_bad_input_exits_non_zero_with_a_named_error() {
    let dir = tmp_dir("reproduce-bad");
    let out = dir.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["reproduce", "mode-collapse", "--out", out],
            "mode-collapse",
        ),
        (
            vec![
                "reproduce",
                "mnist",
                "--quick",
                "--data",
                "/no/mnist/here",
                "--out",
                out,
            ],
            "/no/mnist/here",
        ),
        (
            vec![
                "reproduce",
                "tractable-bnn",
                "--quick",
                "--out",
                "/proc/mi-est-no",
            ],
            "/proc/mi-est-no",
        ),
    ] {
        let o = mi_est(&args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let ok = mi_est(&["reproduce", "tractable-bnn", "--quick", "--out", out]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(dir.join("tractable-bnn-quick/summary.md").is_file());
    let again = mi_est(&["reproduce", "tractable-bnn", "--quick", "--out", out]);
    assert!(
        !again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already there")
    );
}

#[test]
fn train_with_the_exact_and_sandwich_symmetrized_objectives() {
    for objective in ["sgm-exact", "sgm-sandwich"] {
        let dir = tmp_dir(objective);
        let out = dir.join("p.safetensors");
        let run = mi_est(&[
            "train",
            "--data",
            "abs:0.1",
            "--hidden",
            "3",
            "--epochs",
            "3",
            "--batch",
            "10",
            "--lr",
            "1e-2",
            "--objective",
            objective,
            "--k",
            "8",
            "--init-rho",
            "-1",
            "--likelihood",
            "gaussian:10",
            "--predictive-samples",
            "20",
            "--elbo-samples",
            "4",
            "--eval-k",
            "8",
            "--mi-samples",
            "20",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let text = String::from_utf8(run.stdout).unwrap();
        assert!(text.contains("mean symmetry term"), "{text}");
        // Overlapping units (σ = softplus(−1) = 0.31 around μ ~ N(0, 0.1²)): the term
        // is below its cap and has a real gradient.
        let ratio: f64 = text
            .split("|grad term| / |grad L| = ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("no gradient ratio in {text}"));
        assert!(ratio > 1e-4, "{objective}: gradient ratio {ratio}");
        assert!(
            mi_est::io::load(&out)
                .unwrap()
                .train_config
                .unwrap()
                .contains(objective)
        );
    }
}

/// A Parquet report without its measured wall-time columns (all else must match
/// between an interrupted and an uninterrupted run).
fn without_wall_times(p: &std::path::Path) -> polars::prelude::DataFrame {
    let df = crate::common::read_parquet(p);
    let keep: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| !c.contains("wall"))
        .collect();
    df.select(keep).unwrap()
}

/// Issue 8 item 3: `kill -9` in the middle of `mi-est run`, then the same command again:
/// it resumes from the journal and its tables equal an uninterrupted run's (all columns
/// but wall times); no half-written Parquet file is ever visible.
#[test]
fn a_killed_run_resumes_and_matches_an_uninterrupted_run() {
    let dir = tmp_dir("resume");
    let (killed, clean) = (dir.join("killed"), dir.join("clean"));
    let args = |out: &std::path::Path| -> Vec<String> {
        [
            "run",
            "--estimators",
            "infonce,exact",
            "--k",
            "64,256,1024,4096",
            "--samples",
            "1500",
            "--repeats",
            "6",
            "--elbo-samples",
            "5",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args(args(&killed))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = killed.join(".journal.jsonl");
    let started = std::time::Instant::now();
    loop {
        let lines = std::fs::read_to_string(&journal).map_or(0, |t| t.lines().count());
        if lines >= 6 {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 120,
            "the run recorded nothing in 2 minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before the kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let recorded = std::fs::read_to_string(&journal).unwrap().lines().count() - 1;
    assert!(
        recorded < 30,
        "killed too late: {recorded} of 30 items done"
    );
    assert!(!killed.join("raw.parquet").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&killed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let resumed = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args(args(&killed))
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(
        String::from_utf8_lossy(&resumed.stderr).contains("resuming"),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(!journal.exists(), "the journal is removed at the end");
    let fresh = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args(args(&clean))
        .output()
        .unwrap();
    assert!(fresh.status.success());
    let a = crate::common::read_raw(&killed.join("raw.parquet"));
    let b = crate::common::read_raw(&clean.join("raw.parquet"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        let (mut x, mut y) = (x.clone(), y.clone());
        x.wall_s = 0.0;
        y.wall_s = 0.0;
        // The posterior path is the same bundled file in both.
        assert_eq!(x, y);
    }
    for name in ["bias_variance.parquet", "bounds.parquet"] {
        assert!(
            without_wall_times(&killed.join(name))
                .equals_missing(&without_wall_times(&clean.join(name))),
            "{name} differs"
        );
    }
}

/// Issue 8 item 3 for `reproduce`: a killed `reproduce mnist --quick` resumes from its
/// journal and writes the same table as an uninterrupted run (all but wall times), plus
/// a manifest with the input files' hashes.
#[test]
fn a_killed_reproduction_resumes_and_matches_an_uninterrupted_one() {
    let dir = tmp_dir("resume-reproduce");
    let (killed, clean) = (dir.join("killed"), dir.join("clean"));
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-small");
    let args = |out: &std::path::Path| {
        vec![
            "reproduce".to_string(),
            "mnist".into(),
            "--quick".into(),
            "--data".into(),
            data.into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args(args(&killed))
        .env("RAYON_NUM_THREADS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = killed.join("mnist-quick/.journal.jsonl");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&journal).map_or(0, |t| t.lines().count()) < 2 {
        assert!(
            started.elapsed().as_secs() < 120,
            "nothing recorded in 2 minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!killed.join("mnist-quick/runs.parquet").exists());
    let resumed = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args(args(&killed))
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("resuming"));
    assert!(!journal.exists());
    let fresh = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args(args(&clean))
        .output()
        .unwrap();
    assert!(fresh.status.success());
    assert!(
        without_wall_times(&killed.join("mnist-quick/runs.parquet"))
            .equals_missing(&without_wall_times(&clean.join("mnist-quick/runs.parquet")))
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(killed.join("mnist-quick/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["inputs"].as_array().unwrap().len(), 4);
    assert_eq!(manifest["seed"], 0);
    // The resumed run says how many results it read back (its wall time covers the
    // rest only); the uninterrupted one read none.
    let resumed = manifest["resumed_from_journal"].as_u64().unwrap();
    assert!(resumed >= 1, "{manifest}");
    let summary = std::fs::read_to_string(killed.join("mnist-quick/summary.md")).unwrap();
    assert!(
        summary.contains(&format!("{resumed} results were read from the journal")),
        "{summary}"
    );
    let clean_manifest = std::fs::read_to_string(clean.join("mnist-quick/manifest.json")).unwrap();
    assert!(clean_manifest.contains("\"resumed_from_journal\": 0"));
    assert!(
        !std::fs::read_to_string(clean.join("mnist-quick/summary.md"))
            .unwrap()
            .contains("read from the journal")
    );
    assert!(manifest["version"].is_string() && manifest["command_line"].is_array());
}
