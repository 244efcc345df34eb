//! How good a classifier's predictive probabilities are beyond accuracy and NLL: expected
//! calibration error, the Brier score, the predictive entropy per point, and the area
//! under the ROC curve of a score that should separate two sets (in- and
//! out-of-distribution inputs).

/// Bins of [`Calibration::ece`]: equal widths over the confidence [0, 1] (Guo, Pleiss,
/// Sun, Weinberger 2017 use 15).
pub const ECE_BINS: usize = 15;

/// Calibration of averaged class probabilities against the labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// The share of points whose predicted class is their label.
    pub accuracy: f64,
    /// Expected calibration error: `Σ_b (n_b / n) |accuracy_b − confidence_b|` over
    /// [`ECE_BINS`] equal-width bins of the confidence `max_c p_c` (a confidence of
    /// exactly `b / B` falls in bin `b`, 1 in the last).
    pub ece: f64,
    /// Brier score: `(1/n) Σ_r Σ_c (p_rc − [y_r = c])²`, between 0 and 2.
    pub brier: f64,
    /// The predictive entropy `−Σ_c p_rc ln p_rc` of each point (nats; `0 ln 0 = 0`).
    pub entropy: Vec<f64>,
}

/// [`Calibration`] of the probabilities `probs(r, c)` (`n` rows, one column per class)
/// against `labels`. The predicted class is the last of the largest probabilities (in
/// `f64::total_cmp`'s order, as `Iterator::max_by` picks it); the predictive's accuracy is
/// this one.
///
/// # Panics
///
/// If `labels` and the rows differ in number or a label is not a column (the callers
/// check both).
pub fn calibration(
    n: usize,
    classes: usize,
    probs: impl Fn(usize, usize) -> f64,
    labels: &[u32],
) -> Calibration {
    assert_eq!(labels.len(), n, "one label per row");
    let mut bin_n = [0usize; ECE_BINS];
    let mut bin_correct = [0usize; ECE_BINS];
    let mut bin_conf = [0.0f64; ECE_BINS];
    let mut brier = 0.0;
    let mut entropy = Vec::with_capacity(n);
    for (r, &y) in labels.iter().enumerate() {
        let y = y as usize;
        assert!(y < classes, "label {y} of row {r} is not a class");
        let (mut best, mut conf) = (0, f64::NEG_INFINITY);
        let (mut sq, mut h) = (0.0, 0.0);
        for c in 0..classes {
            let p = probs(r, c);
            if p.total_cmp(&conf).is_ge() {
                (best, conf) = (c, p);
            }
            let e = p - f64::from(u8::from(c == y));
            sq += e * e;
            if p > 0.0 {
                h -= p * p.ln();
            }
        }
        let b = ((conf * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        bin_n[b] += 1;
        bin_correct[b] += usize::from(best == y);
        bin_conf[b] += conf;
        brier += sq;
        entropy.push(h);
    }
    let ece = (0..ECE_BINS)
        .filter(|&b| bin_n[b] > 0)
        .map(|b| (bin_correct[b] as f64 - bin_conf[b]).abs())
        .sum::<f64>()
        / n as f64;
    Calibration {
        accuracy: bin_correct.iter().sum::<usize>() as f64 / n as f64,
        ece,
        brier: brier / n as f64,
        entropy,
    }
}

/// The area under the ROC curve of a score that should be higher on `positives` than on
/// `negatives`: the probability that a random positive scores above a random negative,
/// ties counting one half (the Mann–Whitney statistic over `|P| · |N|`), from mid-ranks in
/// O((|P| + |N|) log(|P| + |N|)). NaN if either set is empty or a score is NaN.
pub fn auroc(negatives: &[f64], positives: &[f64]) -> f64 {
    let (nn, np) = (negatives.len(), positives.len());
    if nn == 0 || np == 0 || negatives.iter().chain(positives).any(|s| s.is_nan()) {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> = negatives
        .iter()
        .map(|&s| (s, false))
        .chain(positives.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the positives' mid-ranks (1-based).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid * all[i..=j].iter().filter(|e| e.1).count() as f64;
        i = j + 1;
    }
    let u = rank_sum - (np * (np + 1)) as f64 / 2.0;
    u / (np as f64 * nn as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    /// The definition itself: every positive against every negative.
    fn auroc_by_pairs(neg: &[f64], pos: &[f64]) -> f64 {
        let mut s = 0.0;
        for &p in pos {
            for &n in neg {
                s += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        s / (pos.len() * neg.len()) as f64
    }

    #[test]
    fn auroc_is_the_pairwise_probability_with_ties_halved() {
        let mut rng = crate::rng::stream(5, 0);
        for (nn, np, levels) in [(1, 1, 3), (7, 3, 4), (50, 80, 10), (200, 150, 1000)] {
            let neg: Vec<f64> = (0..nn)
                .map(|_| rng.random_range(0..levels) as f64)
                .collect();
            let pos: Vec<f64> = (0..np)
                .map(|_| rng.random_range(0..levels) as f64 + 0.5 * rng.random_range(0..2) as f64)
                .collect();
            let (a, b) = (auroc(&neg, &pos), auroc_by_pairs(&neg, &pos));
            assert!((a - b).abs() < 1e-12, "{nn} {np}: {a} vs {b}");
        }
        assert_eq!(auroc(&[0.0, 1.0], &[2.0, 3.0]), 1.0);
        assert_eq!(auroc(&[2.0, 3.0], &[0.0, 1.0]), 0.0);
        assert_eq!(auroc(&[1.0; 4], &[1.0; 3]), 0.5);
        assert!(auroc(&[], &[1.0]).is_nan());
        assert!(auroc(&[f64::NAN], &[1.0]).is_nan());
    }

    #[test]
    fn ece_brier_and_entropy_of_hand_worked_predictions() {
        // Four points, two classes. Confidences 0.9 (bin 13), 0.9, 0.6 (bin 9), 1.0 (bin 14).
        let p = [[0.9, 0.1], [0.1, 0.9], [0.4, 0.6], [1.0, 0.0]];
        let labels = [0, 0, 1, 0];
        let c = calibration(4, 2, |r, k| p[r][k], &labels);
        // Bin 13: two points, one right, confidence 1.8 summed: |1 − 1.8| = 0.8.
        // Bin 9: one point, right, |1 − 0.6| = 0.4. Bin 14: right, |1 − 1| = 0.
        assert!((c.ece - (0.8 + 0.4) / 4.0).abs() < 1e-15, "{}", c.ece);
        // Brier: 2·0.01, 2·0.81, 2·0.16, 0.
        assert!(
            (c.brier - (0.02 + 1.62 + 0.32) / 4.0).abs() < 1e-15,
            "{}",
            c.brier
        );
        let h = |a: f64, b: f64| -(a * a.ln() + b * b.ln());
        assert!((c.entropy[0] - h(0.9, 0.1)).abs() < 1e-15);
        assert!((c.entropy[2] - h(0.4, 0.6)).abs() < 1e-15);
        assert_eq!(c.entropy[3], 0.0);
        // Uniform over C classes, always wrong half the time: Brier 1 − 1/C, entropy ln C.
        let u = calibration(2, 4, |_, _| 0.25, &[0, 3]);
        assert!((u.brier - 0.75).abs() < 1e-15);
        assert!((u.entropy[1] - 4f64.ln()).abs() < 1e-15);
        // Confidence 0.25 is in bin 3; of a tie the last class is predicted (as `max_by`
        // picks it), so the second point is right and the first wrong: one of two.
        assert!(
            (u.ece - (1.0f64 - 0.5).abs() / 2.0).abs() < 1e-15,
            "{}",
            u.ece
        );
        assert_eq!(u.accuracy, 0.5);
        assert_eq!(c.accuracy, 0.75);
        let tie = calibration(1, 2, |_, _| 0.5, &[1]);
        assert_eq!(tie.accuracy, 1.0);
    }
}
