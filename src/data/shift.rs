//! Shifted copies of a square-image data set, the out-of-distribution inputs of the
//! uncertainty studies: the same images turned a quarter turn, and the same images under
//! pixel noise. Labels are kept (they no longer describe the inputs; only the
//! predictive's entropy on them is used).

use faer::Mat;

use crate::error::{Error, Result};
use crate::rng::{fill_standard_normal, stream};

use super::Dataset;

/// The side of the square images in `data` (784 inputs: 28).
fn side(data: &Dataset) -> Result<usize> {
    let d = data.x().ncols();
    let s = d.isqrt();
    if s * s != d {
        return Err(Error::invalid(
            "data",
            format!("{d} inputs"),
            "an image shift needs square images (side × side inputs)",
        ));
    }
    Ok(s)
}

/// Every image of `data` turned a quarter turn counterclockwise: pixel (i, j) of the
/// result (row i, column j, row-major) is pixel (j, side − 1 − i) of the image. Exact: a
/// permutation of the pixels.
///
/// # Errors
///
/// [`Error::InvalidParameter`] if the inputs are not square images.
pub fn rotated_quarter(data: &Dataset) -> Result<Dataset> {
    let s = side(data)?;
    let x = data.x();
    let rotated = Mat::from_fn(x.nrows(), x.ncols(), |r, c| {
        let (i, j) = (c / s, c % s);
        x[(r, j * s + (s - 1 - i))]
    });
    Dataset::new(rotated, data.targets().clone())
}

/// Every image of `data` with independent N(0, `sd`²) noise added to each pixel and the
/// result clipped to [0, 1] (the pixels' range); image `r`'s noise from `stream(seed, r)`.
///
/// # Errors
///
/// [`Error::InvalidParameter`] for a negative or non-finite `sd`.
pub fn noised(data: &Dataset, sd: f64, seed: u64) -> Result<Dataset> {
    if !(sd.is_finite() && sd >= 0.0) {
        return Err(Error::invalid(
            "noise sd",
            Error::num(sd),
            "must be finite and >= 0",
        ));
    }
    let x = data.x();
    let (n, d) = (x.nrows(), x.ncols());
    let mut out = Mat::<f64>::zeros(n, d);
    let mut eps = vec![0.0; d];
    for r in 0..n {
        fill_standard_normal(&mut stream(seed, r as u64), &mut eps);
        for (c, e) in eps.iter().enumerate() {
            out[(r, c)] = (x[(r, c)] + sd * e).clamp(0.0, 1.0);
        }
    }
    Dataset::new(out, data.targets().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Targets;

    fn images() -> Dataset {
        // Two 3×3 images with pixels 0..9 and 9..18 (scaled to [0, 1]).
        let x = Mat::from_fn(2, 9, |r, c| (r * 9 + c) as f64 / 17.0);
        Dataset::new(x, Targets::Classes(vec![0, 1])).unwrap()
    }

    #[test]
    fn a_quarter_turn_four_times_is_the_identity_and_moves_the_corner() {
        let d = images();
        let once = rotated_quarter(&d).unwrap();
        // Counterclockwise: the top-right pixel (0, 2) becomes the top-left (0, 0).
        assert_eq!(once.x()[(0, 0)], d.x()[(0, 2)]);
        // And the top-left (0, 0) the bottom-left (2, 0).
        assert_eq!(once.x()[(0, 6)], d.x()[(0, 0)]);
        assert_eq!(once.x()[(0, 4)], d.x()[(0, 4)], "the centre stays");
        let mut r = once;
        for _ in 0..3 {
            r = rotated_quarter(&r).unwrap();
        }
        assert_eq!(r, d);
        let err =
            rotated_quarter(&Dataset::new(Mat::zeros(1, 8), Targets::Classes(vec![0])).unwrap())
                .unwrap_err();
        assert!(err.to_string().contains("square images"), "{err}");
    }

    #[test]
    fn noise_is_clipped_seeded_and_zero_noise_is_the_identity() {
        let d = images();
        assert_eq!(noised(&d, 0.0, 1).unwrap(), d);
        let a = noised(&d, 0.5, 1).unwrap();
        assert_eq!(a, noised(&d, 0.5, 1).unwrap());
        assert_ne!(a, noised(&d, 0.5, 2).unwrap());
        for c in 0..9 {
            for r in 0..2 {
                assert!((0.0..=1.0).contains(&a.x()[(r, c)]));
            }
        }
        assert!(noised(&d, f64::NAN, 1).is_err());
        assert!(noised(&d, -1.0, 1).is_err());
    }
}
