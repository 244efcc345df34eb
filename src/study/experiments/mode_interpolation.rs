//! Mode interpolation (the paper's Fig. 3 and 5): a full-covariance Gaussian fitted by
//! reverse KL to two equal Gaussian modes interpolates between them below a separation
//! threshold and collapses onto one mode above it.

use crate::execute::Schedule;
use rand::RngExt;
use rand_distr::StandardNormal;

use crate::error::Result;
use crate::journal::exact;
use crate::rng::{child_seed, stream};
use crate::study::experiment::{
    Experiment, Figure, PlotSpec, ReproduceOptions, Reproduction, SeriesStyle, Study,
};
use crate::study::figure::extent;
use crate::study::format::number;
use crate::study::table::{Table, Values};
use crate::train::Adam;

/// The result of one reverse-KL fit of a full-covariance Gaussian in 2-D.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GaussianFit {
    /// Fitted mean.
    #[serde(with = "exact::array")]
    pub mean: [f64; 2],
    /// Cholesky factor `[L11, L21, L22]`.
    #[serde(with = "exact::array")]
    pub chol: [f64; 3],
    /// Monte Carlo KL(q ‖ p) at the end.
    #[serde(with = "exact")]
    pub kl: f64,
}

/// Fits `q = N(m, L Lᵀ)` to `p = ½N(0, s²I) + ½N(α e₁, s²I)` by minimizing the Monte
/// Carlo reverse KL with Adam, starting from `(0, s²I)`. `L` is lower triangular with
/// `L_ii = exp(ℓ_i)`. Gradients (reparameterized, `z = m + L ε`):
/// `∂KL/∂m = −E[∇ ln p(z)]`, `∂KL/∂L_ij = −E[(∇ ln p(z))_i ε_j] − [i = j]/L_ii`, with
/// `∇ ln p(z) = Σ_c w_c(z) (c − z)/s²` and `w_c` the components' responsibilities.
pub fn fit_gaussian_to_mixture(
    s: f64,
    alpha: f64,
    n_samples: usize,
    steps: usize,
    lr: f64,
    seed: u64,
) -> GaussianFit {
    // params: m1, m2, ℓ1, ℓ2, l21
    let mut params = [0.0, 0.0, s.ln(), s.ln(), 0.0];
    let mut adam = Adam::new(5, lr);
    let inv_s2 = 1.0 / (s * s);
    let grad_ln_p = |z: [f64; 2]| {
        let d0 = z[0] * z[0] + z[1] * z[1];
        let d1 = (z[0] - alpha) * (z[0] - alpha) + z[1] * z[1];
        // responsibilities of the two equal-weight components
        let w1 = 1.0 / (1.0 + (0.5 * inv_s2 * (d1 - d0)).exp());
        let w0 = 1.0 - w1;
        [
            (w0 * (0.0 - z[0]) + w1 * (alpha - z[0])) * inv_s2,
            -z[1] * inv_s2,
        ]
    };
    let ln_p = |z: [f64; 2]| {
        let d0 = z[0] * z[0] + z[1] * z[1];
        let d1 = (z[0] - alpha) * (z[0] - alpha) + z[1] * z[1];
        let a = -0.5 * inv_s2 * d0;
        let b = -0.5 * inv_s2 * d1;
        let m = a.max(b);
        m + ((a - m).exp() + (b - m).exp()).ln()
            - std::f64::consts::LN_2
            - (2.0 * std::f64::consts::PI * s * s).ln()
    };
    for step in 0..steps {
        let mut rng = stream(seed, step as u64);
        let (l11, l22, l21) = (params[2].exp(), params[3].exp(), params[4]);
        let mut g = [0.0; 5];
        for _ in 0..n_samples {
            let e: [f64; 2] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
            let z = [params[0] + l11 * e[0], params[1] + l21 * e[0] + l22 * e[1]];
            let gp = grad_ln_p(z);
            g[0] -= gp[0];
            g[1] -= gp[1];
            g[2] -= gp[0] * e[0];
            g[3] -= gp[1] * e[1];
            g[4] -= gp[1] * e[0];
        }
        let n = n_samples as f64;
        let mut grad = [
            g[0] / n,
            g[1] / n,
            g[2] / n * l11 - 1.0,
            g[3] / n * l22 - 1.0,
            g[4] / n,
        ];
        // ∂(−H)/∂ℓ_i = −1 is included above (−[i=j]/L_ii · L_ii).
        grad.iter_mut()
            .for_each(|x| *x = if x.is_finite() { *x } else { 0.0 });
        adam.step(&mut params, &grad);
    }
    let (l11, l22, l21) = (params[2].exp(), params[3].exp(), params[4]);
    let mut rng = stream(seed, steps as u64);
    let entropy = params[2] + params[3] + (1.0 + (2.0 * std::f64::consts::PI).ln());
    let mut e_ln_p = 0.0;
    for _ in 0..n_samples {
        let e: [f64; 2] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
        e_ln_p += ln_p([params[0] + l11 * e[0], params[1] + l21 * e[0] + l22 * e[1]]);
    }
    GaussianFit {
        mean: [params[0], params[1]],
        chol: [l11, l21, l22],
        kl: -entropy - e_ln_p / n_samples as f64,
    }
}

/// The experiment of this file, as a [`Study`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ModeInterpolation;

impl Study for ModeInterpolation {
    fn experiment(&self) -> Experiment {
        Experiment::ModeInterpolation
    }

    /// `interpolation`: ‖μ*‖/α against α per s, where each fit stops interpolating
    /// (‖μ*‖/α falls below ¼, the line) marked, beside the paper's α* = 5 s.
    fn figures(&self, tables: &[Table]) -> Result<Vec<Figure>> {
        let fits = crate::study::table::find(tables, "fits")?;
        let (s, alpha, ratio) = (
            fits.reals("s")?,
            fits.reals("alpha")?,
            fits.reals("mean_norm_over_alpha")?,
        );
        let thr = crate::study::table::find(tables, "thresholds")?;
        let (ts, star, paper) = (
            thr.reals("s")?,
            thr.reals("alpha_star")?,
            thr.reals("alpha_star_paper")?,
        );
        let mut plot = PlotSpec::new(
            "interpolation",
            "Reverse-KL Gaussian fit to two equal modes",
            "α (distance between the modes)",
            "‖μ*‖ / α",
        );
        plot.lines = true;
        for (c, &scale) in ts.iter().enumerate() {
            let pts = (0..s.len())
                .filter(|&i| s[i] == scale)
                .map(|i| (alpha[i], ratio[i]))
                .collect();
            plot = plot.series(
                &format!("s = {}", number(scale, 3)),
                pts,
                None,
                SeriesStyle::own(c),
            );
        }
        let (a_min, a_max) = extent(alpha.iter().copied());
        plot = plot.series(
            "¼: the fit no longer interpolates below it",
            vec![(a_min, 0.25), (a_max, 0.25)],
            None,
            SeriesStyle::reference(5),
        );
        let found: Vec<(f64, f64)> = (0..ts.len())
            .filter(|&i| star[i].is_finite())
            .map(|i| (star[i], 0.25))
            .collect();
        plot = plot.series("α* (ours)", found, None, SeriesStyle::own(3).points());
        plot = plot.series(
            "α* = 5 s (the paper)",
            paper.iter().map(|&a| (a, 0.25)).collect(),
            None,
            SeriesStyle::reference(1).points(),
        );
        let pairs: Vec<String> = (0..ts.len())
            .map(|i| {
                let ours = if star[i].is_finite() {
                    number(star[i], 3)
                } else {
                    "not found".into()
                };
                format!(
                    "s = {}: {ours} (paper {})",
                    number(ts[i], 3),
                    number(paper[i], 3)
                )
            })
            .collect();
        Ok(vec![Figure {
            plot,
            caption: format!(
                "The fitted mean sits between the modes for small α and jumps onto one of them at α* ({}).",
                pairs.join("; ")
            ),
        }])
    }

    fn needs_mnist(&self) -> bool {
        false
    }

    /// Runs the experiment.
    ///
    /// # Errors
    ///
    /// Missing data, training divergence, named.
    fn run(&self, o: &ReproduceOptions) -> Result<Reproduction> {
        let (scales, n_samples, steps): (Vec<f64>, usize, usize) = if o.quick {
            (vec![1.0], 1000, 1500)
        } else {
            (vec![0.25, 0.5, 1.0, 2.0], 5000, 3000)
        };
        // α/s on a fine grid around the expected threshold 5.
        let ratios: Vec<f64> = if o.quick {
            (12..=28).map(|i| i as f64 * 0.25).collect()
        } else {
            (4..=40).map(|i| i as f64 * 0.2).collect()
        };
        let jobs: Vec<(f64, f64)> = scales
            .iter()
            .flat_map(|&s| ratios.iter().map(move |&r| (s, r * s)))
            .collect();
        let fits: Vec<GaussianFit> = o.executor().map(
            &jobs,
            Schedule::InOrder,
            |i, _| format!("mode-interpolation/{i}"),
            |i, &(s, a)| {
                Ok(fit_gaussian_to_mixture(
                    s,
                    a,
                    n_samples,
                    steps,
                    1e-2,
                    child_seed(o.seed, i as u64),
                ))
            },
        )?;
        let ratio = |f: &GaussianFit, a: f64| (f.mean[0].powi(2) + f.mean[1].powi(2)).sqrt() / a;
        let table = Table::new("fits")
            .with("s", Values::F64(jobs.iter().map(|j| j.0).collect()))
            .with("alpha", Values::F64(jobs.iter().map(|j| j.1).collect()))
            .with(
                "mean_norm_over_alpha",
                Values::F64(jobs.iter().zip(&fits).map(|(j, f)| ratio(f, j.1)).collect()),
            )
            .with(
                "det_sigma",
                Values::F64(
                    fits.iter()
                        .map(|f| (f.chol[0] * f.chol[2]).powi(2))
                        .collect(),
                ),
            )
            .with("kl", Values::F64(fits.iter().map(|f| f.kl).collect()))
            .with("n_samples", Values::U64(vec![n_samples as u64; jobs.len()]))
            .with("steps", Values::U64(vec![steps as u64; jobs.len()]));
        // Threshold: the first α whose fit no longer interpolates (‖μ*‖/α < ¼), refined to
        // the midpoint with the previous grid point.
        let mut thresholds = Vec::new();
        for &s in &scales {
            let pts: Vec<(f64, f64)> = jobs
                .iter()
                .zip(&fits)
                .filter(|(j, _)| j.0 == s)
                .map(|(j, f)| (j.1, ratio(f, j.1)))
                .collect();
            let star = pts
                .windows(2)
                .find(|w| w[0].1 >= 0.25 && w[1].1 < 0.25)
                .map(|w| 0.5 * (w[0].0 + w[1].0));
            thresholds.push((s, star));
        }
        let found: Vec<(f64, f64)> = thresholds
            .iter()
            .filter_map(|&(s, a)| a.map(|a| (s, a)))
            .collect();
        let slope = found.iter().map(|(s, a)| s * a).sum::<f64>()
            / found
                .iter()
                .map(|(s, _)| s * s)
                .sum::<f64>()
                .max(f64::MIN_POSITIVE);
        let paper = |s: f64| 5.0 * s;
        let mut md = String::from(
            "| s | α* (ours) | α* (paper) | difference |\n| --- | --- | --- | --- |\n",
        );
        for (s, a) in &thresholds {
            match a {
                Some(a) => md.push_str(&format!(
                    "| {s} | {a:.2} | {:.2} | {:+.2} |\n",
                    paper(*s),
                    a - paper(*s)
                )),
                None => md.push_str(&format!(
                    "| {s} | not found on the grid | {:.2} | — |\n",
                    paper(*s)
                )),
            }
        }
        md.push_str(&format!(
        "\nSlope of α* in s (least squares through the origin): **{slope:.3}** (paper: linear, α* ≈ 5 s). {n_samples} Monte Carlo samples, {steps} Adam steps, lr 1e-2, initialized at (0, s²I).\n"
    ));
        let thr = Table::new("thresholds")
            .with("s", Values::F64(thresholds.iter().map(|t| t.0).collect()))
            .with(
                "alpha_star",
                Values::OptF64(thresholds.iter().map(|t| t.1).collect()),
            )
            .with(
                "alpha_star_paper",
                Values::F64(thresholds.iter().map(|t| paper(t.0)).collect()),
            );
        Ok(Reproduction {
            experiment: Experiment::ModeInterpolation,
            tables: vec![table, thr],
            summary: md,
            samples: None,
            wall_s: 0.0,
        })
    }
}
