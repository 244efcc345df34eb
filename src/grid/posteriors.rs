//! The posterior files of a grid: read once, each with an id unique in the grid and
//! the SHA-256 of its bytes; a permutation spec file likewise; the default estimators.

use super::*;

/// A loaded posterior with its id and file hash.
#[derive(Clone, Debug)]
pub struct LoadedPosterior {
    /// Its id in the reports ([`posterior_ids`]).
    pub id: String,
    /// Path as given.
    pub path: PathBuf,
    /// sha256 of the bytes.
    pub sha256: String,
    /// The file's contents.
    pub file: PosteriorFile,
}

/// Loads every posterior, naming the first bad file; each is read with `options` (a
/// permutation spec, the layer order) and gets a unique id ([`posterior_ids`]).
///
/// # Errors
///
/// The errors of [`crate::io::load`] and of [`posterior_ids`].
pub fn load_posteriors(
    paths: &[PathBuf],
    options: ReadOptions<'_>,
) -> Result<Vec<LoadedPosterior>> {
    let ids = posterior_ids(paths)?;
    paths
        .iter()
        .zip(ids)
        .map(|(p, id)| {
            let (file, bytes) = load_with_bytes(p, options)?;
            Ok(LoadedPosterior {
                id,
                path: p.clone(),
                sha256: sha256_hex(&bytes),
                file,
            })
        })
        .collect()
}

/// The reports' id of each posterior file: its file stem where no other file of the run
/// has that stem, else the shortest suffix of its path (`a/post`, `runs/a/post`, then
/// with the extension) that no other file's candidates share, so that two files never
/// pool into one row.
///
/// # Errors
///
/// [`Error::InvalidParameter`] naming a file given twice (the same path, or two paths to
/// one file).
pub fn posterior_ids(paths: &[PathBuf]) -> Result<Vec<String>> {
    let full: Vec<PathBuf> = paths
        .iter()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect();
    for (i, f) in full.iter().enumerate() {
        if let Some(j) = full[..i].iter().position(|g| g == f) {
            return Err(Error::invalid(
                "--posterior",
                paths[i].display().to_string(),
                format!(
                    "the file is given twice (also as `{}`); each posterior is estimated once",
                    paths[j].display()
                ),
            ));
        }
    }
    // Candidates, shortest first: path suffixes ending in the stem, then in the name.
    let candidates = |p: &Path| -> Vec<String> {
        let parts: Vec<String> = p
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let Some((name, dirs)) = parts.split_last() else {
            return vec!["posterior".into()];
        };
        let stem = Path::new(name)
            .file_stem()
            .map_or_else(|| name.clone(), |s| s.to_string_lossy().into_owned());
        let mut out = Vec::new();
        for last in [stem, name.clone()] {
            for n in 0..=dirs.len() {
                let mut v: Vec<&str> = dirs[dirs.len() - n..].iter().map(String::as_str).collect();
                v.push(&last);
                out.push(v.join("/"));
            }
        }
        out
    };
    let lists: Vec<Vec<String>> = full.iter().map(|p| candidates(p)).collect();
    let ids: Vec<String> = lists
        .iter()
        .enumerate()
        .map(|(i, own)| {
            own.iter()
                .find(|c| {
                    lists
                        .iter()
                        .enumerate()
                        .all(|(j, other)| j == i || !other.contains(c))
                })
                .cloned()
                .unwrap_or_else(|| full[i].display().to_string())
        })
        .collect();
    Ok(ids)
}

impl LoadedPosterior {
    /// A posterior held in memory, under `id`; its path is empty and its hash is that of
    /// the file [`crate::io::save`] would write.
    ///
    /// # Errors
    ///
    /// Those of [`crate::io::to_bytes`].
    pub fn in_memory(id: impl Into<String>, file: PosteriorFile) -> Result<Self> {
        let bytes = crate::io::to_bytes(&file)?;
        Ok(LoadedPosterior {
            id: id.into(),
            path: PathBuf::new(),
            sha256: sha256_hex(&bytes),
            file,
        })
    }
}

/// The estimators `mi-est run` uses when none are named: the paper's I^K, and exact I
/// where every posterior has an exact estimator ([`exact_estimator`]: one hidden layer,
/// or a group of at most 10⁶ elements), else the sandwich interval, which applies at any
/// depth, and where every posterior is an MLP also the annealed interval (narrower on
/// deep nets whose units overlap; the tables quote the narrower); with a note naming the
/// first posterior that has no exact estimator.
pub fn default_estimators(posteriors: &[LoadedPosterior]) -> (Vec<EstimatorKind>, Option<String>) {
    let without_exact = posteriors.iter().find(|lp| {
        let q = &lp.file.posterior;
        !matches!(exact_estimator(q, 1, 0, ExactLimits::FULL), Ok(Some(_)))
    });
    let Some(lp) = without_exact else {
        return (vec![EstimatorKind::InfoNce, EstimatorKind::Exact], None);
    };
    let mut kinds = vec![EstimatorKind::InfoNce, EstimatorKind::Sandwich];
    if posteriors
        .iter()
        .all(|p| p.file.posterior.space().kernel_arch().is_some())
    {
        kinds.push(EstimatorKind::Annealed);
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let note = format!(
        "estimators {}: exact I is not computable for {} ({}), so {} stand in for it (--estimators to choose)",
        names.join(","),
        lp.id,
        lp.file.posterior.space().describe(),
        if kinds.len() == 3 {
            "the sandwich and the annealed intervals (--temperatures for the latter)"
        } else {
            "the sandwich interval"
        }
    );
    (kinds, Some(note))
}

/// A permutation spec file with the sha256 of its bytes.
#[derive(Clone, Debug)]
pub struct LoadedSpec {
    /// Path as given.
    pub path: PathBuf,
    /// sha256 of the bytes.
    pub sha256: String,
    /// The spec.
    pub spec: PermutationSpec,
}

/// Reads a permutation spec file (JSON; docs/specs.md).
///
/// # Errors
///
/// [`Error::Io`] if unreadable; [`Error::BadFile`] naming the file and what is wrong.
pub fn load_spec(path: &Path) -> Result<LoadedSpec> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::BadFile {
        path: path.to_path_buf(),
        reason: "not UTF-8 text".into(),
    })?;
    let spec = PermutationSpec::from_json(text).map_err(|e| Error::BadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(LoadedSpec {
        path: path.to_path_buf(),
        sha256: sha256_hex(&bytes),
        spec,
    })
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where a posterior came from, for messages.
pub(super) fn display_source(lp: &LoadedPosterior) -> String {
    if lp.path.as_os_str().is_empty() {
        format!("in memory, sha256 {}", &lp.sha256[..12])
    } else {
        format!("`{}`", lp.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::PosteriorFile;
    use crate::posterior::MeanFieldGaussian;
    use crate::weights::Arch;

    fn loaded(widths: &[usize]) -> LoadedPosterior {
        let arch = Arch::builder(widths.to_vec()).check().unwrap();
        let p = arch.n_params();
        let q = MeanFieldGaussian::from_mu_sigma(
            arch,
            (0..p).map(|i| (i as f64).sin()).collect(),
            vec![0.5; p],
        )
        .unwrap();
        let file = PosteriorFile {
            posterior: q,
            likelihood: None,
            prior_scale: 1.0,
            train_config: None,
            metadata: Default::default(),
        };
        LoadedPosterior::in_memory(format!("{widths:?}"), file).unwrap()
    }

    /// Exact I where every posterior has it; for a deep MLP beyond enumeration, the
    /// sandwich and the annealed intervals, said in the note.
    #[test]
    fn deep_mlps_get_both_intervals_by_default() {
        let (kinds, note) = default_estimators(&[loaded(&[3, 6, 2]), loaded(&[3, 4, 4, 2])]);
        assert_eq!(kinds, vec![EstimatorKind::InfoNce, EstimatorKind::Exact]);
        assert!(note.is_none());
        let (kinds, note) = default_estimators(&[loaded(&[3, 6, 2]), loaded(&[3, 12, 12, 2])]);
        assert_eq!(
            kinds,
            vec![
                EstimatorKind::InfoNce,
                EstimatorKind::Sandwich,
                EstimatorKind::Annealed
            ]
        );
        let note = note.unwrap();
        assert!(
            note.starts_with(
                "estimators infonce,sandwich,annealed: exact I is not computable for [3, 12, 12, 2]"
            ),
            "{note}"
        );
    }
}
