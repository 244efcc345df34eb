//! Tolerances shared by the test suites (unit, integration and doc tests), in one place.

/// Relative agreement required between two exact computations of the same quantity
/// (the unit-cost-matrix path against the generic path, the permanent against
/// enumeration).
pub const EXACT_REL: f64 = 1e-9;

/// Absolute accuracy of the tests' 2-D Simpson quadratures.
pub const QUADRATURE_ABS: f64 = 1e-6;

/// Number of standard errors within which a Monte Carlo estimate must match its target.
pub const N_SE: f64 = 4.0;

/// Whether `a` and `b` agree to `rel` relative to the larger of them and `floor`.
pub fn close(a: f64, b: f64, rel: f64, floor: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(floor)
}
