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
