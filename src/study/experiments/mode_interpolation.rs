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
    gaussian_expectation_2d,
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
    /// KL(q ‖ p) at the end, by quadrature ([`kl_by_quadrature`]).
    #[serde(with = "exact")]
    pub kl: f64,
}

/// [`fit_gaussian_to_mixture_from`] started on the first component, `(0, s²I)`.
pub fn fit_gaussian_to_mixture(
    s: f64,
    alpha: f64,
    n_samples: usize,
    steps: usize,
    lr: f64,
    seed: u64,
) -> GaussianFit {
    fit_gaussian_to_mixture_from(s, alpha, FitStart::Component, n_samples, steps, lr, seed)
}

/// Where a fit of [`fit_gaussian_to_mixture_from`] starts: on the first component, or
/// halfway between the two, free or with its mean held there (the best symmetric
/// Gaussian: the interpolating solution, whether or not it is a local minimum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitStart {
    /// `(0, s²I)`.
    Component,
    /// `(α/2 · e₁, s²I)`.
    Midpoint,
    /// `(α/2 · e₁, s²I)`, only the covariance fitted.
    Symmetric,
}

impl FitStart {
    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            FitStart::Component => "component",
            FitStart::Midpoint => "midpoint",
            FitStart::Symmetric => "symmetric",
        }
    }

    /// The starting mean for modes `alpha` apart.
    pub fn mean(self, alpha: f64) -> [f64; 2] {
        match self {
            FitStart::Component => [0.0, 0.0],
            FitStart::Midpoint | FitStart::Symmetric => [alpha / 2.0, 0.0],
        }
    }
}

/// Fits `q = N(m, L Lᵀ)` to `p = ½N(0, s²I) + ½N(α e₁, s²I)` by minimizing the Monte
/// Carlo reverse KL with Adam from `start` ([`FitStart`]). `L` is lower triangular with
/// `L_ii = exp(ℓ_i)`. Gradients (reparameterized, `z = m + L ε`):
/// `∂KL/∂m = −E[∇ ln p(z)]`, `∂KL/∂L_ij = −E[(∇ ln p(z))_i ε_j] − [i = j]/L_ii`, with
/// `∇ ln p(z) = Σ_c w_c(z) (c − z)/s²` and `w_c` the components' responsibilities.
/// The final KL is computed by quadrature ([`kl_by_quadrature`]), not sampled, so that
/// fits from different starts can be ranked by it.
pub fn fit_gaussian_to_mixture_from(
    s: f64,
    alpha: f64,
    start: FitStart,
    n_samples: usize,
    steps: usize,
    lr: f64,
    seed: u64,
) -> GaussianFit {
    // params: m1, m2, ℓ1, ℓ2, l21
    let m0 = start.mean(alpha);
    let mut params = [m0[0], m0[1], s.ln(), s.ln(), 0.0];
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
        if start == FitStart::Symmetric {
            grad[0] = 0.0;
            grad[1] = 0.0;
        }
        adam.step(&mut params, &grad);
    }
    let (mean, chol) = (
        [params[0], params[1]],
        [params[2].exp(), params[4], params[3].exp()],
    );
    GaussianFit {
        mean,
        chol,
        kl: kl_by_quadrature(mean, chol, &ln_p),
    }
}

/// `KL(q ‖ p)` for `q = N(m, L Lᵀ)` (`chol = [L11, L21, L22]`) in 2-D and a log density
/// `ln_p`: `−H(q) − E_q[ln p]`, the entropy in closed form and the expectation by the
/// trapezoid rule in q's standardized coordinates over `[−10, 10]²` with step 1/20 (the
/// study's `gaussian_expectation_2d`; its error below 1e-12 for a smooth `ln p`).
pub fn kl_by_quadrature(mean: [f64; 2], chol: [f64; 3], ln_p: &dyn Fn([f64; 2]) -> f64) -> f64 {
    let [l11, _, l22] = chol;
    let entropy = (l11 * l22).abs().ln() + 1.0 + (2.0 * std::f64::consts::PI).ln();
    -entropy - gaussian_expectation_2d(mean, chol, ln_p)
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
        let (s, alpha, ratio, start) = (
            fits.reals("s")?,
            fits.reals("alpha")?,
            fits.reals("mean_norm_over_alpha")?,
            fits.texts("start")?,
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
            for (k, st) in [FitStart::Component, FitStart::Midpoint].iter().enumerate() {
                let pts: Vec<(f64, f64)> = (0..s.len())
                    .filter(|&i| s[i] == scale && start[i] == st.name())
                    .map(|i| (alpha[i], ratio[i]))
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                plot = plot.series(
                    &format!("s = {}, from the {}", number(scale, 3), st.name()),
                    pts,
                    None,
                    SeriesStyle::own(c).shaped(k),
                );
            }
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
        // KL against α/s by start, at the scale nearest 1 (the problem is scale-equivariant).
        let kl = fits.reals("kl")?;
        let s1 = ts
            .iter()
            .copied()
            .min_by(|a, b| (a - 1.0).abs().total_cmp(&(b - 1.0).abs()))
            .unwrap_or(1.0);
        let mut kl_plot = PlotSpec::new(
            "kl_by_start",
            &format!("KL(q ‖ p) of the fits by start, s = {}", number(s1, 3)),
            "α / s",
            "KL(q ‖ p) (nats, by quadrature)",
        );
        kl_plot.lines = true;
        for (k, st) in [FitStart::Component, FitStart::Midpoint, FitStart::Symmetric]
            .iter()
            .enumerate()
        {
            let pts: Vec<(f64, f64)> = (0..s.len())
                .filter(|&i| s[i] == s1 && start[i] == st.name())
                .map(|i| (alpha[i] / s1, kl[i]))
                .collect();
            if !pts.is_empty() {
                kl_plot = kl_plot.series(
                    &format!("from the {}", st.name()),
                    pts,
                    None,
                    SeriesStyle::own(k).shaped(k),
                );
            }
        }
        Ok(vec![
            Figure {
                plot,
                caption: format!(
                    "Started on a component (dots), the fitted mean sits between the modes for small α and jumps onto one of them at α* ({}); started at the midpoint (rings), it can stay between them further (the summary's multi-start table gives where each start collapses and where the lower KL switches).",
                    pairs.join("; ")
                ),
            },
            Figure {
                plot: kl_plot,
                caption: "The reverse KL of each fit: where the collapsed fits' curve crosses below the symmetric Gaussian's is the global switch; between α* and that crossing the fit from a component has collapsed onto a local optimum of higher KL.".into(),
            },
        ])
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
        let starts = [FitStart::Component, FitStart::Midpoint, FitStart::Symmetric];
        let mut jobs: Vec<(f64, f64, FitStart)> = Vec::new();
        for &st in &starts {
            for &s in &scales {
                jobs.extend(ratios.iter().map(|&r| (s, r * s, st)));
            }
        }
        let fits: Vec<GaussianFit> = o.executor().map(
            &jobs,
            Schedule::InOrder,
            |i, _| format!("mode-interpolation/{i}"),
            |i, &(s, a, st)| {
                Ok(fit_gaussian_to_mixture_from(
                    s,
                    a,
                    st,
                    n_samples,
                    steps,
                    1e-2,
                    // The component starts keep the seeds of the runs before multi-start.
                    child_seed(o.seed, i as u64),
                ))
            },
        )?;
        let ratio = |f: &GaussianFit, a: f64| (f.mean[0].powi(2) + f.mean[1].powi(2)).sqrt() / a;
        // ‖μ*‖/α measured from the first component: 0 on it, ½ halfway, 1 on the second.
        let table = Table::new("fits")
            .with("s", Values::F64(jobs.iter().map(|j| j.0).collect()))
            .with("alpha", Values::F64(jobs.iter().map(|j| j.1).collect()))
            .with(
                "start",
                Values::Str(jobs.iter().map(|j| j.2.name().to_string()).collect()),
            )
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
        // Whether a fit interpolates: its mean is not on a component (‖μ*‖/α between ¼
        // and ¾; a collapse onto the second component, possible from the midpoint, is
        // ≥ ¾).
        let interpolates = |r: f64| (0.25..0.75).contains(&r);
        let series = |s: f64, st: FitStart| -> Vec<(f64, f64, f64)> {
            jobs.iter()
                .zip(&fits)
                .filter(|(j, _)| j.0 == s && j.2 == st)
                .map(|(j, f)| (j.1, ratio(f, j.1), f.kl))
                .collect()
        };
        // Threshold of one start: the first α whose fit no longer interpolates, refined
        // to the midpoint with the previous grid point.
        let collapse = |pts: &[(f64, f64, f64)]| {
            pts.windows(2)
                .find(|w| interpolates(w[0].1) && !interpolates(w[1].1))
                .map(|w| 0.5 * (w[0].0 + w[1].0))
        };
        // The global optimum: where the best collapsed fit's KL (from either free start)
        // first falls below the best symmetric Gaussian's, linearly interpolated between
        // the two grid points around the sign change of their difference.
        let global = |s: f64| -> Option<f64> {
            let (c, m, y) = (
                series(s, FitStart::Component),
                series(s, FitStart::Midpoint),
                series(s, FitStart::Symmetric),
            );
            let diff: Vec<(f64, f64)> = c
                .iter()
                .zip(&m)
                .zip(&y)
                .filter_map(|((a, b), sym)| {
                    let collapsed = [a, b]
                        .iter()
                        .filter(|p| !interpolates(p.1))
                        .map(|p| p.2)
                        .min_by(f64::total_cmp)?;
                    Some((a.0, collapsed - sym.2))
                })
                .collect();
            diff.windows(2)
                .find(|w| w[0].1 > 0.0 && w[1].1 <= 0.0)
                .map(|w| w[0].0 + (w[1].0 - w[0].0) * w[0].1 / (w[0].1 - w[1].1))
        };
        let mut thresholds = Vec::new();
        for &s in &scales {
            thresholds.push((
                s,
                collapse(&series(s, FitStart::Component)),
                collapse(&series(s, FitStart::Midpoint)),
                global(s),
            ));
        }
        let found: Vec<(f64, f64)> = thresholds
            .iter()
            .filter_map(|&(s, a, _, _)| a.map(|a| (s, a)))
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
        for (s, a, _, _) in &thresholds {
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
        "\nSlope of α* in s (least squares through the origin): **{slope:.3}** (paper: linear, α* ≈ 5 s). {n_samples} Monte Carlo samples, {steps} Adam steps, lr 1e-2, initialized at (0, s²I) (on the first component).\n"
    ));
        let opt = |v: Option<f64>, s: f64| {
            v.map_or("not on the grid".to_string(), |a| {
                format!("{a:.2} ({:.2} s)", a / s)
            })
        };
        md.push_str(&format!(
            "\nMulti-start: every fit again from the midpoint (α/2 · e₁, s²I), free, and with its mean held there (the best symmetric Gaussian, the interpolating solution); KL(q ‖ p) of every fit by quadrature. A free fit interpolates while ‖μ*‖/α (from the first component) is in [¼, ¾). The global switch is where the best collapsed free fit's KL falls below the symmetric Gaussian's (linear between grid points; α/s step {:.2}).\n\n| s | α* from a component | α* from the midpoint | global switch (lowest KL) |\n| --- | --- | --- | --- |\n",
            ratios[1] - ratios[0]
        ));
        for &(s, c, m, g) in &thresholds {
            md.push_str(&format!(
                "| {s} | {} | {} | {} |\n",
                opt(c, s),
                opt(m, s),
                opt(g, s)
            ));
        }
        let thr = Table::new("thresholds")
            .with("s", Values::F64(thresholds.iter().map(|t| t.0).collect()))
            .with(
                "alpha_star",
                Values::OptF64(thresholds.iter().map(|t| t.1).collect()),
            )
            .with(
                "alpha_star_paper",
                Values::F64(thresholds.iter().map(|t| paper(t.0)).collect()),
            )
            .with(
                "alpha_star_from_midpoint",
                Values::OptF64(thresholds.iter().map(|t| t.2).collect()),
            )
            .with(
                "alpha_global_switch",
                Values::OptF64(thresholds.iter().map(|t| t.3).collect()),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// With α = 0 the mixture is the single Gaussian N(0, s²I), whose KL from a Gaussian
    /// q has a closed form: ½[tr(Σ/s²) + ‖m‖²/s² − 2 − ln(det Σ / s⁴)].
    #[test]
    fn the_quadrature_kl_is_the_closed_form_for_one_gaussian() {
        let s: f64 = 1.3;
        let ln_p = |z: [f64; 2]| {
            -0.5 * (z[0] * z[0] + z[1] * z[1]) / (s * s) - (2.0 * std::f64::consts::PI * s * s).ln()
        };
        for (m, chol) in [
            ([0.0, 0.0], [1.3f64, 0.0, 1.3]),
            ([0.7, -2.0], [0.4, 0.3, 2.1]),
            ([3.0, 1.0], [2.5, -1.0, 0.2]),
        ] {
            let [l11, l21, l22] = chol;
            let (v11, v22) = (l11 * l11, l21 * l21 + l22 * l22);
            let det = (l11 * l22).powi(2);
            let closed = 0.5
                * ((v11 + v22) / (s * s) + (m[0] * m[0] + m[1] * m[1]) / (s * s)
                    - 2.0
                    - (det / s.powi(4)).ln());
            let q = kl_by_quadrature(m, chol, &ln_p);
            assert!(
                (q - closed).abs() < 1e-10,
                "{m:?} {chol:?}: {q} vs {closed}"
            );
        }
    }
}
