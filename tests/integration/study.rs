//! `mi-est run` and `merge` (issue 5): Parquet read back through polars, sharding,
//! bad input.

use crate::common::{read_parquet, read_raw};
use mi_est::app::{RunOptions, merge, run};
use mi_est::estimators::EstimatorKind;
use mi_est::grid::GridConfig;
use mi_est::io::{PosteriorFile, save};
use mi_est::weights::Arch;
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Scratch, random_posterior, repo};

fn tmp(name: &str) -> Scratch {
    Scratch::new("study", name)
}

/// A small posterior with overlapping units (so I^K is far from its cap) and one trained
/// on the bundled MNIST subset.
fn posteriors(dir: &Path) -> Vec<PathBuf> {
    let small = dir.join("small.safetensors");
    let q = random_posterior(Arch::builder(vec![2, 4, 1]).check().unwrap(), 3, 0.6);
    save_bare(&small, q);
    vec![
        small,
        repo("data/posteriors/mnist-small-784-10-10-mfvi.safetensors"),
    ]
}

/// Saves `q` with nothing else recorded (no likelihood, prior scale 1).
fn save_bare(path: &Path, q: mi_est::posterior::MeanFieldGaussian) {
    let f = PosteriorFile {
        posterior: q,
        likelihood: None,
        prior_scale: 1.0,
        train_config: None,
        metadata: Default::default(),
    };
    save(path, &f, true).unwrap();
}

fn config(posteriors: Vec<PathBuf>, shard: (usize, usize)) -> GridConfig {
    GridConfig {
        posteriors,
        spec: None,
        layers: None,
        prior_scale: None,
        estimators: vec![EstimatorKind::InfoNce, EstimatorKind::Exact],
        ks: vec![1, 2, 8, 64],
        temperatures: mi_est::grid::DEFAULT_TEMPERATURES.to_vec(),
        samples: 150,
        repeats: 3,
        seed: 17,
        shard,
        limits: Default::default(),
    }
}

fn options(out: &Path) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        overwrite: false,
        data: None,
        elbo_samples: 4,
        provenance: mi_est::app::Provenance {
            command_line: vec!["test".into()],
            git_revision: None,
        },
    }
}

fn f64_col(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name)
        .unwrap()
        .as_materialized_series()
        .f64()
        .unwrap()
        .iter()
        .collect()
}

#[test]
fn run_writes_parquet_that_reads_back_with_the_same_values() {
    let dir = tmp("run");
    let out = dir.join("report");
    let ps = posteriors(&dir);
    // The small posterior records no data (its bound rows carry no L); the MNIST one
    // records the bundled subset it was trained on.
    let result = run(
        &config(ps.clone(), (0, 1)),
        &options(&out),
        &mi_est::observe::Silent,
    )
    .unwrap();
    let raw = read_raw(&out.join("raw.parquet"));
    assert_eq!(raw.len(), 2 * (4 + 1) * 3);
    let df = read_parquet(&out.join("raw.parquet"));
    assert_eq!(df.height(), raw.len());
    for name in [
        "mi_nats",
        "std_err_nats",
        "wall_s",
        "ln_cap_nats",
        "ln_group_order_nats",
    ] {
        assert!(df.column(name).is_ok(), "{name}");
    }
    let bv = read_parquet(&out.join("bias_variance.parquet"));
    assert_eq!(bv.height(), result.bias_variance.len());
    assert_eq!(bv.height(), 2 * 5);
    // The bias–variance means are the means of the raw values, read back through polars.
    let means = f64_col(&bv, "mean_nats");
    for (cell, m) in result.bias_variance.iter().zip(&means) {
        let vals: Vec<f64> = raw
            .iter()
            .filter(|r| {
                r.posterior_id == cell.posterior_id
                    && r.estimator == cell.estimator
                    && r.k == cell.k
            })
            .map(|r| r.mi_nats)
            .collect();
        assert_eq!(vals.len(), 3);
        let expect = vals.iter().sum::<f64>() / 3.0;
        assert!((m.unwrap() - expect).abs() < 1e-12);
        if let (Some(b), Some(reference)) = (cell.bias_nats, cell.reference_nats) {
            assert!((b - (expect - reference)).abs() < 1e-12);
        }
        // I^K never exceeds the exact value beyond noise, and K = 1 is exactly 0.
        if cell.k == Some(1) {
            assert_eq!(cell.mean_nats, 0.0);
        }
        if let (Some(_), Some(b)) = (cell.k, cell.bias_nats) {
            assert!(b < 0.3, "{cell:?}");
        }
    }
    // The trained MNIST posterior is saturated: I = ln 10!, I^K = ln K.
    let mnist_exact = result
        .bias_variance
        .iter()
        .find(|c| c.posterior_id.starts_with("mnist") && c.k.is_none())
        .unwrap();
    assert!((mnist_exact.mean_nats - (3_628_800f64).ln()).abs() < 1e-6);
    assert!(
        result
            .bias_variance
            .iter()
            .filter(|c| c.posterior_id.starts_with("mnist"))
            .all(|c| c.saturated)
    );
    // Bounds: KL_sym = KL − I, and the MNIST posterior has its recorded data.
    let bd = read_parquet(&out.join("bounds.parquet"));
    let kl = f64_col(&bd, "kl_nats");
    let kls = f64_col(&bd, "kl_sym_nats");
    let mi = f64_col(&bd, "mi_nats");
    for i in 0..bd.height() {
        assert!((kls[i].unwrap() - (kl[i].unwrap() - mi[i].unwrap())).abs() < 1e-9);
    }
    let mnist_rows = result
        .bounds
        .iter()
        .filter(|r| r.posterior_id.starts_with("mnist"));
    for r in mnist_rows {
        let l = r.elbo_per_point.expect("recorded data");
        assert!(r.elbo_sym_per_point.unwrap() >= l, "L^K >= L");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 17);
    assert_eq!(manifest["posteriors"].as_array().unwrap().len(), 2);
    assert_eq!(
        manifest["posteriors"][0]["sha256"].as_str().unwrap().len(),
        64
    );
    assert!(out.join("small-estimates.svg").is_file() && out.join("small-bias-sd.svg").is_file());
    // An existing report is refused without --overwrite, and nothing is written.
    let before = std::fs::read(out.join("raw.parquet")).unwrap();
    let e = run(
        &config(ps.clone(), (0, 1)),
        &options(&out),
        &mi_est::observe::Silent,
    )
    .unwrap_err();
    assert!(crate::common::chain(&e).contains("already there"), "{e:?}");
    assert_eq!(std::fs::read(out.join("raw.parquet")).unwrap(), before);
}

#[test]
fn one_shard_and_three_shards_merged_give_identical_tables() {
    let dir = tmp("shards");
    let ps = posteriors(&dir);
    let one = dir.join("one");
    run(
        &config(ps.clone(), (0, 1)),
        &options(&one),
        &mi_est::observe::Silent,
    )
    .unwrap();
    let three = dir.join("three");
    for i in 0..3 {
        run(
            &config(ps.clone(), (i, 3)),
            &options(&three),
            &mi_est::observe::Silent,
        )
        .unwrap();
    }
    // Merging before all shards exist is refused; here all exist.
    merge(&three, false, &Default::default()).unwrap();
    for table in ["raw.parquet", "bias_variance.parquet", "bounds.parquet"] {
        let a = read_parquet(&one.join(table));
        let b = read_parquet(&three.join(table));
        assert_eq!(a.shape(), b.shape(), "{table}");
        for name in a.get_column_names() {
            if name.contains("wall_s") {
                continue; // timings differ between runs
            }
            let (ca, cb) = (a.column(name).unwrap(), b.column(name).unwrap());
            assert!(
                ca.as_materialized_series()
                    .equals_missing(cb.as_materialized_series()),
                "{table}.{name} differs"
            );
        }
    }
}

#[test]
fn merge_refuses_incomplete_or_foreign_shards() {
    let dir = tmp("merge-bad");
    let ps = posteriors(&dir);
    let out = dir.join("s");
    run(
        &config(ps.clone(), (0, 2)),
        &options(&out),
        &mi_est::observe::Silent,
    )
    .unwrap();
    let e = merge(&out, false, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("1 of 2 shards"), "{e}");
    let mut other = config(ps, (1, 2));
    other.seed = 99;
    run(&other, &options(&out), &mi_est::observe::Silent).unwrap();
    let e = merge(&out, false, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("`seed`"), "{e}");
    assert!(!out.join("raw.parquet").exists());
    assert!(merge(&dir.join("empty-nothing"), false, &Default::default()).is_err());
    // Data that do not fit a posterior are named with the posterior.
    let e = run(
        &config(vec![dir.join("small.safetensors")], (0, 1)),
        &RunOptions {
            data: Some("abs:0.1".into()),
            ..options(&dir.join("wrong-data"))
        },
        &mi_est::observe::Silent,
    )
    .unwrap_err();
    assert!(e.to_string().contains("for posterior small"), "{e}");
    assert!(
        std::error::Error::source(&e).is_some(),
        "the cause is kept: {e:?}"
    );
    assert!(!dir.join("wrong-data").join("raw.parquet").exists());
}

fn mi_est(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mi-est"));
    c.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn run_cli_bad_input_exits_non_zero_and_leaves_nothing() {
    let dir = tmp("cli-bad");
    let out = dir.join("r");
    let out_s = out.to_str().unwrap();
    let corrupt = dir.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"not a safetensors file at all").unwrap();
    let corrupt_s = corrupt.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["run", "--posterior", "/no/such.safetensors"],
            "/no/such.safetensors",
        ),
        (vec!["run", "--posterior", corrupt_s], "corrupt.safetensors"),
        (vec!["run", "--estimators", "magic"], "magic"),
        (vec!["run", "--k", ""], "an empty value in the list"),
        (vec!["run", "--k", "2,,4"], "an empty value in the list"),
        (vec!["run", "--k", "1,two"], "two"),
        (vec!["run", "--k", "0"], "'0' for '--k"),
        (vec!["run", "--samples", "0"], "samples"),
        (
            vec!["run", "--shard-index", "3", "--num-shards", "3"],
            "shard-index",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["--out", out_s, "--samples", "10", "--repeats", "1"]);
        if args.contains(&"--samples") {
            a.truncate(a.len() - 4);
            a.extend(["--repeats", "1"]);
        }
        let o = mi_est(&a, &[]);
        assert!(!o.status.success(), "{a:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{a:?}: {err}");
        assert!(!out.join("raw.parquet").exists(), "{a:?} left a report");
    }
    let o = mi_est(
        &[
            "run",
            "--out",
            "/proc/mi-est-cannot-write",
            "--samples",
            "5",
            "--repeats",
            "1",
            "--k",
            "2",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/proc/mi-est-cannot-write"));
}

#[test]
fn run_cli_takes_its_shard_from_slurm_variables() {
    let dir = tmp("slurm");
    let out = dir.join("r");
    let args = [
        "run",
        "--out",
        out.to_str().unwrap(),
        "--samples",
        "20",
        "--repeats",
        "2",
        "--k",
        "2,4",
        "--elbo-samples",
        "2",
    ];
    let o = mi_est(
        &args,
        &[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("raw-shard-1-of-2.jsonl").is_file());
    let o = mi_est(
        &args,
        &[
            ("JOB_COMPLETION_INDEX", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = mi_est(&["merge", "--out", out.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read_raw(&out.join("raw.parquet")).len(), 3 * 2);
}

#[test]
fn run_includes_the_sandwich_bounds_around_the_exact_value() {
    let dir = tmp("sandwich");
    let ps = posteriors(&dir);
    let mut c = config(ps, (0, 1));
    c.estimators =
        EstimatorKind::parse_list(&["exact".into(), "sandwich".into(), "pairwise".into()]).unwrap();
    c.ks = vec![64];
    c.samples = 400;
    c.repeats = 2;
    let out = run(&c, &options(&dir.join("r")), &mi_est::observe::Silent).unwrap();
    // One raw row per posterior, K and repeat holds both bounds from the same draws.
    let raw = read_raw(&dir.join("r").join("raw.parquet"));
    let sandwich: Vec<_> = raw.iter().filter(|r| r.estimator == "sandwich").collect();
    assert_eq!(sandwich.len(), 2 * 2, "{raw:?}");
    assert!(!raw.iter().any(|r| r.estimator.starts_with("sandwich-")));
    for r in &sandwich {
        let (upper, width) = (r.upper_nats.unwrap(), r.width_nats.unwrap());
        assert!(
            (width - (upper - r.mi_nats)).abs() < 1e-9 * upper.abs().max(1.0),
            "{r:?}"
        );
        assert!(r.upper_std_err_nats.is_some() && r.width_std_err_nats.is_some());
        // The same numbers as both bounds estimated directly with the row's seed.
        let q = &mi_est::io::load(Path::new(&r.posterior_path))
            .unwrap()
            .posterior;
        let (lo, up) = mi_est::estimators::Sandwich::new(64)
            .unwrap()
            .samples(400)
            .unwrap()
            .seed(r.seed)
            .estimate_both(q)
            .unwrap();
        assert_eq!((lo.value, up.value), (r.mi_nats, upper));
    }
    for r in raw.iter().filter(|r| r.estimator != "sandwich") {
        assert!(r.upper_nats.is_none() && r.width_nats.is_none(), "{r:?}");
    }
    for pid in ["small", "mnist-small-784-10-10-mfvi"] {
        let get = |e: &str| {
            out.bias_variance
                .iter()
                .find(|r| r.posterior_id == pid && r.estimator == e)
                .unwrap()
        };
        let (lo, up, ex) = (
            get("sandwich-lower"),
            get("sandwich-upper"),
            get("exact-permanent"),
        );
        let slack = 4.0
            * lo.mean_std_err_nats
                .unwrap()
                .max(up.mean_std_err_nats.unwrap());
        assert!(
            lo.mean_nats <= ex.mean_nats + slack + 0.01,
            "{pid}: {lo:?} vs {ex:?}"
        );
        assert!(
            up.mean_nats >= ex.mean_nats - slack - 0.01,
            "{pid}: {up:?} vs {ex:?}"
        );
    }
    // The single-bound names are the sandwich too, listed once.
    assert_eq!(
        EstimatorKind::parse_list(&["sandwich-lower".into(), "sandwich-upper".into()]).unwrap(),
        vec![EstimatorKind::Sandwich]
    );
    assert!(
        EstimatorKind::parse_list(&["bogus".into()])
            .unwrap_err()
            .to_string()
            .contains("bogus")
    );
}

/// `--estimators annealed`: one raw row per T (its `k`) and repeat with both bounds from
/// the same draws, the numbers of `Annealed` with the row's seed; the tables split it into
/// `annealed-lower` and `annealed-upper`, whose interval then is the bias's reference; the
/// command's `--temperatures` reaches the manifest, and two shards merged give the same
/// rows as one run.
#[test]
fn run_includes_the_annealed_bounds_one_row_per_temperature_count() {
    let dir = tmp("annealed");
    let deep = dir.join("deep.safetensors");
    save_bare(
        &deep,
        random_posterior(Arch::builder(vec![3, 4, 4, 2]).check().unwrap(), 5, 0.5),
    );
    let mut c = config(vec![deep.clone()], (0, 1));
    c.estimators = EstimatorKind::parse_list(&["infonce".into(), "annealed".into()]).unwrap();
    c.ks = vec![16];
    c.temperatures = vec![20, 300];
    c.samples = 40;
    c.repeats = 2;
    let out = run(&c, &options(&dir.join("r")), &mi_est::observe::Silent).unwrap();
    let raw = read_raw(&dir.join("r").join("raw.parquet"));
    let annealed: Vec<_> = raw.iter().filter(|r| r.estimator == "annealed").collect();
    assert_eq!(annealed.len(), 2 * 2, "{raw:?}");
    for r in &annealed {
        let t = r.k.unwrap() as usize;
        let (lo, up) = mi_est::estimators::Annealed::new(t)
            .unwrap()
            .samples(40)
            .unwrap()
            .seed(r.seed)
            .estimate_both(&mi_est::io::load(&deep).unwrap().posterior)
            .unwrap();
        assert_eq!((lo.value, up.value), (r.mi_nats, r.upper_nats.unwrap()));
        assert_eq!(
            (r.std_err_nats, r.upper_std_err_nats),
            (lo.std_err, up.std_err)
        );
        assert!(r.width_std_err_nats.is_some());
    }
    let cell = |e: &str, k: u64| {
        out.bias_variance
            .iter()
            .find(|r| r.estimator == e && r.k == Some(k))
            .unwrap_or_else(|| panic!("{e} {k}: {:?}", out.bias_variance))
    };
    let (lo, up) = (cell("annealed-lower", 300), cell("annealed-upper", 300));
    assert!(lo.mean_nats <= up.mean_nats + 0.5, "{lo:?} {up:?}");
    let reference = cell("infonce", 16).reference_kind.clone().unwrap();
    assert!(
        reference.starts_with("annealed interval midpoint, T = 300"),
        "{reference}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("r").join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["temperatures"],
        serde_json::json!([20, 300]),
        "{manifest}"
    );
    // Two shards merged (the merge reads the temperatures back from the manifest).
    let two = dir.join("two");
    for i in 0..2 {
        let mut s = c.clone();
        s.shard = (i, 2);
        run(&s, &options(&two), &mi_est::observe::Silent).unwrap();
    }
    merge(&two, false, &Default::default()).unwrap();
    let merged = read_raw(&two.join("raw.parquet"));
    let key =
        |r: &mi_est::grid::RawRow| (r.item, r.mi_nats.to_bits(), r.upper_nats.map(f64::to_bits));
    assert_eq!(
        merged.iter().map(key).collect::<Vec<_>>(),
        raw.iter().map(key).collect::<Vec<_>>()
    );
}

/// A layer wider than the full permanent takes goes to the pruned permanent, and its raw
/// rows keep the proven bracket (narrower layers' exact rows have none).
#[test]
fn pruned_exact_rows_carry_their_bracket() {
    let dir = tmp("pruned-bracket");
    let wide = dir.join("wide.safetensors");
    let q = mi_est::demo::demo_posterior(&[3, 30, 2], mi_est::weights::Activation::Relu, 4, -3.0)
        .unwrap();
    save_bare(&wide, q);
    let small = posteriors(&dir).remove(0);
    let mut c = config(vec![wide, small], (0, 1));
    c.estimators = vec![EstimatorKind::Exact];
    c.samples = 20;
    c.repeats = 2;
    run(&c, &options(&dir.join("r")), &mi_est::observe::Silent).unwrap();
    let raw = read_raw(&dir.join("r").join("raw.parquet"));
    assert_eq!(raw.len(), 4);
    for r in &raw {
        match r.estimator.as_str() {
            "exact-pruned" => {
                let b = r.bracket_nats.expect("a pruned row keeps its bracket");
                assert!(b.is_finite() && b >= 0.0, "{r:?}");
            }
            "exact-permanent" => assert!(r.bracket_nats.is_none(), "{r:?}"),
            other => panic!("unexpected estimator {other}"),
        }
    }
    assert!(raw.iter().any(|r| r.estimator == "exact-pruned"));
}

/// The grid checks every estimator's settings before any work: a sandwich whose K list
/// has no K >= 2 is refused up front, naming `k`, and nothing is written; with K = 1 and 8
/// the sandwich takes K = 8 (and I^K both).
#[test]
fn estimator_settings_are_checked_before_the_grid_runs() {
    let dir = tmp("checked-settings");
    let ps = posteriors(&dir);
    let mut c = config(ps, (0, 1));
    c.estimators = vec![EstimatorKind::InfoNce, EstimatorKind::Sandwich];
    c.ks = vec![1];
    let out = dir.join("r");
    let e = run(&c, &options(&out), &mi_est::observe::Silent).unwrap_err();
    assert!(
        e.to_string().contains("invalid `k` = [1]") && e.to_string().contains("K >= 2"),
        "{e}"
    );
    assert!(!out.join("raw.parquet").exists());
    assert!(!out.join(".journal.jsonl").exists());
    c.ks = vec![1, 8];
    let items = mi_est::grid::grid_items(&c);
    let sandwich_ks: Vec<Option<usize>> = items
        .iter()
        .filter(|i| i.estimator == EstimatorKind::Sandwich)
        .map(|i| i.k)
        .collect();
    assert!(
        !sandwich_ks.is_empty() && sandwich_ks.iter().all(|&k| k == Some(8)),
        "{sandwich_ks:?}"
    );
    assert!(
        items
            .iter()
            .any(|i| i.estimator == EstimatorKind::InfoNce && i.k == Some(1))
    );
}

/// An exact estimator named outright runs in the grid with the seeds of `exact` (which
/// resolves to the permanent for one hidden layer): the same rows bit for bit.
#[test]
fn an_exact_estimator_named_outright_gives_the_rows_of_exact() {
    let dir = std::env::temp_dir().join(format!("mi-est-exact-named-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = posteriors(&dir);
    let rows = |kind: EstimatorKind| {
        let mut c = config(files.clone(), (0, 1));
        c.estimators = vec![kind];
        let c = c.check().unwrap();
        let loaded =
            mi_est::grid::load_posteriors(&c.posteriors, mi_est::io::ReadOptions::default())
                .unwrap();
        let grid = mi_est::grid::check_grid(&c, &loaded).unwrap();
        mi_est::grid::run_grid(&c, &loaded, &grid, &mi_est::observe::Silent, None).unwrap()
    };
    let (exact, permanent) = (
        rows(EstimatorKind::Exact),
        rows(EstimatorKind::ExactPermanent),
    );
    assert_eq!(exact.len(), 6);
    for (a, b) in exact.iter().zip(&permanent) {
        assert_eq!(a.estimator, "exact-permanent");
        assert_eq!((a.seed, a.mi_nats.to_bits()), (b.seed, b.mi_nats.to_bits()));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Limits are a value of each call, not of the process: in one process, at the same
/// time on two threads, the same estimate is refused within a tiny limit and runs
/// within the machine's; a grid is refused as a whole before any item runs; a file is
/// refused before it is read; a limit that is not positive is refused by name.
#[test]
fn limits_are_a_value_of_each_call() {
    use mi_est::estimators::{InfoNce, MiEstimator, Sandwich};
    use mi_est::resources::Limits;
    let q = mi_est::demo::demo_posterior(&[20, 8, 3], mi_est::weights::Activation::Relu, 3, -1.0)
        .unwrap();
    let tiny = Limits::new(Some(1e-9), None).unwrap();
    let machine = Limits::default();
    let est = InfoNce::new(64).unwrap().samples(40).unwrap().seed(2);
    let (refused, ran) = rayon::join(
        || est.estimate_within(&q, &tiny),
        || est.estimate_within(&q, &machine),
    );
    assert!(
        matches!(refused, Err(mi_est::Error::ResourceLimit { .. })),
        "{refused:?}"
    );
    // The machine's limits give the same bits as the convenience call.
    assert_eq!(
        ran.unwrap().value.to_bits(),
        est.estimate(&q).unwrap().value.to_bits()
    );
    let slow = Limits::new(None, Some(1e-15)).unwrap();
    let sandwich = Sandwich::new(16).unwrap().samples(40).unwrap();
    assert!(matches!(
        sandwich.estimate_both_within(&q, &slow),
        Err(mi_est::Error::ResourceLimit { .. })
    ));
    // A grid within tiny limits: refused by its whole cost, naming it.
    let dir = Scratch::new("study", "limits");
    let path = dir.join("q.safetensors");
    save_bare(&path, q.clone());
    let mut cfg = config(vec![path.clone()], (0, 1));
    let loaded = mi_est::grid::load_posteriors(&cfg.posteriors, Default::default()).unwrap();
    cfg.limits = tiny;
    let e = mi_est::grid::check_grid(&cfg, &loaded)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the grid of") && e.contains("would need about"),
        "{e}"
    );
    cfg.limits = machine;
    assert!(mi_est::grid::check_grid(&cfg, &loaded).is_ok());
    // A posterior file read within tiny limits: refused before it is read.
    let read = mi_est::io::ReadOptions {
        limits: tiny,
        ..Default::default()
    };
    let e = mi_est::io::load_with_bytes(&path, read)
        .unwrap_err()
        .to_string();
    assert!(e.contains("would need about"), "{e}");
    for (g, h) in [
        (Some(0.0), None),
        (None, Some(-1.0)),
        (Some(f64::NAN), None),
    ] {
        assert!(Limits::new(g, h).is_err());
    }
}
