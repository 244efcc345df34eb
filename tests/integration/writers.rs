//! Writers and readers of a report folder beside each other (issue 27): a `run` killed
//! at each rename of its reports is finished by the rerun; a second writer is refused;
//! a posterior's recorded training data are found from any folder.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{Scratch, read_raw};
use super::hostile_commands::CASE_LIMIT;
use super::hostile_files::{binary, mi_est, mlp_file, mlp_tensors, safetensors_bytes};

/// A `run` killed (SIGKILL, by strace's fault injection) at each `rename` of its report
/// write leaves a folder that the same command, run again, completes: every report there,
/// the numbers of an uninterrupted run, no journal, lock or temporary left.
#[test]
fn a_run_killed_at_each_rename_of_its_reports_is_finished_by_the_rerun() {
    if Command::new("strace").arg("-V").output().is_err() {
        // `.ci/run` installs strace; on a developer's machine without it, say so.
        assert!(std::env::var_os("CI").is_none(), "strace is needed in CI");
        eprintln!("strace is not installed: the kill test did not run");
        return;
    }
    let dir = Scratch::new("hostile", "kill");
    let tensors = mlp_tensors(&[1, 3, 1], |i| 0.1 * i as f64, |_| -1.0);
    let meta = [("activation", "relu"), ("likelihood", "gaussian")];
    std::fs::write(
        dir.join("good.safetensors"),
        safetensors_bytes(&tensors, &meta),
    )
    .unwrap();
    let args = [
        "run",
        "--posterior",
        "good.safetensors",
        "--k",
        "2,4",
        "--samples",
        "20",
        "--repeats",
        "2",
        "--data",
        "abs:0.1",
    ];
    let with_out = |o: &str| -> Vec<String> {
        args.iter()
            .map(|s| s.to_string())
            .chain(["--out".into(), o.into()])
            .collect()
    };
    let reference = mi_est(
        &dir,
        &with_out("reference")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let files = |o: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join(o))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let want = files("reference");
    let values = |o: &str| -> Vec<u64> {
        read_raw(&dir.join(o).join("raw.parquet"))
            .iter()
            .map(|r| r.mi_nats.to_bits())
            .collect()
    };
    let mut killed = 0;
    for n in 1.. {
        let o = format!("kill-{n}");
        let strace = Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=rename,renameat,renameat2",
                "-e",
            ])
            .arg(format!(
                "inject=rename,renameat,renameat2:signal=KILL:when={n}"
            ))
            .args(["--", binary().0.to_str().unwrap()])
            .args(with_out(&o))
            .current_dir(&*dir)
            .output()
            .unwrap();
        if strace.status.success() {
            // No n-th rename: every kill point has been tried.
            assert_eq!(files(&o), want);
            break;
        }
        killed += 1;
        let rerun = mi_est(
            &dir,
            &with_out(&o).iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert!(
            rerun.status.success(),
            "killed at rename {n}, the rerun failed: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        assert_eq!(files(&o), want, "killed at rename {n}");
        assert_eq!(values(&o), values("reference"), "killed at rename {n}");
    }
    assert!(killed >= 8, "only {killed} renames were killed");
}

/// Two runs into one folder: the second is refused at once, naming the first; the first
/// writes its reports whole.
#[test]
fn a_second_run_into_a_busy_folder_is_refused_naming_the_first() {
    let dir = Scratch::new("hostile", "busy");
    std::fs::write(
        dir.join("good.safetensors"),
        mlp_file(&[1, 3, 1], |i| 0.1 * i as f64, |_| -1.0),
    )
    .unwrap();
    let args = [
        "run",
        "--posterior",
        "good.safetensors",
        "--k",
        "2,64",
        "--samples",
        "100000",
        "--repeats",
        "4",
        "--out",
        "o",
    ];
    let mut first = Command::new(binary().0)
        .args(args)
        .current_dir(&*dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first holds the folder once its lock file names it.
    let lock = dir.join("o").join(mi_est::atomic::LOCK_FILE);
    let start = Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("pid")) {
        assert!(
            start.elapsed() < CASE_LIMIT,
            "the first run never took the folder"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = mi_est(&dir, &args);
    let still_running = first.try_wait().unwrap().is_none();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains("in use by another mi-est") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    assert!(
        still_running,
        "the first run ended before the second was tried: make it longer"
    );
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let raw = read_raw(&dir.join("o").join("raw.parquet"));
    assert_eq!(raw.len(), 12);
    assert!(!dir.join("o").join(".journal.jsonl").exists());
    assert!(!lock.exists());
}

/// A training record's relative data path (issue 27 item 9): `train` writes it relative
/// to the posterior's folder, so `run` finds the data from any folder; an older record,
/// relative to wherever training ran, is read from the current folder, or from the
/// posterior's folder when only there, and refused when the two name different files.
#[test]
fn recorded_training_data_is_found_from_any_folder_or_refused_when_ambiguous() {
    let dir = Scratch::new("hostile", "recorded-data");
    let (a, b) = (dir.join("a"), dir.join("b"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d.join("data")).unwrap();
    }
    let rows: String = (0..20)
        .map(|i| format!("{},{}\n", i as f64 / 10.0, (i % 3) as f64))
        .collect();
    std::fs::write(a.join("data/r.csv"), &rows).unwrap();
    // Trained in `a`, estimated from `b`: the data are found beside the posterior.
    let train = mi_est(
        &a,
        &[
            "train",
            "--data",
            "csv:data/r.csv",
            "--hidden",
            "3",
            "--epochs",
            "1",
            "--out",
            "out/p.safetensors",
        ],
    );
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    let run = mi_est(
        &b,
        &[
            "run",
            "--posterior",
            "../a/out/p.safetensors",
            "--k",
            "2",
            "--samples",
            "5",
            "--repeats",
            "1",
            "--out",
            "o",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bounds = read_parquet_column(&b.join("o/bounds.parquet"), "elbo_per_point");
    assert!(
        bounds.iter().all(|v| v.is_some_and(f64::is_finite)),
        "{bounds:?}"
    );
    // An older record: `csv:data/r.csv` relative to where training ran.
    let config = r#"{"data_spec":"csv:data/r.csv"}"#;
    let meta = [
        ("activation", "relu"),
        ("likelihood", "gaussian"),
        ("train_config", config),
    ];
    let file = safetensors_bytes(
        &mlp_tensors(&[1, 3, 1], |i| 0.1 * i as f64, |_| -1.0),
        &meta,
    );
    std::fs::write(a.join("old.safetensors"), &file).unwrap();
    // From `b`, which has no data/r.csv: the one beside the posterior.
    let run = mi_est(
        &b,
        &[
            "run",
            "--posterior",
            "../a/old.safetensors",
            "--k",
            "2",
            "--samples",
            "5",
            "--repeats",
            "1",
            "--out",
            "o2",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // From `b` with a different data/r.csv of its own: two readings, refused.
    std::fs::write(b.join("data/r.csv"), "1,2\n3,4\n").unwrap();
    let run = mi_est(
        &b,
        &[
            "run",
            "--posterior",
            "../a/old.safetensors",
            "--k",
            "2",
            "--samples",
            "5",
            "--repeats",
            "1",
            "--out",
            "o3",
        ],
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("names two different things"), "{err}");
    assert!(!b.join("o3/raw.parquet").exists());
}

/// One float column of a Parquet file.
fn read_parquet_column(path: &Path, column: &str) -> Vec<Option<f64>> {
    super::common::read_parquet(path)
        .column(column)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect()
}
