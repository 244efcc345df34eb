//! What every experiment shares: its name ([`Experiment`], in one registry), its
//! settings ([`ReproduceOptions`], with the journal that lets a killed run resume), its
//! result ([`Reproduction`]: tables and a summary) and the [`Study`] trait each
//! experiment's file implements; the figures it draws from its tables are
//! [`crate::study::figure`]'s.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::observe::Observer;
use crate::study::table::Table;

pub use crate::study::figure::{Figure, HeatMap, PathGroup, PlotSpec, Series, SeriesStyle};
pub(crate) use crate::study::figure::{contour_segments, ellipse, grouped_plot, mean_se_by};

/// The experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Experiment {
    /// Fig. 3 and 5.
    ModeInterpolation,
    /// Fig. 4, Tables 2–3.
    TractableBnn,
    /// Table 1.
    Mnist,
    /// Theorem 3.1.
    ModeProximity,
    /// Beyond the paper (issue 7): every estimator at equal wall time against exact I.
    EstimatorCost,
    /// Beyond the paper (issue 7): MNIST with MFVI, uniform SGM and the new objectives.
    MnistObjectives,
    /// Issue 18: the tractable BNN's unstated settings swept, and a rerun at the closest.
    TractableSweep,
    /// Issue 18: where I(g; ω) < ln|G| after training and where symmetrizing helps.
    SymmetryRegime,
    /// Issue 31: the regime's one positive finding tested on fresh seeds, as planned in
    /// `plans/symmetry-replication.md`.
    SymmetryReplication,
}

impl std::str::FromStr for Experiment {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Experiment::parse(s)
    }
}

impl std::fmt::Display for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every experiment with its name (its report folder and what `reproduce` takes) and
/// its [`Study`] (its file under [`crate::study::experiments`]), in the order `reproduce`
/// lists them: the one table that [`Experiment::ALL`], [`Experiment::name`],
/// [`Experiment::parse`] and [`Experiment::study`] read.
const REGISTRY: [(Experiment, &str, &dyn Study); 9] = {
    use crate::study::experiments::*;
    [
        (
            Experiment::ModeInterpolation,
            "mode-interpolation",
            &mode_interpolation::ModeInterpolation,
        ),
        (
            Experiment::TractableBnn,
            "tractable-bnn",
            &tractable_bnn::TractableBnn,
        ),
        (Experiment::Mnist, "mnist", &mnist::Mnist),
        (
            Experiment::ModeProximity,
            "mode-proximity",
            &mode_proximity::ModeProximity,
        ),
        (
            Experiment::EstimatorCost,
            "estimator-cost",
            &estimator_cost::EstimatorCost,
        ),
        (
            Experiment::MnistObjectives,
            "mnist-objectives",
            &mnist_objectives::MnistObjectives,
        ),
        (
            Experiment::TractableSweep,
            "tractable-sweep",
            &tractable_sweep::TractableSweep,
        ),
        (
            Experiment::SymmetryRegime,
            "symmetry-regime",
            &symmetry_regime::SymmetryRegime,
        ),
        (
            Experiment::SymmetryReplication,
            "symmetry-replication",
            &symmetry_replication::SymmetryReplication,
        ),
    ]
};

impl Experiment {
    /// Parses an experiment name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the unknown experiment and the known ones.
    pub fn parse(s: &str) -> Result<Self> {
        REGISTRY
            .iter()
            .find(|(_, name, _)| *name == s)
            .map(|(e, _, _)| *e)
            .ok_or_else(|| {
                let names: Vec<&str> = REGISTRY.iter().map(|(_, n, _)| *n).collect();
                Error::invalid(
                    "experiment",
                    s,
                    format!("expected one of {}", names.join(", ")),
                )
            })
    }

    /// Every experiment, in the order `reproduce` lists them.
    pub const ALL: [Experiment; 9] = {
        let mut all = [Experiment::ModeInterpolation; 9];
        let mut i = 0;
        while i < 9 {
            all[i] = REGISTRY[i].0;
            i += 1;
        }
        all
    };

    fn entry(self) -> &'static (Experiment, &'static str, &'static dyn Study) {
        REGISTRY
            .iter()
            .find(|(e, _, _)| *e == self)
            .expect("every experiment is in the registry (a test checks it)")
    }

    /// The experiment's name (its report folder).
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Whether the experiment reads MNIST.
    pub fn needs_mnist(self) -> bool {
        self.study().needs_mnist()
    }

    /// The experiment's [`Study`]: its file under [`crate::study::experiments`].
    pub fn study(self) -> &'static dyn Study {
        self.entry().2
    }
}

/// One experiment of `reproduce`: one file under [`crate::study::experiments`] each,
/// with a unit struct that implements this. The experiment says what its jobs are and
/// what it reports; [`ReproduceOptions::executor`] runs the jobs (parallel loop, journal,
/// progress).
pub trait Study: Sync {
    /// Which experiment this is.
    fn experiment(&self) -> Experiment;

    /// Whether it reads MNIST (from [`ReproduceOptions::mnist_dir`]).
    fn needs_mnist(&self) -> bool;

    /// Runs the experiment.
    ///
    /// # Errors
    ///
    /// Missing data, training divergence, journal I/O, each named.
    fn run(&self, options: &ReproduceOptions) -> Result<Reproduction>;

    /// The figures of the experiment's report, drawn from its tables alone (those of
    /// [`Study::run`], or the same read back from the report's Parquet files), so that a
    /// report's page can be drawn again without running anything.
    ///
    /// # Errors
    ///
    /// A table or column missing from `tables` (a report of another version), named.
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>>;
}

/// What an experiment produced.
#[derive(Clone, Debug)]
pub struct Reproduction {
    /// The experiment.
    pub experiment: Experiment,
    /// Tables to write as Parquet (the figures are drawn from them:
    /// [`Study::figures`]).
    pub tables: Vec<Table>,
    /// Markdown: our values beside the paper's.
    pub summary: String,
    /// `estimator-cost` only: the S of each timed estimate, keyed as
    /// [`ReproduceOptions::samples`] reads them (`manifest.json` records them, so that a
    /// rerun with them computes the same values).
    pub samples: Option<std::collections::BTreeMap<String, usize>>,
    /// Wall time, seconds.
    pub wall_s: f64,
}

/// Settings shared by the experiments.
#[derive(Clone)]
pub struct ReproduceOptions {
    /// Small, fast variant that checks the qualitative claims.
    pub quick: bool,
    /// Master seed.
    pub seed: u64,
    /// Folder of the MNIST IDX files (mnist and mode-proximity).
    pub mnist_dir: PathBuf,
    /// Told as runs finish (and when a journal lets the experiment resume).
    pub observer: Option<std::sync::Arc<dyn Observer>>,
    /// Where finished runs are recorded so an interrupted experiment resumes
    /// ([`crate::journal`]); `None` computes everything.
    pub journal: Option<std::sync::Arc<crate::journal::Journal>>,
    /// `estimator-cost` only: the S of each timed estimate (keys `posterior/probe`, as
    /// [`crate::study::experiments::estimator_cost::samples_of_rows`] keys them) instead
    /// of S chosen from timed pilots, so that the values do not depend on the
    /// machine's speed; `None` times the pilots.
    pub samples: Option<std::collections::BTreeMap<String, usize>>,
    /// The memory and time each step (a data set, a training run, an estimate) may take.
    pub limits: crate::resources::Limits,
}

impl std::fmt::Debug for ReproduceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReproduceOptions")
            .field("quick", &self.quick)
            .field("seed", &self.seed)
            .field("mnist_dir", &self.mnist_dir)
            .field("observer", &self.observer.as_ref().map(|_| "…"))
            .field("journal", &self.journal)
            .field("samples", &self.samples)
            .field("limits", &self.limits)
            .finish()
    }
}

impl ReproduceOptions {
    /// The executor of this run's jobs: its observer and journal.
    pub fn executor(&self) -> crate::execute::Executor<'_> {
        crate::execute::Executor::new(self.observer.as_deref(), self.journal.as_deref())
    }
}

/// `E_q[f(w)]` for `q = N(m, L Lᵀ)` in 2-D (`chol = [L11, L21, L22]`), by the trapezoid
/// rule in q's standardized coordinates `ε` (`w = m + L ε`) over `[−10, 10]²` with step
/// 1/20. For an `f` smooth in ε the rule's error falls like `e^{−2π² / h²}` (below 1e-12
/// here), and the tails beyond 10 carry under 1e-22 of q's mass.
pub(crate) fn gaussian_expectation_2d(
    mean: [f64; 2],
    chol: [f64; 3],
    f: &dyn Fn([f64; 2]) -> f64,
) -> f64 {
    const HALF: i32 = 200;
    let h = 10.0 / f64::from(HALF);
    let [l11, l21, l22] = chol;
    let phi = |e: f64| (-0.5 * e * e).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let mut total = 0.0;
    for i in -HALF..=HALF {
        let e0 = f64::from(i) * h;
        let mut row = 0.0;
        for j in -HALF..=HALF {
            let e1 = f64::from(j) * h;
            row += phi(e1) * f([mean[0] + l11 * e0, mean[1] + l21 * e0 + l22 * e1]);
        }
        total += phi(e0) * row;
    }
    total * h * h
}

pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (m, sd)
}

/// Which MNIST images a study used, for its summary, and whether they are the standard
/// full set (60,000 training and 10,000 test images), the only data a comparison with the
/// paper's numbers holds for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MnistUsed {
    /// Training images read (after any limit).
    pub n_train: usize,
    /// Test images read (after any limit).
    pub n_test: usize,
}

impl MnistUsed {
    /// Counts the images of `dir` that a study reading the first `limit` of each split
    /// uses.
    ///
    /// # Errors
    ///
    /// Those of [`crate::data::load_mnist`].
    pub fn of(
        dir: &std::path::Path,
        limit: Option<usize>,
        limits: &crate::resources::Limits,
    ) -> Result<Self> {
        use crate::data::{MnistSplit, load_mnist};
        Ok(MnistUsed {
            n_train: load_mnist(dir, MnistSplit::Train, limit, limits)?.len(),
            n_test: load_mnist(dir, MnistSplit::Test, limit, limits)?.len(),
        })
    }

    /// The standard full set.
    pub fn is_full(&self) -> bool {
        self.n_train == 60_000 && self.n_test == 10_000
    }
}

impl std::fmt::Display for MnistUsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |v: usize| {
            let s = v.to_string();
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        };
        write!(
            f,
            "MNIST, {} training / {} test images{}",
            n(self.n_train),
            n(self.n_test),
            if self.is_full() {
                " (the full set)"
            } else {
                " (not the full set: no comparison with the paper's numbers holds)"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry holds each experiment once, by a name of its own that parses back
    /// to it, with the study that says it is that experiment.
    #[test]
    fn the_registry_names_each_experiment_once() {
        for (i, e) in Experiment::ALL.into_iter().enumerate() {
            assert!(!Experiment::ALL[..i].contains(&e), "{e:?} twice");
            assert_eq!(Experiment::parse(e.name()).unwrap(), e);
            assert_eq!(e.study().experiment(), e);
            assert_eq!(e.to_string(), e.name());
        }
        // Every variant is registered: a new variant fails to compile here until it is
        // listed, and fails this test until it is in the registry.
        use Experiment::*;
        for e in [
            ModeInterpolation,
            TractableBnn,
            Mnist,
            ModeProximity,
            EstimatorCost,
            MnistObjectives,
            TractableSweep,
            SymmetryRegime,
            SymmetryReplication,
        ] {
            match e {
                ModeInterpolation | TractableBnn | Mnist | ModeProximity | EstimatorCost
                | MnistObjectives | TractableSweep | SymmetryRegime | SymmetryReplication => {
                    assert!(Experiment::ALL.contains(&e), "{e:?} is not in the registry")
                }
            }
        }
        let e = Experiment::parse("mnst").unwrap_err().to_string();
        assert!(
            e.contains("mode-interpolation") && e.contains("symmetry-regime"),
            "{e}"
        );
    }
}
