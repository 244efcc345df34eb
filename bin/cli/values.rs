//! The values the command's flags take, checked as clap parses them, and the usage
//! errors (exit status 2) that name the flag of a value refused later.

/// A positive, finite number.
pub(crate) fn positive_f64(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

/// A finite number.
pub(crate) fn finite_f64(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a finite number")),
    }
}

/// A finite number >= 0.
pub(crate) fn nonnegative_f64(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number >= 0")),
    }
}

/// A whole number >= 1.
pub(crate) fn positive_usize(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) if s.trim().is_empty() => {
            Err("an empty value in the list (two commas, or a comma at an end)".into())
        }
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// One K: a whole number >= 1 (K counts the identity).
pub(crate) fn k_value(s: &str) -> std::result::Result<usize, String> {
    positive_usize(s).map_err(|e| format!("{e} (K counts the identity, so K >= 1)"))
}

/// One estimator name of `--estimators`.
pub(crate) fn estimator_name(s: &str) -> std::result::Result<String, String> {
    if s.trim().is_empty() {
        return Err("an empty value in the list (two commas, or a comma at an end)".into());
    }
    mi_est::estimators::EstimatorKind::parse_list(&[s.to_string()])
        .map(|_| s.trim().to_string())
        .map_err(|e| match e {
            mi_est::Error::InvalidParameter { reason, .. } => reason,
            other => other.to_string(),
        })
}

/// A bad value found after parsing (a combination of flags, a value the library
/// refused): exits with clap's usage status 2, naming the flag.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The library's refusal of a setting, as a usage error naming the flag that set it:
/// `flags` maps the library's field names (`batch_size`) to flags (`--batch`).
pub(crate) fn flagged(e: mi_est::Error, flags: &[(&str, &str)]) -> anyhow::Error {
    match e {
        mi_est::Error::InvalidParameter {
            field,
            value,
            reason,
        } => {
            let flag = flags
                .iter()
                .find(|(f, _)| field == *f || field.starts_with(&format!("{f}[")))
                .map_or(field.as_str(), |(_, flag)| flag);
            anyhow::Error::new(Usage(format!(
                "invalid value `{value}` for {flag}: {reason}"
            )))
        }
        other => other.into(),
    }
}

/// The flags of `train`'s settings, by the library's names.
pub(crate) const TRAIN_FLAGS: &[(&str, &str)] = &[
    ("epochs", "--epochs"),
    ("batch_size", "--batch"),
    ("lr", "--lr"),
    ("prior_scale", "--prior-scale"),
    ("n_train_samples", "--samples"),
    ("init_mu_std", "--init-mu-std"),
    ("init_rho", "--init-rho"),
    ("widths", "--hidden"),
    ("k", "--k"),
    ("likelihood", "--likelihood"),
];

/// The flags of `run`'s settings, by the library's names.
pub(crate) const RUN_FLAGS: &[(&str, &str)] = &[
    ("k", "--k"),
    ("samples", "--samples"),
    ("repeats", "--repeats"),
    ("estimator", "--estimators"),
    ("estimators", "--estimators"),
    ("posterior", "--posterior"),
    ("shard-index", "--shard-index"),
    ("elbo_samples", "--elbo-samples"),
];

/// The flags of `demo`'s settings, by the library's names.
pub(crate) const DEMO_FLAGS: &[(&str, &str)] = &[
    ("widths", "--widths"),
    ("rho", "--rho"),
    ("k", "--k"),
    ("samples", "--samples"),
    ("n_samples", "--samples"),
];

/// A `--layers` list.
#[derive(Clone, Debug)]
pub(crate) struct Layers(pub(crate) Vec<String>);

pub(crate) fn parse_layers(s: &str) -> std::result::Result<Layers, String> {
    mi_est::io::order::parse_layer_list(s)
        .map(Layers)
        .map_err(|e| e.to_string())
}
