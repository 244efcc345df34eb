//! The compiled part of the `mi_est` Python package: a thin layer over the lean library
//! (no faer, Polars or plotters). The Python layer (`pysrc/mi_est/__init__.py`) gives it
//! its idioms; everything numeric happens in `mi_est` with the GIL released.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use mi_est::estimators::EstimatorKind;
use mi_est::estimators::{ESTIMATOR_NAMES, Estimate, EstimatorSpec};
use mi_est::grid::{GridConfig, LoadedPosterior, RawRow, run_grid};
use mi_est::io::{PosteriorFile, Recognised};
use mi_est::resources::Limits;
use mi_est::row::{Cell, Row};
use mi_est::symmetry::spec::PermutationSpec;
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

pyo3::create_exception!(
    _mi_est,
    MiEstError,
    PyValueError,
    "An input or setting mi_est refuses; `.field` names it (a parameter, tensor or file) and `.value` is the offending value, where the library knows them."
);

/// The field and value an error names, where it names them.
fn field_and_value(e: &mi_est::Error) -> (Option<String>, Option<String>) {
    match e {
        mi_est::Error::InvalidParameter { field, value, .. } => {
            (Some(field.clone()), Some(value.clone()))
        }
        mi_est::Error::LengthMismatch { field, actual, .. } => {
            (Some(field.clone()), Some(actual.to_string()))
        }
        mi_est::Error::BadFile { path, .. } if !path.as_os_str().is_empty() => {
            (Some(path.display().to_string()), None)
        }
        mi_est::Error::Context { source, .. } => field_and_value(source),
        _ => (None, None),
    }
}

/// A library error as the Python exception a caller expects: `OSError` for files that
/// cannot be read or written, [`MiEstError`] (a `ValueError` naming the field, file or
/// value) otherwise.
fn to_py(e: mi_est::Error) -> PyErr {
    // The message with its causes, as the command prints them; tensors handed over from
    // Python come from no file, so their errors carry no file name before the colon.
    let mut message = match &e {
        mi_est::Error::BadFile { path, reason } if path.as_os_str().is_empty() => reason.clone(),
        e => e.to_string(),
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    if let mi_est::Error::Io { .. } = e {
        return PyOSError::new_err(message);
    }
    let (field, value) = field_and_value(&e);
    Python::attach(|py| {
        let err = MiEstError::new_err(message);
        let instance = err.value(py);
        // Setting attributes on a fresh exception instance cannot fail.
        let _ = instance.setattr("field", field);
        let _ = instance.setattr("value", value);
        err
    })
}

/// The limits of a call: the machine's, with `max_memory_gib` and `max_hours` where
/// given (as the command's `--max-memory-gib` and `--max-hours`).
fn limits(max_memory_gib: Option<f64>, max_hours: Option<f64>) -> PyResult<Limits> {
    Limits::new(max_memory_gib, max_hours).map_err(to_py)
}

fn parse_spec(spec: Option<&str>) -> PyResult<Option<PermutationSpec>> {
    spec.map(|s| PermutationSpec::from_json(s).map_err(to_py))
        .transpose()
}

/// A mean-field Gaussian posterior with what was read beside it.
#[pyclass(name = "_Posterior", frozen, module = "mi_est._mi_est")]
struct Posterior {
    file: PosteriorFile,
    how: Recognised,
}

/// The values of one array (float32 or float64, any layout) in row-major order, with its
/// shape; `name` names it in errors.
fn array_values(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<(Vec<usize>, Vec<f64>)> {
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, f64>>() {
        return Ok((a.shape().to_vec(), a.as_array().iter().copied().collect()));
    }
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, f32>>() {
        return Ok((
            a.shape().to_vec(),
            a.as_array().iter().map(|&x| x as f64).collect(),
        ));
    }
    Err(PyTypeError::new_err(format!(
        "`{name}`: expected a float32 or float64 numpy array, got {}",
        obj.get_type().name()?
    )))
}

#[pymethods]
impl Posterior {
    /// A posterior from named arrays (`{name: ndarray}`), read as a file holding those
    /// tensors would be, in the dict's order (a state_dict keeps its modules' order);
    /// `metadata` as a file's; `spec` a permutation spec as JSON; `layers` the forward
    /// order of the layers by name.
    #[staticmethod]
    #[pyo3(signature = (tensors, metadata, spec=None, layers=None))]
    fn from_tensors(
        py: Python<'_>,
        tensors: &Bound<'_, PyDict>,
        metadata: HashMap<String, String>,
        spec: Option<&str>,
        layers: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let mut read = Vec::with_capacity(tensors.len());
        for (k, v) in tensors.iter() {
            let name: String = k
                .extract()
                .map_err(|_| PyTypeError::new_err("tensor names must be strings"))?;
            let (shape, values) = array_values(&name, &v)?;
            read.push((name, shape, values));
        }
        let spec = parse_spec(spec)?;
        let metadata: BTreeMap<String, String> = metadata.into_iter().collect();
        let options = mi_est::io::ReadOptions {
            spec: spec.as_ref(),
            layers: layers.as_deref(),
            ..Default::default()
        };
        let (file, how) = py
            .detach(|| mi_est::io::from_tensors(&read, &metadata, options))
            .map_err(to_py)?;
        Ok(Posterior { file, how })
    }

    /// A posterior file (safetensors or .npz), under `spec` (JSON) if given, with the
    /// layers in the forward order `layers` (names) if given.
    #[staticmethod]
    #[pyo3(signature = (path, spec=None, layers=None, max_memory_gib=None))]
    fn load(
        py: Python<'_>,
        path: PathBuf,
        spec: Option<&str>,
        layers: Option<Vec<String>>,
        max_memory_gib: Option<f64>,
    ) -> PyResult<Self> {
        let spec = parse_spec(spec)?;
        let options = mi_est::io::ReadOptions {
            spec: spec.as_ref(),
            layers: layers.as_deref(),
            limits: limits(max_memory_gib, None)?,
            ..Default::default()
        };
        let (file, how) = py
            .detach(|| mi_est::io::inspect(&path, options))
            .map_err(to_py)?;
        Ok(Posterior { file, how })
    }

    /// Writes the posterior as a safetensors file (temporary file, then rename).
    #[pyo3(signature = (path, overwrite=false))]
    fn save(&self, path: PathBuf, overwrite: bool) -> PyResult<()> {
        mi_est::io::save(&path, &self.file, overwrite).map_err(to_py)
    }

    /// Number of variational parameters P.
    #[getter]
    fn n_params(&self) -> usize {
        self.file.posterior.n_params()
    }

    /// ln|G| in nats.
    #[getter]
    fn ln_group_order(&self) -> f64 {
        self.file.posterior.space().group().ln_order()
    }

    /// The sizes of the permutations making up G (an MLP's hidden widths).
    #[getter]
    fn permutation_sizes(&self) -> Vec<usize> {
        self.file.posterior.space().group().hidden_widths().to_vec()
    }

    /// The widths of an MLP, or `None` for a posterior read under a spec.
    #[getter]
    fn widths(&self) -> Option<Vec<usize>> {
        self.file.posterior.arch().map(|a| a.widths().to_vec())
    }

    /// The permutation spec as JSON, or `None` for an MLP given by widths.
    #[getter]
    fn spec(&self) -> Option<String> {
        self.file
            .posterior
            .space()
            .spec_space()
            .map(|s| s.spec().to_json())
    }

    /// The variational tensors as (name, shape), in the order of the flat vectors.
    #[getter]
    fn layout(&self) -> Vec<(String, Vec<usize>)> {
        let q = &self.file.posterior;
        match (q.arch(), q.space().spec_space()) {
            (_, Some(s)) => s.layout(),
            (Some(arch), None) => mi_est::symmetry::spec::mlp_layout(arch),
            (None, None) => Vec::new(),
        }
    }

    /// A short description: `widths [784, 10, 10]` or `spec h1 (3), h2 (4)`.
    #[getter]
    fn architecture(&self) -> String {
        self.file.posterior.space().describe()
    }

    /// The naming schemes the tensors followed.
    #[getter]
    fn schemes(&self) -> Vec<String> {
        self.how
            .schemes
            .iter()
            .map(|s| s.describe().to_string())
            .collect()
    }

    /// The prior scale recorded with the posterior (1 if none).
    #[getter]
    fn prior_scale(&self) -> f64 {
        self.file.prior_scale
    }

    /// μ as a new float64 array (flat, in the order of `layout`).
    fn mu<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, self.file.posterior.mu())
    }

    /// σ as a new float64 array (flat, in the order of `layout`).
    fn sigma<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, self.file.posterior.sigma())
    }

    /// H(q) in nats.
    fn entropy(&self) -> f64 {
        self.file.posterior.entropy()
    }

    /// KL(q ‖ N(0, s²I)) in nats (s: the recorded prior scale unless given).
    #[pyo3(signature = (prior_scale=None))]
    fn kl_to_prior(&self, prior_scale: Option<f64>) -> PyResult<f64> {
        self.file
            .posterior
            .kl_to_prior(prior_scale.unwrap_or(self.file.prior_scale))
            .map_err(to_py)
    }
}

/// One estimate as a dict (the Python layer wraps it in an `Estimate`).
fn estimate_dict<'py>(py: Python<'py>, e: Estimate) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("estimator", e.estimator.name())?;
    d.set_item("value", e.value)?;
    d.set_item("std_err", e.std_err)?;
    d.set_item("ln_group_order", e.ln_group_order)?;
    d.set_item("cap", e.ln_cap)?;
    d.set_item("k", e.k)?;
    d.set_item("samples", e.n_samples)?;
    d.set_item("seed", e.seed)?;
    d.set_item("entropy_q", e.entropy_q)?;
    d.set_item("bracket", e.bracket)?;
    d.set_item("wall_s", e.wall_s)?;
    let interval = e.interval.as_ref();
    d.set_item("lower", interval.map(|i| i.lower))?;
    d.set_item("upper", interval.map(|i| i.upper))?;
    d.set_item("lower_cut", interval.map(|i| i.cut().0))?;
    d.set_item("upper_cut", interval.map(|i| i.cut().1))?;
    d.set_item("upper_std_err", interval.and_then(|i| i.upper_std_err))?;
    d.set_item("width_std_err", interval.and_then(|i| i.width_std_err))?;
    d.set_item(
        "upper_terms",
        interval.map(|i| PyArray1::from_slice(py, &i.upper_terms)),
    )?;
    d.set_item("terms", PyArray1::from_vec(py, e.terms))?;
    Ok(d)
}

/// `I(g; ω)` of `posterior` by `estimator`; the GIL is released while it runs.
#[pyfunction]
#[pyo3(signature = (posterior, estimator_name, k, samples, seed, max_memory_gib=None, max_hours=None))]
#[allow(clippy::too_many_arguments)]
fn estimate<'py>(
    py: Python<'py>,
    posterior: &Bound<'py, Posterior>,
    estimator_name: &str,
    k: Option<usize>,
    samples: usize,
    seed: u64,
    max_memory_gib: Option<f64>,
    max_hours: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let q = &posterior.get().file.posterior;
    let limits = limits(max_memory_gib, max_hours)?;
    let spec = EstimatorSpec::new(EstimatorKind::parse(estimator_name).map_err(to_py)?)
        .with_samples(samples)
        .with_seed(seed);
    let spec = match k {
        Some(k) => spec.with_k(k),
        None => spec,
    };
    let est = py.detach(|| spec.estimate(q, &limits)).map_err(to_py)?;
    estimate_dict(py, est)
}

/// A raw row of the grid as a dict with the columns of `raw.parquet`, in its order.
fn row_dict<'py>(py: Python<'py>, r: &RawRow) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in r.cells() {
        match value {
            Cell::Str(s) => d.set_item(name, s)?,
            Cell::OptStr(s) => d.set_item(name, s)?,
            Cell::U64(v) => d.set_item(name, v)?,
            Cell::OptU64(v) => d.set_item(name, v)?,
            Cell::F64(v) => d.set_item(name, v)?,
            Cell::OptF64(v) => d.set_item(name, v)?,
            Cell::Bool(v) => d.set_item(name, v)?,
        }
    }
    Ok(d)
}

/// The grid of `mi-est run` over `posteriors` (file paths, or (id, posterior) pairs), as
/// its raw rows: the same items, seeds and numbers as the command with the same settings.
#[pyfunction]
#[pyo3(signature = (paths, objects, estimators, ks, temperatures, samples, repeats, seed, spec=None, layers=None, max_memory_gib=None, max_hours=None))]
#[allow(clippy::too_many_arguments)]
fn grid<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    objects: Vec<(String, Bound<'py, Posterior>)>,
    estimators: Vec<String>,
    ks: Vec<usize>,
    temperatures: Vec<usize>,
    samples: usize,
    repeats: usize,
    seed: u64,
    spec: Option<&str>,
    layers: Option<Vec<String>>,
    max_memory_gib: Option<f64>,
    max_hours: Option<f64>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let spec = parse_spec(spec)?;
    let kinds = EstimatorKind::parse_list(&estimators).map_err(to_py)?;
    let limits = limits(max_memory_gib, max_hours)?;
    let options = mi_est::io::ReadOptions {
        spec: spec.as_ref(),
        layers: layers.as_deref(),
        limits,
        ..Default::default()
    };
    let mut loaded = py
        .detach(|| mi_est::grid::load_posteriors(&paths, options))
        .map_err(to_py)?;
    for (id, p) in &objects {
        loaded.push(LoadedPosterior::in_memory(id.clone(), p.get().file.clone()).map_err(to_py)?);
    }
    let config = GridConfig {
        posteriors: loaded.iter().map(|p| p.path.clone()).collect(),
        spec: None,
        layers: None,
        prior_scale: None,
        estimators: kinds,
        ks,
        temperatures,
        samples,
        repeats,
        seed,
        shard: (0, 1),
        limits,
    }
    .check()
    .map_err(to_py)?;
    let grid = mi_est::grid::check_grid(&config, &loaded).map_err(to_py)?;
    let rows = py
        .detach(|| run_grid(&config, &loaded, &grid, &mi_est::observe::Silent, None))
        .map_err(to_py)?;
    rows.iter().map(|r| row_dict(py, r)).collect()
}

/// The symmetrization term of `estimator` and its gradient for the posterior with
/// `posterior`'s space and the means `mu` and scales `sigma` (flat, in its order), drawn as
/// our trainer draws step `step` of `seed` (`mi_est::estimators::term_and_grad_at`); the
/// GIL is released while it runs.
#[pyfunction]
#[pyo3(signature = (posterior, mu, sigma, estimator_name, k, samples, seed, step))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn mi_term<'py>(
    py: Python<'py>,
    posterior: &Bound<'py, Posterior>,
    mu: PyReadonlyArray1<'py, f64>,
    sigma: PyReadonlyArray1<'py, f64>,
    estimator_name: &str,
    k: Option<usize>,
    samples: usize,
    seed: u64,
    step: u64,
) -> PyResult<(f64, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)> {
    let space = posterior.get().file.posterior.space().clone();
    let (mu, sigma) = (mu.as_array().to_vec(), sigma.as_array().to_vec());
    let kind = EstimatorKind::parse(estimator_name).map_err(to_py)?;
    let term = py
        .detach(|| {
            let mi = mi_est::estimators::mi_gradient(kind, k)?;
            let q = mi_est::posterior::MeanFieldGaussian::from_mu_sigma(space, mu, sigma)?;
            mi_est::estimators::term_and_grad_at(mi.as_ref(), &q, seed, step, samples)
        })
        .map_err(to_py)?;
    Ok((
        term.value,
        PyArray1::from_vec(py, term.grad_mu),
        PyArray1::from_vec(py, term.grad_sigma),
    ))
}

/// The first `n` standard normals of our trainer's draw stream at `step` of `seed`: the ε
/// of its first weight draw (for tests that repeat a trainer's step elsewhere).
#[pyfunction]
fn trainer_noise<'py>(
    py: Python<'py>,
    seed: u64,
    step: u64,
    n: usize,
) -> Bound<'py, PyArray1<f64>> {
    let mut rng = mi_est::rng::stream(mi_est::rng::child_seed(seed, 2), step);
    let mut eps = vec![0.0; n];
    mi_est::rng::fill_standard_normal(&mut rng, &mut eps);
    PyArray1::from_vec(py, eps)
}

#[pymodule]
fn _mi_est(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Posterior>()?;
    m.add("MiEstError", m.py().get_type::<MiEstError>())?;
    m.add(
        "GRADIENT_ESTIMATORS",
        mi_est::estimators::GRADIENT_NAMES.to_vec(),
    )?;
    m.add_function(wrap_pyfunction!(mi_term, m)?)?;
    m.add_function(wrap_pyfunction!(trainer_noise, m)?)?;
    m.add_function(wrap_pyfunction!(estimate, m)?)?;
    m.add_function(wrap_pyfunction!(grid, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("ESTIMATORS", ESTIMATOR_NAMES.to_vec())?;
    Ok(())
}
