//! Shared test tolerances.

/// Relative agreement required between two exact computations of the same quantity
/// (e.g. the unit-cost-matrix path against the generic path).
pub const EXACT_REL: f64 = 1e-9;

/// Absolute agreement between closed forms and independent numerical integration.
pub const QUADRATURE_ABS: f64 = 1e-7;

/// Number of standard errors within which a Monte Carlo estimate must match its target.
pub const N_SE: f64 = 4.0;

/// Whether `a` and `b` agree to `rel` relative (with an absolute floor of `rel`).
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}
