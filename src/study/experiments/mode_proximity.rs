//! Mode proximity (the paper's Theorem 3.1): how far the nearest permuted copy of a
//! weight draw lies, against the posterior's spread.

use rayon::prelude::*;

use crate::data::{MnistSplit, load_mnist};
use crate::error::Result;
use crate::estimators::UnitCost;
use crate::posterior::MeanFieldGaussian;
use crate::rng::child_seed;
use crate::study::experiment::{
    Experiment, Figure, PlotSpec, ReproduceOptions, Reproduction, SeriesStyle, Study,
};
use crate::study::figure::extent;
use crate::study::format::number;
use crate::study::table::{Table, Values};
use crate::symmetry::Group;
use crate::train::{TrainConfig, initial_posterior, train};
use crate::weights::Arch;
use crate::weights::Likelihood;

/// For one hidden layer: `min_{g ≠ e} ‖ω − g·ω‖`, attained by swapping the two closest
/// hidden units (`√2 ‖θ_i − θ_j‖`, since a cycle of length m moves m units by at least
/// the smallest pair distance each), from the unit cost layout.
///
/// # Errors
///
/// [`crate::Error::UnsupportedArchitecture`] without exactly one hidden layer.
pub fn min_swap_distance(q: &MeanFieldGaussian, omega: &[f64]) -> Result<f64> {
    let uc = UnitCost::new(q)?;
    let (d, n) = (uc.width(), uc.n_per_unit());
    let mut theta = vec![0.0; d * n];
    let mut c = vec![0.0; d * d];
    uc.fill_in_place(omega, &mut theta, &mut c);
    let mut best = f64::INFINITY;
    for i in 0..d {
        for j in i + 1..d {
            let s: f64 = (0..n)
                .map(|k| (theta[i * n + k] - theta[j * n + k]).powi(2))
                .sum();
            best = best.min((2.0 * s).sqrt());
        }
    }
    Ok(best)
}

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ModeProximity;

impl Study for ModeProximity {
    fn experiment(&self) -> Experiment {
        Experiment::ModeProximity
    }

    /// `proximity`: the closest equivalent mode relative to ‖ω‖ against the width, at
    /// initialization and trained, beside the theorem's bound 2R/‖ω‖ (log scale: they
    /// differ by decades).
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>> {
        let t = crate::study::table::find(tables, "proximity")?;
        let (width, weights, ratio, bound) = (
            t.reals("width")?,
            t.texts("weights")?,
            t.reals("min_distance_over_norm")?,
            t.reals("paper_bound_over_norm")?,
        );
        let mut plot = PlotSpec::new(
            "proximity",
            "Closest equivalent mode, relative to ‖ω‖",
            "hidden width",
            "min ‖ω − g·ω‖ / ‖ω‖",
        );
        plot.lines = true;
        plot.log_y = true;
        let mut ratios = Vec::new();
        for (c, label) in ["initialization", "trained"].into_iter().enumerate() {
            let rows: Vec<usize> = (0..width.len()).filter(|&i| weights[i] == label).collect();
            ratios.extend(rows.iter().map(|&i| ratio[i]));
            plot = plot.series(
                &format!("measured, {label}"),
                rows.iter().map(|&i| (width[i], ratio[i])).collect(),
                None,
                SeriesStyle::own(c),
            );
        }
        let rows: Vec<usize> = (0..width.len())
            .filter(|&i| weights[i] == "initialization")
            .collect();
        plot = plot.series(
            "the theorem's bound 2R/‖ω‖ = 2D / ln(d!)",
            rows.iter().map(|&i| (width[i], bound[i])).collect(),
            None,
            SeriesStyle::reference(5),
        );
        let (r0, r1) = extent(ratios.iter().copied());
        let (b0, b1) = extent(rows.iter().map(|&i| bound[i]));
        let below = (0..width.len()).all(|i| ratio[i] <= bound[i]);
        Ok(vec![Figure {
            plot,
            caption: format!(
                "The closest equivalent mode lies at {}–{} of ‖ω‖, {} the theorem's bound ({}–{}) at every width.",
                number(r0, 3),
                number(r1, 3),
                if below { "below" } else { "not always below" },
                number(b0, 3),
                number(b1, 3)
            ),
        }])
    }

    fn needs_mnist(&self) -> bool {
        true
    }

    /// Runs the experiment.
    ///
    /// # Errors
    ///
    /// Missing data, training divergence, named.
    fn run(&self, o: &ReproduceOptions) -> Result<Reproduction> {
        let (widths, epochs, limit): (Vec<usize>, usize, Option<usize>) = if o.quick {
            (vec![5, 10, 20], 1, Some(1000))
        } else {
            (vec![5, 10, 20, 30, 50, 100], 1, None)
        };
        let train_set = load_mnist(&o.mnist_dir, MnistSplit::Train, limit, &o.limits)?;
        let rows: Vec<(usize, &'static str, f64, f64, f64)> = widths
            .par_iter()
            .map(|&w| {
                let arch = Arch::builder(vec![784, w, 10]).check()?;
                let mut config = TrainConfig::new(Likelihood::Softmax);
                config.epochs = epochs;
                config.seed = child_seed(o.seed, w as u64);
                let init = initial_posterior(&arch, &config)?;
                let trained =
                    train(&arch, &train_set, &config, None, &crate::observe::Silent)?.posterior;
                let ln_g = Group::of(&arch).ln_order();
                let p = arch.n_params() as f64;
                let mut out = Vec::new();
                for (label, q) in [("initialization", &init), ("trained", &trained)] {
                    let norm = q.mu().iter().map(|m| m * m).sum::<f64>().sqrt();
                    let dist = min_swap_distance(q, q.mu())?;
                    // The paper's bound 2R with R = D‖ω‖ / ln|G|, relative to ‖ω‖.
                    out.push((w, label, dist / norm, 2.0 * p / ln_g, dist));
                }
                Ok(out)
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let table = Table::new("proximity")
            .with(
                "width",
                Values::U64(rows.iter().map(|r| r.0 as u64).collect()),
            )
            .with(
                "weights",
                Values::Str(rows.iter().map(|r| r.1.to_string()).collect()),
            )
            .with(
                "min_distance_over_norm",
                Values::F64(rows.iter().map(|r| r.2).collect()),
            )
            .with(
                "paper_bound_over_norm",
                Values::F64(rows.iter().map(|r| r.3).collect()),
            )
            .with(
                "min_distance",
                Values::F64(rows.iter().map(|r| r.4).collect()),
            );
        let mut md = format!(
            "784-d-10 ReLU MLPs; posterior means at initialization (μ ~ N(0, 0.1²), biases 0) and after {epochs} epoch(s) of MFVI on {} MNIST training images. min over g ≠ e of ‖ω − g·ω‖ is the closest swap of two hidden units.\n\n| width | weights | min ‖ω − g·ω‖ / ‖ω‖ (ours) | min ‖ω − g·ω‖ | (min ‖ω − g·ω‖ / ‖ω‖) · √d | paper's bound 2R/‖ω‖ = 2D / ln(d!) |\n| --- | --- | --- | --- | --- | --- |\n",
            {
                let n = train_set.len();
                if n >= 1000 {
                    format!("{},{:03}", n / 1000, n % 1000)
                } else {
                    n.to_string()
                }
            }
        );
        for r in &rows {
            md.push_str(&format!(
                "| {} | {} | {:.4} | {:.2} | {:.2} | {:.1} |\n",
                r.0,
                r.1,
                r.2,
                r.4,
                r.2 * (r.0 as f64).sqrt(),
                r.3
            ));
        }
        // What training does to the distance itself, not only relative to ‖ω‖.
        let moved = |grows: bool| -> Vec<String> {
            widths
                .iter()
                .filter_map(|&w| {
                    let at =
                        |label: &str| rows.iter().find(|r| r.0 == w && r.1 == label).map(|r| r.4);
                    let (a, b) = (at("initialization")?, at("trained")?);
                    ((b > a) == grows).then(|| format!("d = {w}: {a:.2} → {b:.2}"))
                })
                .collect()
        };
        let (up, down) = (moved(true), moved(false));
        let relative_falls = widths
            .iter()
            .filter(|&&w| {
                let at = |label: &str| rows.iter().find(|r| r.0 == w && r.1 == label).map(|r| r.2);
                matches!((at("initialization"), at("trained")), (Some(a), Some(b)) if b < a)
            })
            .count();
        md.push_str(&format!(
            "\nAfter training, the absolute distance to the closest swap grows at {} of {} widths ({}) and shrinks at {} ({}); the distance relative to ‖ω‖ falls at {relative_falls} of them. For i.i.d. means the relative distance scales like 1/√d (two units differ in a fixed number of weights while ‖ω‖² grows with d): the column (distance / ‖ω‖) · √d shows how much of the fall with width that normalisation explains.\n",
            up.len(),
            widths.len(),
            if up.is_empty() { "none".into() } else { up.join("; ") },
            down.len(),
            if down.is_empty() { "none".into() } else { down.join("; ") },
        ));
        Ok(Reproduction {
            experiment: Experiment::ModeProximity,
            tables: vec![table],
            summary: md,
            samples: None,
            wall_s: 0.0,
        })
    }
}
