//! Rows checked against the grid that should hold them, and values against what their
//! estimators can return: what `merge` asks of rows it did not compute, and `run` of its own.

use super::*;

/// Checks rows against the grid that `config` describes, item by item: the item index,
/// the posterior (id and SHA-256), the estimator (as the item's estimator names itself),
/// K, S, the repeat and the seed; and each value against what its estimator can return
/// ([`RawRow::check_values`]). What `merge` asks of rows that it did not compute.
///
/// # Errors
///
/// [`Error::InvalidParameter`] naming the row (its item) and the field that does not
/// match, with the grid's value.
pub fn check_rows(
    config: &GridConfig,
    posteriors: &[LoadedPosterior],
    rows: &[RawRow],
) -> Result<()> {
    let items = grid_items(config);
    if rows.len() != items.len() {
        return Err(Error::invalid(
            "rows",
            rows.len(),
            format!("the grid has {} items", items.len()),
        ));
    }
    let mut names: std::collections::HashMap<(usize, EstimatorKind), String> =
        std::collections::HashMap::new();
    for (item, row) in items.iter().zip(rows) {
        let lp = &posteriors[item.posterior];
        let name = match names.entry((item.posterior, item.estimator)) {
            std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let name = match item.estimator.sides() {
                    Some(_) => item.estimator.name().to_string(),
                    None => item_estimator(item, config, &lp.file.posterior, 0, &lp.id)?
                        .name()
                        .to_string(),
                };
                e.insert(name).clone()
            }
        };
        let mismatch = |field: &str, got: String, want: String| {
            Error::invalid(
                format!("{field}` of the row of item `{}", item.index),
                got,
                format!("the grid has {want}"),
            )
        };
        let k = |k: Option<u64>| k.map_or("none".to_string(), |k| k.to_string());
        let expect = [
            ("item", row.item.to_string(), item.index.to_string()),
            ("posterior_id", row.posterior_id.clone(), lp.id.clone()),
            (
                "posterior_sha256",
                row.posterior_sha256.clone(),
                lp.sha256.clone(),
            ),
            ("estimator", row.estimator.clone(), name),
            ("k", k(row.k), k(item.k.map(|k| k as u64))),
            (
                "n_samples",
                row.n_samples.to_string(),
                config.samples.to_string(),
            ),
            ("repeat", row.repeat.to_string(), item.repeat.to_string()),
            (
                "seed",
                row.seed.to_string(),
                item.seed(config.seed).to_string(),
            ),
        ];
        for (field, got, want) in expect {
            if got != want {
                return Err(mismatch(field, got, want));
            }
        }
        row.check_values().map_err(|e| match e {
            Error::InvalidParameter {
                field,
                value,
                reason,
            } => Error::invalid(
                format!("{field}` of the row of item `{}", item.index),
                value,
                reason,
            ),
            other => other,
        })?;
        let h = lp.file.posterior.entropy();
        if (row.entropy_q_nats - h).abs() > 1e-9 * h.abs().max(1.0) {
            return Err(mismatch(
                "entropy_q_nats",
                row.entropy_q_nats.to_string(),
                format!("H(q) = {h} for posterior {}", lp.id),
            ));
        }
    }
    Ok(())
}

impl RawRow {
    /// Checks that the row's values are numbers its estimator can return: every value
    /// finite (standard errors and widths ≥ 0), ln cap and ln|G| ≥ 0, and an InfoNCE or
    /// exact estimate at most its cap (ln K or ln|G|: each of its terms is). The sandwich's
    /// raw upper bound may exceed ln|G| (the reports cut it, keeping the raw value).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the field.
    pub fn check_values(&self) -> Result<()> {
        let tol = |v: f64| 1e-9 * v.abs().max(1.0);
        let finite = [
            ("mi_nats", Some(self.mi_nats)),
            ("ln_cap_nats", Some(self.ln_cap_nats)),
            ("ln_group_order_nats", Some(self.ln_group_order_nats)),
            ("entropy_q_nats", Some(self.entropy_q_nats)),
            ("max_term_share", self.max_term_share),
            ("upper_nats", self.upper_nats),
            ("bracket_nats", self.bracket_nats),
            ("wall_s", Some(self.wall_s)),
        ];
        for (field, v) in finite {
            if let Some(v) = v
                && !v.is_finite()
            {
                return Err(Error::invalid(field, v, "must be finite"));
            }
        }
        let non_negative = [
            ("std_err_nats", self.std_err_nats),
            ("upper_std_err_nats", self.upper_std_err_nats),
            ("width_std_err_nats", self.width_std_err_nats),
            ("ln_cap_nats", Some(self.ln_cap_nats)),
            ("ln_group_order_nats", Some(self.ln_group_order_nats)),
            ("wall_s", Some(self.wall_s)),
        ];
        for (field, v) in non_negative {
            // NaN: a standard error of one draw, which the estimators leave undefined.
            if let Some(v) = v
                && (v < 0.0 || v.is_infinite())
            {
                return Err(Error::invalid(field, v, "must be a number ≥ 0"));
            }
        }
        if let Some(w) = self.width_nats
            && !w.is_finite()
        {
            return Err(Error::invalid("width_nats", w, "must be finite"));
        }
        let capped =
            self.estimator == EstimatorKind::InfoNce.name() || self.estimator.starts_with("exact");
        if capped && self.mi_nats > self.ln_cap_nats + tol(self.ln_cap_nats) {
            return Err(Error::invalid(
                "mi_nats",
                self.mi_nats,
                format!(
                    "exceeds the estimator's cap {} (no term of {} can)",
                    self.ln_cap_nats, self.estimator
                ),
            ));
        }
        Ok(())
    }
}
