//! The bias–variance and bound tables as a page's tables and as aligned terminal text.

use crate::study::grid::{BiasVarianceRow, BoundRow};

/// The bias–variance and bound tables for the report's page.
pub(super) fn page_tables(bv: &[BiasVarianceRow], bd: &[BoundRow]) -> Vec<super::PageTable> {
    let f = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{x:.4}"));
    let k = |k: Option<u64>| k.map_or("–".to_string(), |k| k.to_string());
    vec![
        super::PageTable {
            name: "bias_variance".into(),
            header: [
                "posterior",
                "estimator",
                "K",
                "R",
                "mean",
                "bias",
                "sd",
                "RMSE",
                "cap",
                "saturated",
            ]
            .map(String::from)
            .to_vec(),
            rows: bv
                .iter()
                .map(|r| {
                    vec![
                        r.posterior_id.clone(),
                        r.estimator.clone(),
                        k(r.k),
                        r.n_repeats.to_string(),
                        if r.n_cut > 0 {
                            format!("{:.4} (cut)", r.mean_nats)
                        } else {
                            format!("{:.4}", r.mean_nats)
                        },
                        f(r.bias_nats),
                        f(r.variance_nats2.map(f64::sqrt)),
                        f(r.rmse_nats),
                        format!("{:.4}", r.ln_cap_nats),
                        if r.saturated { "yes" } else { "" }.into(),
                    ]
                })
                .collect(),
        },
        super::PageTable {
            name: "bounds".into(),
            header: [
                "posterior",
                "estimator",
                "K",
                "prior",
                "I",
                "L/N",
                "(L+I)/N",
                "KL",
                "KL_sym",
            ]
            .map(String::from)
            .to_vec(),
            rows: bd
                .iter()
                .map(|r| {
                    vec![
                        r.posterior_id.clone(),
                        r.estimator.clone(),
                        k(r.k),
                        format!("N(0, {}²)", r.prior_scale),
                        if r.n_cut > 0 || r.cut_at_kl {
                            format!("{:.4} (cut)", r.mi_nats)
                        } else {
                            format!("{:.4}", r.mi_nats)
                        },
                        r.elbo_per_point.map_or("–".into(), |v| format!("{v:.6}")),
                        r.elbo_sym_per_point
                            .map_or("–".into(), |v| format!("{v:.6}")),
                        format!("{:.3}", r.kl_nats),
                        format!("{:.3}", r.kl_sym_nats),
                    ]
                })
                .collect(),
        },
    ]
}

/// The bias–variance and bound tables as aligned text for the terminal: the page's
/// tables (`page_tables`), the posterior and estimator columns left-aligned in 28
/// characters and the numbers right-aligned, with `-` for a missing value.
pub fn format_summary(bv: &[BiasVarianceRow], bd: &[BoundRow]) -> String {
    // Column widths after the two 28-character name columns, per table.
    const WIDTHS: [&[usize]; 2] = [&[6, 3, 16, 10, 10, 10, 8, 4], &[6, 10, 16, 12, 12, 12, 12]];
    let mut s = String::new();
    for (t, (table, widths)) in page_tables(bv, bd).iter().zip(WIDTHS).enumerate() {
        if t > 0 {
            s.push('\n');
        }
        // The terminal header says "rmse" and "sat" where the page says "RMSE" and
        // "saturated".
        let header: Vec<String> = table
            .header
            .iter()
            .map(|h| match h.as_str() {
                "RMSE" => "rmse".into(),
                "saturated" => "sat".into(),
                _ => h.clone(),
            })
            .collect();
        for row in std::iter::once(&header).chain(&table.rows) {
            let mut line = format!("{:<28} {:<28}", row[0], row[1]);
            for (cell, w) in row[2..].iter().zip(widths) {
                let cell = if cell == "–" { "-" } else { cell.as_str() };
                line.push_str(&format!(" {cell:>w$}"));
            }
            s.push_str(&line);
            s.push('\n');
        }
    }
    s
}
