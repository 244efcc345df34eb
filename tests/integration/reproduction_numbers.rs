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

/// The smallest and largest of `v`.
fn extent(v: &[f64]) -> (f64, f64) {
    (
        v.iter().copied().fold(f64::INFINITY, f64::min),
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// The mean of `v` and its sample standard deviation (n − 1).
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
    )
}

/// §5's table of the deep nets: every row of `reports/estimator-cost/deep.parquet`, as
/// REPRODUCTION.md prints it (bounds ± their mean standard error, the width relative to
/// the midpoint of the posterior's narrowest interval, the mean wall time).
#[test]
fn section_5s_deep_table_is_the_committed_reports() {
    assert_quoted("§5", &section_5_deep_rows());
}

/// The rows of [`section_5s_deep_table_is_the_committed_reports`].
fn section_5_deep_rows() -> Vec<String> {
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
    let mut rows = Vec::new();
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
        rows.push(line);
    }
    rows
}

/// Fails naming every string of `want` that REPRODUCTION.md does not contain.
fn assert_quoted(section: &str, want: &[String]) {
    let doc = std::fs::read_to_string(repo("REPRODUCTION.md")).unwrap();
    let missing: Vec<&String> = want.iter().filter(|w| !doc.contains(w.as_str())).collect();
    assert!(
        missing.is_empty(),
        "REPRODUCTION.md {section} lacks these statements of the committed reports: {missing:#?}"
    );
}

/// §7's statements about the intervals on I, from `reports/symmetry-regime/runs.parquet`:
/// how many runs have no exact I and which interval each used, how far each kind of upper
/// bound went above ln|G|, the largest and median half widths, and the d = 100 and band
/// cells' I/ln|G| and gain.
#[test]
fn section_7s_intervals_are_the_committed_reports() {
    assert_quoted("§7", &section_7_intervals());
}

/// The statements of [`section_7s_intervals_are_the_committed_reports`].
fn section_7_intervals() -> Vec<String> {
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
    let (dm, dy, _) = cell(0.1, -1.0, 100.0, 10_000.0);
    // The band's t and one-sided p (7 degrees of freedom with 8 seeds).
    let (_, _, g) = cell(0.1, -1.0, 30.0, 10_000.0);
    let k = g.len() as f64;
    let (mean, sd) = mean_sd(&g);
    let t = mean / (sd / k.sqrt());
    let p = statrs::distribution::ContinuousCDF::sf(
        &statrs::distribution::StudentsT::new(0.0, 1.0, k - 1.0).unwrap(),
        t,
    );
    want.push(format!(
        "a t\n  of {t:.2} with {} degrees of freedom, one-sided p = {p:.4})",
        g.len() - 1
    ));
    want.push(format!("raises I/ln|G| from {dm:.2} to {dy:.2}"));
    want
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
    assert_quoted("§7b", &section_7b_cells());
}

/// The cells of [`section_7bs_replication_is_the_committed_report`].
fn section_7b_cells() -> Vec<String> {
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
    let mut want = Vec::new();
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
        want.extend(cells);
    }
    want
}

/// The committed reports each section of REPRODUCTION.md quotes, by its heading's number
/// (the text before the first section quotes all of them).
const SECTION_REPORTS: &[(&str, &[&str])] = &[
    ("1", &["mode-interpolation"]),
    ("2", &["tractable-bnn", "tractable-sweep"]),
    ("3", &["mnist"]),
    ("4", &["mode-proximity"]),
    ("5", &["estimator-cost"]),
    ("6", &["mnist-objectives"]),
    ("7", &["symmetry-regime", "symmetry-replication"]),
];

/// Numbers REPRODUCTION.md may state that no report computes: the paper's own values
/// (which the summaries also print where they compare), the studies' settings, and
/// mathematical constants, each with what it is.
const DECLARED: &[(&str, &str)] = &[
    (
        "ln 2 / N = ln 2 / 100, the most I/N can add with |G| = 2",
        "0.0069",
    ),
    ("ln 2 / 10, per batch of 10", "0.069"),
    (
        "the variance of α|x| for x ~ U(−10, 10) at α = 0.1: α² · 100/3 · (1 − 3/4)",
        "0.083",
    ),
    ("learning rates and prior scales of the settings", "1e-3"),
    ("learning rates", "3e-3"),
    ("learning rates", "3e-4"),
    ("learning rates", "5e-3"),
    ("learning rates", "1e-2"),
    ("σ0 = ln(1 + e^ρ0) at ρ0 = −3, −1, 0, 1", "0.05"),
    ("σ0 at ρ0 = −1", "0.31"),
    ("σ0 at ρ0 = 0", "0.69"),
    ("σ0 at ρ0 = 1", "1.31"),
    ("σ0 at ρ0 = −3, three digits", "0.049"),
    ("the prior scale and initial mean scale", "0.1"),
    ("the deep nets' σ", "0.5"),
    ("the one-sided threshold 0.05 / 2", "0.025"),
    ("the significance level", "0.05"),
    (
        "the paper's L^G/N − L/N at α = 0.05 … 0.2 (its Tables 2 and 3): MFVI",
        "0.013",
    ),
    ("the paper's gaps, MFVI", "0.012"),
    ("the paper's gaps, MFVI", "0.011"),
    ("the paper's gaps, SGM", "0.019"),
    ("the paper's gaps, SGM", "0.024"),
    ("the paper's gap at α = 0.1, SGM", "0.022"),
    ("noise std of the sweep", "0.3"),
    ("ln 4096, where I^4096 is capped", "8.32"),
    (
        "ln 30! / 60,000: the most I/N can add at width 30 on all of MNIST",
        "1.2e-3",
    ),
];

/// Decimal numbers (with a point or an exponent) in `text`, minus signs dropped,
/// thousands separators removed.
fn decimal_tokens(text: &str) -> Vec<String> {
    let t = text.replace('−', "-");
    let chars: Vec<char> = t.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit()
            || (i > 0
                && (chars[i - 1].is_ascii_alphanumeric()
                    || chars[i - 1] == '.'
                    || chars[i - 1] == '_'))
        {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut tok = String::new();
        // Digits, and thousands separators: a comma followed by exactly three digits.
        let separator = |j: usize| {
            chars[j] == ','
                && (1..=3).all(|k| chars.get(j + k).is_some_and(char::is_ascii_digit))
                && !chars.get(j + 4).is_some_and(char::is_ascii_digit)
        };
        while j < chars.len() && (chars[j].is_ascii_digit() || separator(j)) {
            if chars[j] != ',' {
                tok.push(chars[j]);
            }
            j += 1;
        }
        if j + 1 < chars.len() && chars[j] == '.' && chars[j + 1].is_ascii_digit() {
            tok.push('.');
            j += 1;
            while j < chars.len() && chars[j].is_ascii_digit() {
                tok.push(chars[j]);
                j += 1;
            }
        }
        if j + 1 < chars.len()
            && chars[j] == 'e'
            && (chars[j + 1].is_ascii_digit()
                || (chars[j + 1] == '-' && chars.get(j + 2).is_some_and(char::is_ascii_digit)))
        {
            tok.push('e');
            j += 1;
            if chars[j] == '-' {
                tok.push('-');
                j += 1;
            }
            let start = j;
            while j < chars.len() && chars[j].is_ascii_digit() {
                tok.push(chars[j]);
                j += 1;
            }
            // A three-digit exponent is a commit hash's letters and digits, not a number.
            if j - start > 2 {
                i = j;
                continue;
            }
        }
        let decimal = tok.contains('.') || tok.contains('e');
        // Not part of a word or a commit hash.
        let word = j < chars.len()
            && (chars[j].is_ascii_alphabetic() && chars[j] != 'e' || chars[j] == '_');
        if decimal && !word {
            out.push(tok);
        }
        i = j.max(i + 1);
    }
    out
}

/// Issue 31's rule for all of REPRODUCTION.md: every decimal number it prints (in text or
/// tables) is a number of the committed reports of its section (their `summary.md`,
/// `index.html` captions and `manifest.json`, all written by the studies from their
/// tables), a statement another test of this file checks against the Parquet, or a
/// declared setting, constant or paper value ([`DECLARED`]). A hand-copied or edited
/// number fails here, named with its section and line.
#[test]
fn every_decimal_number_in_reproduction_comes_from_the_committed_reports() {
    let doc = std::fs::read_to_string(repo("REPRODUCTION.md")).unwrap();
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let sources = |reports: &[&str]| -> std::collections::HashSet<String> {
        let mut set = std::collections::HashSet::new();
        for r in reports {
            for f in ["summary.md", "index.html", "manifest.json"] {
                set.extend(decimal_tokens(&read(repo(&format!("reports/{r}/{f}")))));
            }
        }
        set
    };
    let mut checked = std::collections::HashSet::new();
    for s in section_5_deep_rows()
        .iter()
        .chain(&section_2_statements())
        .chain(&section_4_ranges())
        .chain(&section_5_wall())
        .chain(&section_5_table())
        .chain(&section_7_intervals())
        .chain(&section_7_table())
        .chain(&section_7b_cells())
    {
        checked.extend(decimal_tokens(s));
    }
    let declared: std::collections::HashSet<String> =
        DECLARED.iter().map(|d| d.1.to_string()).collect();
    let all: Vec<&str> = SECTION_REPORTS
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .collect();
    let mut allowed = sources(&all);
    let mut section = "preamble".to_string();
    let mut missing = Vec::new();
    for (n, line) in doc.lines().enumerate() {
        if let Some(h) = line.strip_prefix("## ") {
            let num = h.split('.').next().unwrap_or_default().to_string();
            if let Some((_, reports)) = SECTION_REPORTS.iter().find(|s| s.0 == num) {
                allowed = sources(reports);
                section = format!("§{num}");
            }
        }
        for t in decimal_tokens(line) {
            if !(allowed.contains(&t) || checked.contains(&t) || declared.contains(&t)) {
                missing.push(format!("{section} line {}: {t}", n + 1));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "numbers in REPRODUCTION.md that no committed report of their section gives: {missing:#?}"
    );
}

#[test]
fn decimal_tokens_reads_numbers_not_words() {
    assert_eq!(
        decimal_tokens(
            "lr 1e-3, α = 0.05, −0.0016 ± 0.0025, 60,000 images, 1,036.79 nats, commit 742e465, K = 64, x2.5y"
        ),
        ["1e-3", "0.05", "0.0016", "0.0025", "1036.79"]
    );
}

/// §2's statements, from `reports/tractable-bnn/runs.parquet` and
/// `reports/tractable-sweep/{sweep,rerun}.parquet`: the KL differences between SGM and
/// MFVI, and the sweep's ranges over its 48 cells (each cell's mean over seeds, both
/// methods).
#[test]
fn section_2s_statements_are_the_committed_reports() {
    assert_quoted("§2", &section_2_statements());
}

/// A cell of the sweep and its method: (target noise, τ, prior scale, normalisation,
/// method).
type SweepCell = (f64, f64, f64, String, String);

/// The statements of [`section_2s_statements_are_the_committed_reports`].
fn section_2_statements() -> Vec<String> {
    let mean_of = |df: &DataFrame, col: &str, keep: &dyn Fn(usize) -> bool| -> f64 {
        let v: Vec<f64> = reals(df, col)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, v)| v.unwrap())
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let mut want = Vec::new();
    // tractable-bnn at α = 0.05: SGM's q against MFVI's, in KL from the posterior.
    let bnn = read_parquet(&repo("reports/tractable-bnn/runs.parquet"));
    let (alpha, method) = (reals(&bnn, "alpha"), strs(&bnn, "method"));
    let at = |m: &'static str| {
        let (alpha, method) = (alpha.clone(), method.clone());
        move |i: usize| alpha[i] == Some(0.05) && method[i] == m
    };
    let (kl_m, kl_s) = (
        mean_of(&bnn, "kl_q_posterior_nats", &at("mfvi")),
        mean_of(&bnn, "kl_q_posterior_nats", &at("sgm-k2")),
    );
    want.push(format!(
        "SGM's own fit is {:.3} nats closer than MFVI's there ({kl_s:.3} against\n  {kl_m:.3})",
        kl_m - kl_s
    ));
    // The sweep's rerun at α = 0.05: q^G of SGM against MFVI's.
    let rerun = read_parquet(&repo("reports/tractable-sweep/rerun.parquet"));
    let (alpha, method) = (reals(&rerun, "alpha"), strs(&rerun, "method"));
    let at = |m: &'static str| {
        let (alpha, method) = (alpha.clone(), method.clone());
        move |i: usize| alpha[i] == Some(0.05) && method[i] == m
    };
    let (g_m, g_s) = (
        mean_of(&rerun, "kl_qg_posterior_nats", &at("MFVI")),
        mean_of(&rerun, "kl_qg_posterior_nats", &at("SGM K=2")),
    );
    want.push(format!(
        "Its q^G is {:.3} nats closer to the true posterior than MFVI's ({g_s:.3}\nagainst {g_m:.3})",
        g_m - g_s
    ));
    // The sweep's 48 cells: cell means over seeds, per method.
    let sweep = read_parquet(&repo("reports/tractable-sweep/sweep.parquet"));
    let (noise, tau, prior) = (
        reals(&sweep, "noise_std"),
        reals(&sweep, "tau"),
        reals(&sweep, "prior_scale"),
    );
    let (norm, method) = (strs(&sweep, "normalisation"), strs(&sweep, "method"));
    let mut cells: Vec<SweepCell> = Vec::new();
    for i in 0..noise.len() {
        let key = (
            noise[i].unwrap(),
            tau[i].unwrap(),
            prior[i].unwrap(),
            norm[i].clone(),
            method[i].clone(),
        );
        if !cells.contains(&key) {
            cells.push(key);
        }
    }
    let cell_means = |col: &str, keep: &dyn Fn(&SweepCell) -> bool| {
        cells
            .iter()
            .filter(|c| keep(c))
            .map(|c| {
                mean_of(&sweep, col, &|i| {
                    (
                        noise[i].unwrap(),
                        tau[i].unwrap(),
                        prior[i].unwrap(),
                        norm[i].clone(),
                        method[i].clone(),
                    ) == *c
                })
            })
            .collect::<Vec<f64>>()
    };
    let range = extent;
    let minus = |v: f64, d: usize| format!("{:.d$}", v).replace('-', "−");
    let per_point = range(&cell_means("reported_elbo_per_point", &|c| {
        c.3 == "per point"
    }));
    want.push(format!(
        "L/N is\n  between {} and {} across the cells",
        minus(per_point.1, 4),
        minus(per_point.0, 4)
    ));
    let batch = range(&cell_means("reported_elbo_per_point", &|c| {
        c.3 == "per batch" && (c.1 == 4.0 || c.1 == 10.0)
    }));
    want.push(format!(
        "at τ = 4–10 it is {} to\n  {}",
        minus(batch.1, 4),
        minus(batch.0, 4)
    ));
    let noisy = range(&cell_means("test_mse", &|c| c.0 == 0.3));
    let clean = range(&cell_means("test_mse", &|c| c.0 == 0.0));
    want.push(format!(
        "our test MSE is\n  {:.3}–{:.3}; without noise it is {:.3}–{:.3}",
        noisy.0, noisy.1, clean.0, clean.1
    ));
    let mi = range(&cell_means("mi_exact_nats", &|_| true));
    want.push(format!("({:.3}–{:.3} nats)", mi.0, mi.1));
    want
}

/// §4's ranges, from `reports/mode-proximity/proximity.parquet`: the absolute distance at
/// initialization, and the relative distance times √d before and after training.
#[test]
fn section_4s_ranges_are_the_committed_report() {
    assert_quoted("§4", &section_4_ranges());
}

/// The statements of [`section_4s_ranges_are_the_committed_report`].
fn section_4_ranges() -> Vec<String> {
    let df = read_parquet(&repo("reports/mode-proximity/proximity.parquet"));
    let (width, weights) = (reals(&df, "width"), strs(&df, "weights"));
    let (rel, abs) = (
        reals(&df, "min_distance_over_norm"),
        reals(&df, "min_distance"),
    );
    let range = |label: &str, f: &dyn Fn(usize) -> f64| {
        let v: Vec<f64> = (0..width.len())
            .filter(|&i| weights[i] == label)
            .map(f)
            .collect();
        extent(&v)
    };
    let a = range("initialization", &|i| abs[i].unwrap());
    let scaled = |i: usize| rel[i].unwrap() * width[i].unwrap().sqrt();
    let (si, st) = (range("initialization", &scaled), range("trained", &scaled));
    vec![
        format!("({:.2} to {:.2} at initialization)", a.0, a.1),
        format!(
            "stays between {:.2} and {:.2} at initialization and {:.2} and\n{:.2} after training",
            si.0, si.1, st.0, st.1
        ),
    ]
}

/// §5's measured wall time per estimate, from `reports/estimator-cost/summary.parquet`:
/// its range over the Monte Carlo estimators (the pairwise bounds take no draws).
#[test]
fn section_5s_wall_times_are_the_committed_report() {
    assert_quoted("§5", &section_5_wall());
}

/// The statement of [`section_5s_wall_times_are_the_committed_report`].
fn section_5_wall() -> Vec<String> {
    let df = read_parquet(&repo("reports/estimator-cost/summary.parquet"));
    let (estimator, wall) = (strs(&df, "estimator"), reals(&df, "mean_wall_ms"));
    let v: Vec<f64> = (0..wall.len())
        .filter(|&i| !estimator[i].starts_with("pairwise"))
        .map(|i| wall[i].unwrap())
        .collect();
    let width = |p: &str, k: f64| -> f64 {
        let (posterior, ks) = (strs(&df, "posterior"), reals(&df, "k"));
        let w = reals(&df, "mean_interval_width");
        (0..w.len())
            .find(|&i| posterior[i] == p && estimator[i] == "sandwich-lower" && ks[i] == Some(k))
            .and_then(|i| w[i])
            .unwrap()
    };
    let (fastest, slowest) = extent(&v);
    vec![
        format!("came out at {fastest:.1} to {slowest:.1} ms"),
        format!(
            "(overlap-d16: {:.2} → {:.2} → {:.3} nats at\nK = 4, 16, 64)",
            width("overlap-d16", 4.0),
            width("overlap-d16", 16.0),
            width("overlap-d16", 64.0)
        ),
        format!(
            "the K = 64 interval is at most {:.3}\nnats wide",
            width("clusters-d30", 64.0).max(width("mnist-d30", 64.0))
        ),
    ]
}

/// §5's table of the posteriors with exact I, generated from
/// `reports/estimator-cost/summary.parquet`: exact I, ln|G|, I^4096's mean, the sandwich's
/// mean interval at K = 64, its coverage at K = 4, 16, 64, the ratio of I^K's smallest MSE
/// (over K) to the sandwich lower bound's, and the annealed bounds' mean interval and
/// coverage at T = 1000.
#[test]
fn section_5s_table_is_the_committed_report() {
    assert_quoted("§5", &section_5_table());
}

/// The rows of [`section_5s_table_is_the_committed_report`].
fn section_5_table() -> Vec<String> {
    let df = read_parquet(&repo("reports/estimator-cost/summary.parquet"));
    let (posterior, estimator) = (strs(&df, "posterior"), strs(&df, "estimator"));
    let (k, mean, mse) = (reals(&df, "k"), reals(&df, "mean"), reals(&df, "mse"));
    let (exact, ln_g, coverage) = (
        reals(&df, "exact_i"),
        reals(&df, "ln_group_order"),
        reals(&df, "coverage"),
    );
    let names = [
        ("overlap-d6", "overlap-d6"),
        ("overlap-d10", "overlap-d10"),
        ("overlap-d16", "overlap-d16"),
        ("deep-4x3", "deep [2,4,3,2]"),
        ("clusters-d30", "clusters-d30"),
        ("mnist-d10", "MNIST 784-10-10"),
        ("mnist-d30", "MNIST 784-30-10"),
    ];
    let pct = |c: f64| {
        let v = 100.0 * c;
        if (v - v.round()).abs() < 1e-9 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    let mut rows = Vec::new();
    for (p, name) in names {
        let row = |e: &str, kk: Option<f64>| {
            (0..posterior.len())
                .find(|&i| posterior[i] == p && estimator[i] == e && (kk.is_none() || k[i] == kk))
                .unwrap_or_else(|| panic!("{p} {e} {kk:?}"))
        };
        let min_mse = |e: &str| {
            (0..posterior.len())
                .filter(|&i| posterior[i] == p && estimator[i] == e)
                .map(|i| mse[i].unwrap())
                .fold(f64::INFINITY, f64::min)
        };
        let i0 = row("infonce", Some(4096.0));
        let (sl, su) = (
            row("sandwich-lower", Some(64.0)),
            row("sandwich-upper", Some(64.0)),
        );
        let covs: Vec<String> = [4.0, 16.0, 64.0]
            .iter()
            .map(|&kk| pct(coverage[row("sandwich-lower", Some(kk))].unwrap()))
            .collect();
        let cov = if covs.iter().all(|c| c == "100") {
            "100 %".to_string()
        } else {
            format!("{} %", covs.join("/"))
        };
        let lower = min_mse("sandwich-lower");
        // The sandwich exact to rounding (its MSE under 1e-12 nats²): no ratio.
        let ratio = if lower < 1e-12 {
            "exact".to_string()
        } else {
            let r = min_mse("infonce") / lower;
            if r < 10.0 {
                format!("{r:.1}×")
            } else if r < 1000.0 {
                format!("{r:.0}×")
            } else {
                let e = 10f64.powi(r.log10().floor() as i32 - 1);
                let v = ((r / e).round() * e) as u64;
                format!("{},{:03}×", v / 1000, v % 1000)
            }
        };
        let (al, au) = (
            row("annealed-lower", Some(1000.0)),
            row("annealed-upper", Some(1000.0)),
        );
        rows.push(format!(
            "| {name} | {:.3} | {:.3} | {:.3} | [{:.3}, {:.3}] | {cov} | {ratio} | [{:.2}, {:.2}] | {} % |",
            exact[i0].unwrap(),
            ln_g[i0].unwrap(),
            mean[i0].unwrap(),
            mean[sl].unwrap(),
            mean[su].unwrap(),
            mean[al].unwrap(),
            mean[au].unwrap(),
            pct(coverage[al].unwrap()),
        ));
    }
    rows
}

/// A cell of §7's table: MFVI accuracy (%), I/ln|G| of each objective, and the paired
/// gains in L^G/N and in accuracy (points), one per seed.
type CellStats = (f64, f64, f64, Vec<f64>, Vec<f64>);

/// One region of §7's table: prior scale, the initial ρ0s, and which cells (N, width).
type Region = (f64, &'static [f64], &'static str, fn(f64, f64) -> bool);

/// §7's table by region, generated from `reports/symmetry-regime/runs.parquet`: per cell
/// the MFVI accuracy, I/ln|G| of each objective (means over seeds) and the paired gains;
/// per region the range of those over its cells, or for a single cell mean ± sd (SE).
#[test]
fn section_7s_table_is_the_committed_report() {
    assert_quoted("§7", &section_7_table());
}

/// The rows of [`section_7s_table_is_the_committed_report`].
fn section_7_table() -> Vec<String> {
    let df = read_parquet(&repo("reports/symmetry-regime/runs.parquet"));
    let col =
        |name: &str| -> Vec<f64> { reals(&df, name).into_iter().map(|v| v.unwrap()).collect() };
    let (n, width, prior, rho, seed) = (
        col("n_train"),
        col("width"),
        col("prior_scale"),
        col("init_rho"),
        col("seed"),
    );
    let (acc, mi, ln_g, lg) = (
        col("test_accuracy"),
        col("mi_nats"),
        col("ln_group_order"),
        col("elbo_g_per_point"),
    );
    let objective = strs(&df, "objective");
    let regions: [Region; 13] = [
        (1.0, &[-3.0], "every N and d", |_, _| true),
        (1.0, &[-1.0], "N ≤ 10,000", |n, _| n <= 10_000.0),
        (1.0, &[-1.0], "N = 60,000", |n, _| n == 60_000.0),
        (1.0, &[0.0, 1.0], "every N and d run", |_, _| true),
        (0.1, &[-3.0], "d = 100, N = 2000 and 10,000", |n, d| {
            d == 100.0 && (n == 2000.0 || n == 10_000.0)
        }),
        (0.1, &[-3.0], "elsewhere", |n, d| {
            !(d == 100.0 && (n == 2000.0 || n == 10_000.0))
        }),
        (0.1, &[-1.0], "**d = 30, N = 10,000**", |n, d| {
            d == 30.0 && n == 10_000.0
        }),
        (0.1, &[-1.0], "**d = 30, N = 60,000**", |n, d| {
            d == 30.0 && n == 60_000.0
        }),
        (0.1, &[-1.0], "d = 100, N = 10,000", |n, d| {
            d == 100.0 && n == 10_000.0
        }),
        (0.1, &[-1.0], "d = 100, N = 60,000", |n, d| {
            d == 100.0 && n == 60_000.0
        }),
        (0.1, &[-1.0], "d ≤ 10, or N ≤ 2000", |n, d| {
            d <= 10.0 || n <= 2000.0
        }),
        (0.1, &[0.0, 1.0], "N ≤ 10,000", |n, _| n <= 10_000.0),
        (0.1, &[1.0], "N = 60,000", |n, _| n == 60_000.0),
    ];
    let mean = |v: &[f64]| mean_sd(v).0;
    let sd = |v: &[f64]| mean_sd(v).1;
    let minus = |s: String| s.replace('-', "−");
    let mut rows = Vec::new();
    for (p, rhos, label, keep) in regions {
        // The region's cells: (N, d, ρ0) with runs.
        let mut cells: Vec<(f64, f64, f64)> = Vec::new();
        for i in 0..n.len() {
            let key = (n[i], width[i], rho[i]);
            if prior[i] == p
                && rhos.contains(&rho[i])
                && keep(n[i], width[i])
                && !cells.contains(&key)
            {
                cells.push(key);
            }
        }
        // Per cell: MFVI accuracy, I/ln|G| of each objective, paired gains (L^G/N, accuracy).
        let stats: Vec<CellStats> = cells
            .iter()
            .map(|&(nn, d, r)| {
                let rows = |sym: bool| -> Vec<usize> {
                    (0..n.len())
                        .filter(|&i| (n[i], width[i], prior[i], rho[i]) == (nn, d, p, r))
                        .filter(|&i| (objective[i] != "mfvi") == sym)
                        .collect()
                };
                let (m, y) = (rows(false), rows(true));
                let pair = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
                    m.iter()
                        .map(|&i| {
                            let j = *y.iter().find(|&&j| seed[j] == seed[i]).unwrap();
                            f(j) - f(i)
                        })
                        .collect()
                };
                let ratio =
                    |v: &[usize]| mean(&v.iter().map(|&i| mi[i] / ln_g[i]).collect::<Vec<_>>());
                (
                    mean(&m.iter().map(|&i| 100.0 * acc[i]).collect::<Vec<_>>()),
                    ratio(&m),
                    ratio(&y),
                    pair(&|i| lg[i]),
                    pair(&|i| 100.0 * acc[i]),
                )
            })
            .collect();
        let range = |v: Vec<f64>, f: &dyn Fn(f64) -> String| {
            let (lo, hi) = extent(&v);
            if f(lo) == f(hi) {
                f(lo)
            } else {
                format!("{} … {}", f(lo), f(hi))
            }
        };
        let rho_text = rhos
            .iter()
            .map(|r| minus(format!("{r}")))
            .collect::<Vec<_>>()
            .join(", ");
        let line = if stats.len() == 1 {
            let (a, rm, rs, g, ga) = &stats[0];
            let k = g.len() as f64;
            minus(format!(
                "| {p} | {rho_text} | {label} | {} | {a:.1} | {rm:.3} → {rs:.3} | {:+.4} ± {:.4} (SE {:.4}) | {:+.2} ± {:.2} |",
                g.len(),
                mean(g),
                sd(g),
                sd(g) / k.sqrt(),
                mean(ga),
                sd(ga)
            ))
        } else {
            minus(format!(
                "| {p} | {rho_text} | {label} | {} | {} | {} → {} | {} | {} |",
                cells.len(),
                range(stats.iter().map(|s| s.0).collect(), &|v| format!("{v:.1}")),
                range(stats.iter().map(|s| s.1).collect(), &|v| format!("{v:.3}")),
                range(stats.iter().map(|s| s.2).collect(), &|v| format!("{v:.3}")),
                range(stats.iter().map(|s| mean(&s.3)).collect(), &|v| format!(
                    "{v:+.1e}"
                )),
                range(stats.iter().map(|s| mean(&s.4)).collect(), &|v| format!(
                    "{v:+.2}"
                )),
            ))
        };
        rows.push(line);
    }
    rows
}
