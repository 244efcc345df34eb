//! Numbers that REPRODUCTION.md quotes, recomputed from the committed reports' Parquet
//! tables: a quoted figure the data do not give fails here (issue 31's rule, for the
//! sections rewritten since).

use crate::common::{read_parquet, repo};
use polars::prelude::*;

fn strs(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name)
        .unwrap()
        .as_materialized_series()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap().to_string())
        .collect()
}

fn reals(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    let s = df.column(name).unwrap().as_materialized_series().clone();
    let s = s.cast(&DataType::Float64).unwrap();
    s.f64().unwrap().iter().collect()
}

/// §5's table of the deep nets: every row of `reports/estimator-cost/deep.parquet`, as
/// REPRODUCTION.md prints it (bounds ± their mean standard error, the width relative to
/// the midpoint of the posterior's narrowest interval, the mean wall time).
#[test]
fn section_5s_deep_table_is_the_committed_reports() {
    let doc = std::fs::read_to_string(repo("REPRODUCTION.md")).unwrap();
    let df = read_parquet(&repo("reports/estimator-cost/deep.parquet"));
    let (posterior, estimator) = (strs(&df, "posterior"), strs(&df, "estimator"));
    let (k, samples, wall) = (
        reals(&df, "k"),
        reals(&df, "samples"),
        reals(&df, "mean_wall_s"),
    );
    let (lower, lower_se) = (reals(&df, "lower"), reals(&df, "lower_se"));
    let (upper, upper_se, width) = (
        reals(&df, "upper"),
        reals(&df, "upper_se"),
        reals(&df, "width"),
    );
    let mut missing = Vec::new();
    for i in 0..posterior.len() {
        let mid = (0..posterior.len())
            .filter(|&j| posterior[j] == posterior[i])
            .filter_map(|j| Some((width[j]?, lower[j]? + 0.5 * width[j]?)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|m| m.1);
        let line = format!(
            "| {} | {} | {} | {} | {:.2} ± {:.2} | {} | {} | {} | {:.1} |",
            posterior[i],
            estimator[i],
            k[i].map_or("—".into(), |k| format!("{k:.0}")),
            samples[i].unwrap(),
            lower[i].unwrap(),
            lower_se[i].unwrap(),
            match (upper[i], upper_se[i]) {
                (Some(u), Some(se)) => format!("{u:.2} ± {se:.2}"),
                _ => "—".into(),
            },
            width[i].map_or("—".into(), |w| format!("{w:.2}")),
            match (width[i], mid) {
                (Some(w), Some(m)) => format!("{:.2} %", 100.0 * w / m),
                _ => "—".into(),
            },
            wall[i].unwrap(),
        );
        if !doc.contains(&line) {
            missing.push(line);
        }
    }
    assert!(
        missing.is_empty(),
        "REPRODUCTION.md §5 lacks these rows of the committed deep.parquet:\n{}",
        missing.join("\n")
    );
}

/// §7's statements about the intervals on I, from `reports/symmetry-regime/runs.parquet`:
/// how many runs have no exact I and which interval each used, how far each kind of upper
/// bound went above ln|G|, the largest and median half widths, and the d = 100 and band
/// cells' I/ln|G| and gain.
#[test]
fn section_7s_intervals_are_the_committed_reports() {
    let doc = std::fs::read_to_string(repo("REPRODUCTION.md")).unwrap();
    let df = read_parquet(&repo("reports/symmetry-regime/runs.parquet"));
    let interval = strs(&df, "mi_interval");
    let col = |name: &str| -> Vec<f64> {
        reals(&df, name)
            .into_iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect()
    };
    let (width, n, prior, rho) = (
        col("width"),
        col("n_train"),
        col("prior_scale"),
        col("init_rho"),
    );
    let (lo, up, ln_g) = (
        col("mi_lower_nats"),
        col("mi_upper_nats"),
        col("ln_group_order"),
    );
    let (s_up, a_up) = (
        col("sandwich_upper_raw_nats"),
        col("annealed_upper_raw_nats"),
    );
    let (mi, lg, seed) = (col("mi_nats"), col("elbo_g_per_point"), col("seed"));
    let objective = strs(&df, "objective");
    let non: Vec<usize> = (0..interval.len())
        .filter(|&i| interval[i] != "exact")
        .collect();
    let count = |k: &str| non.iter().filter(|&&i| interval[i] == k).count();
    let mut want = vec![
        format!("Elsewhere ({} of the\n{} runs", non.len(), interval.len()),
        format!(
            "the sandwich's in {} runs, the\nannealed in {})",
            count("sandwich"),
            count("annealed")
        ),
    ];
    let above = |raw: &[f64], w: f64| -> (usize, f64) {
        let sel: Vec<f64> = non
            .iter()
            .filter(|&&i| width[i] == w && raw[i] > ln_g[i] + 1e-9)
            .map(|&i| raw[i] - ln_g[i])
            .collect();
        (sel.len(), sel.iter().copied().fold(0.0, f64::max))
    };
    let ((s30, s30m), (s100, s100m)) = (above(&s_up, 30.0), above(&s_up, 100.0));
    let ((a30, a30m), (a100, a100m)) = (above(&a_up, 30.0), above(&a_up, 100.0));
    want.push(format!(
        "(above ln|G| in {} runs, by up to {s30m:.1} nats\nat width 30",
        s30 + s100
    ));
    want.push(format!("and {} nats at width 100)", thousands(s100m)));
    want.push(format!(
        "(above ln|G| in {} runs, by at most {a30m:.1} and {a100m:.1} nats)",
        a30 + a100
    ));
    let half = |w: f64| -> Vec<f64> {
        let mut v: Vec<f64> = non
            .iter()
            .filter(|&&i| width[i] == w)
            .map(|&i| 100.0 * (up[i] - lo[i]) / 2.0 / ln_g[i])
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (h100, h30) = (half(100.0), half(30.0));
    let median = |v: &[f64]| (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0;
    want.push(format!(
        "at most ±{:.1} % of ln|G| wide\n(median ±{:.2} %",
        h100[h100.len() - 1],
        median(&h100)
    ));
    want.push(format!("at d = 30 at most ±{:.1} %", h30[h30.len() - 1]));
    // The cells whose numbers moved: I/ln|G| (MFVI → symmetrized) and the paired gain.
    let cell = |p: f64, r: f64, w: f64, nn: f64| -> (f64, f64, Vec<f64>) {
        let rows = |sym: bool| -> Vec<usize> {
            (0..width.len())
                .filter(|&i| prior[i] == p && rho[i] == r && width[i] == w && n[i] == nn)
                .filter(|&i| (objective[i] != "mfvi") == sym)
                .collect()
        };
        let (m, y) = (rows(false), rows(true));
        let ratio = |v: &[usize]| v.iter().map(|&i| mi[i] / ln_g[i]).sum::<f64>() / v.len() as f64;
        let gains = m
            .iter()
            .map(|&i| {
                let j = *y.iter().find(|&&j| seed[j] == seed[i]).unwrap();
                lg[j] - lg[i]
            })
            .collect();
        (ratio(&m), ratio(&y), gains)
    };
    let (bm, by, _) = cell(0.1, -1.0, 30.0, 10_000.0);
    want.push(format!("| {bm:.3} → {by:.3} |"));
    let (dm, dy, g) = cell(0.1, -1.0, 100.0, 10_000.0);
    let mean = g.iter().sum::<f64>() / g.len() as f64;
    let sd = (g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (g.len() - 1) as f64).sqrt();
    want.push(format!(
        "| {dm:.2} → {dy:.2} | {} ± {sd:.4} (SE {:.4})",
        format!("{mean:.4}").replace('-', "−"),
        sd / (g.len() as f64).sqrt()
    ));
    want.push(format!("raises I/ln|G| from {dm:.2} to {dy:.2}"));
    let missing: Vec<&String> = want.iter().filter(|w| !doc.contains(w.as_str())).collect();
    assert!(missing.is_empty(), "REPRODUCTION.md §7 lacks: {missing:#?}");
}

/// `2474.4` as REPRODUCTION.md writes it: `2,474`.
fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.trunc());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// §7b's table, from `reports/symmetry-replication/tests.parquet`: each setting's mean
/// gain ± SE, p, decision, ΔL/N's share and the accuracy gain, as printed there.
#[test]
fn section_7bs_replication_is_the_committed_report() {
    let doc = std::fs::read_to_string(repo("REPRODUCTION.md")).unwrap();
    let df = read_parquet(&repo("reports/symmetry-replication/tests.parquet"));
    let col =
        |name: &str| -> Vec<f64> { reals(&df, name).into_iter().map(|v| v.unwrap()).collect() };
    let (m, se, p) = (col("mean_gain"), col("se_gain"), col("p_one_sided"));
    let (gl, acc) = (col("mean_gain_l"), col("mean_gain_accuracy"));
    let decision = strs(&df, "decision");
    let minus = |s: String| s.replace('-', "−");
    // (digits of the gain, digits of p) per row, as the table prints them.
    let digits = [(4, 4), (4, 2), (4, 2), (5, 2), (4, 2)];
    assert_eq!(m.len(), digits.len());
    let mut missing = Vec::new();
    for (i, &(dg, dp)) in digits.iter().enumerate() {
        let mut cells = vec![
            minus(format!(
                "| {:+.dg$} ± {:.dg$} | {:.dp$} |",
                m[i], se[i], p[i]
            )),
            minus(format!("| {:+.2} ± ", acc[i])),
        ];
        if i < 2 {
            cells.push(format!(
                "| **{}** | {:.0} % |",
                decision[i],
                100.0 * gl[i] / m[i]
            ));
        }
        missing.extend(cells.into_iter().filter(|c| !doc.contains(c.as_str())));
    }
    assert!(
        missing.is_empty(),
        "REPRODUCTION.md §7b lacks: {missing:#?}"
    );
}
