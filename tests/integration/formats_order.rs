//! Which posterior a file holds when its names leave room for doubt: the layer order,
//! posteriors of the same name, the prior scale of files that record none (see
//! [`super::formats`] for the naming schemes).

use std::path::Path;
use std::process::Command;

use mi_est::io::inspect;

use crate::common::Scratch;

use super::formats::*;

/// Exact I of a file read with `options`, and its widths.
fn exact_i(path: &Path, options: mi_est::io::ReadOptions<'_>) -> (Vec<usize>, f64) {
    let (pf, _) = inspect(path, options).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let q = &pf.posterior;
    let est = mi_est::estimators::exact_estimator(q, 200, 3, mi_est::estimators::ExactLimits::FULL)
        .unwrap()
        .unwrap()
        .estimate(q)
        .unwrap();
    (q.arch().unwrap().widths().to_vec(), est.value)
}

/// Issue 26 item 1: a 3→5→3 net whose layers are `encoder` and `decoder` chains in both
/// orders. Read from safetensors (which keeps no order) it is refused naming both
/// candidates; the .npz states encoder first (or, rewritten, decoder first) and is read in
/// its own order; `--layers` states it for the safetensors file. The two orders give
/// different I (near ln 5! against near ln 3!): the order is never guessed.
#[test]
fn a_layer_order_nothing_states_is_refused_and_each_stated_order_is_read_as_stated() {
    let st = fixture("bt-encoder-decoder.safetensors");
    let e = inspect(&st, Default::default()).unwrap_err().to_string();
    assert!(e.contains("ambiguous"), "{e}");
    assert!(e.contains("encoder → decoder (widths [3, 5, 3])"), "{e}");
    assert!(e.contains("decoder → encoder (widths [5, 3, 5])"), "{e}");
    assert!(e.contains("--layers"), "{e}");
    let forward: Vec<String> = vec!["encoder".into(), "decoder".into()];
    let backward: Vec<String> = vec!["decoder".into(), "encoder".into()];
    let given = |l: &'static [String]| mi_est::io::ReadOptions {
        layers: Some(l),
        ..Default::default()
    };
    let forward: &'static [String] = Box::leak(forward.into_boxed_slice());
    let backward: &'static [String] = Box::leak(backward.into_boxed_slice());
    let (w_npz, i_npz) = exact_i(&fixture("bt-encoder-decoder.npz"), Default::default());
    let (w_st, i_st) = exact_i(&st, given(forward));
    let (w_rev_npz, i_rev_npz) = exact_i(&fixture("bt-decoder-first.npz"), Default::default());
    let (w_rev_st, i_rev_st) = exact_i(&st, given(backward));
    assert_eq!(
        (w_npz.as_slice(), w_st.as_slice()),
        (&[3, 5, 3][..], &[3, 5, 3][..])
    );
    assert_eq!(
        (w_rev_npz.as_slice(), w_rev_st.as_slice()),
        (&[5, 3, 5][..], &[5, 3, 5][..])
    );
    // Same tensors, same order, same seed: the same bits.
    assert_eq!(i_npz.to_bits(), i_st.to_bits());
    assert_eq!(i_rev_npz.to_bits(), i_rev_st.to_bits());
    // Near ln 5! = 4.79 and ln 3! = 1.79 (a few units overlap a little after training).
    assert!(
        i_npz > 120f64.ln() - 0.3 && i_npz < 120f64.ln() + 0.01,
        "{i_npz}"
    );
    assert!(
        i_rev_npz > 6f64.ln() - 0.3 && i_rev_npz < 6f64.ln() + 0.01,
        "{i_rev_npz}"
    );
}

/// Issue 26 item 2: two different nets under the same file name keep their own rows, with
/// ids from the shortest path suffix that tells them apart, and each row's exact I equals
/// that file's own run; one file given twice is refused.
#[test]
fn same_named_posteriors_are_never_pooled() {
    let dir = Scratch::new("formats", "same-name");
    for (sub, src) in [
        ("a", "bayesian-torch.safetensors"),
        ("b", "bt-features-classifier.safetensors"),
    ] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::copy(fixture(src), dir.join(sub).join("post.safetensors")).unwrap();
    }
    let run = |posteriors: &[&str], out: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_mi-est"))
            .current_dir(&*dir)
            .args([
                "run",
                "--estimators",
                "exact",
                "--samples",
                "40",
                "--repeats",
                "2",
                "--posterior",
            ])
            .args(posteriors)
            .args(["--out", out])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bd = crate::common::read_parquet(&dir.join(out).join("bounds.parquet"));
        let col = |name: &str| bd.column(name).unwrap().as_materialized_series().clone();
        let ids: Vec<String> = col("posterior_id")
            .str()
            .unwrap()
            .iter()
            .map(|s| s.unwrap().to_string())
            .collect();
        let mi: Vec<f64> = col("mi_nats")
            .f64()
            .unwrap()
            .iter()
            .map(Option::unwrap)
            .collect();
        ids.into_iter().zip(mi).collect::<Vec<_>>()
    };
    let both = run(&["a/post.safetensors", "b/post.safetensors"], "both");
    assert_eq!(
        both.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["a/post", "b/post"]
    );
    // The grid's seeds depend on the item's posterior index: each file alone at its index.
    let a = run(&["a/post.safetensors"], "a-alone");
    assert_eq!(both[0].1.to_bits(), a[0].1.to_bits());
    assert!((both[0].1 - both[1].1).abs() > 1.0, "{both:?}");
    let o = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .current_dir(&*dir)
        .args([
            "run",
            "--posterior",
            "a/post.safetensors",
            "./a/post.safetensors",
            "--out",
            "twice",
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("the file is given twice"),
        "{e}"
    );
}

/// Issue 26 item 9: `--prior-scale` sets the prior of a file that records none, the file's
/// own `prior_scale` metadata wins, and the bounds table says which prior it used.
#[test]
fn the_prior_scale_flag_serves_files_that_record_none() {
    let dir = Scratch::new("formats", "prior");
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/posteriors/mnist-small-784-10-10-mfvi.safetensors");
    let run = |file: &Path, out: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_mi-est"))
            .args([
                "run",
                "--estimators",
                "exact",
                "--samples",
                "20",
                "--repeats",
                "1",
                "--prior-scale",
                "0.5",
                "--posterior",
            ])
            .arg(file)
            .arg("--out")
            .arg(dir.join(out))
            // From the repository folder: the bundled file's training data are found there.
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bd = crate::common::read_parquet(&dir.join(out).join("bounds.parquet"));
        let col = |name: &str| -> f64 {
            bd.column(name)
                .unwrap()
                .as_materialized_series()
                .f64()
                .unwrap()
                .get(0)
                .unwrap()
        };
        (
            col("prior_scale"),
            col("kl_nats"),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (s, kl_half, text) = run(&fixture("bayesian-torch.safetensors"), "foreign");
    assert_eq!(s, 0.5);
    assert!(text.contains("N(0, 0.5²)"), "{text}");
    // KL(q ‖ N(0, s²I)) in closed form from the file as read.
    let q = mi_est::io::load(&fixture("bayesian-torch.safetensors"))
        .unwrap()
        .posterior;
    assert!((kl_half - q.kl_to_prior(0.5).unwrap()).abs() < 1e-9 * kl_half.abs());
    let (s, _, _) = run(&bundled, "ours");
    let recorded = mi_est::io::load(&bundled).unwrap().prior_scale;
    assert_eq!(s, recorded, "the file's metadata wins");
}
