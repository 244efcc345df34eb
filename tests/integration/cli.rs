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
        (vec!["demo", "--widths", "3,0,2"], "widths[1]"),
        (vec!["demo", "--activation", "sigmoid"], "sigmoid"),
        (vec!["demo", "--samples", "0"], "samples"),
        (vec!["demo", "--k", "0"], "`k` = 0"),
        (vec!["demo", "--rho", "-800"], "underflows"),
    ] {
        let out = mi_est(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mi-est-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    assert_eq!(f.posterior.arch().widths(), &[1, 2, 1]);
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
        (vec!["train", "--data", "abs:0.1", "--lr", "0"], "`lr` = 0"),
        (
            vec!["train", "--data", "abs:0.1", "--batch", "0"],
            "batch_size",
        ),
        (
            vec!["train", "--data", "abs:0.1", "--objective", "adam"],
            "objective",
        ),
        (vec!["train", "--data", "abs:x"], "abs:<alpha>"),
        (
            vec!["train", "--data", csv_arg.as_str(), "--batch", "1"],
            "diverged at step 0",
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
