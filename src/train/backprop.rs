//! Hand-written backpropagation of the data term through the MLP.
//!
//! For layer `i`, `Z_i = H_i W_iᵀ + 1 b_iᵀ`, `H_{i+1} = σ(Z_i)` (last layer linear), with
//! rows as data points. Given `G = ∂ℓ/∂Z_i`: `∂ℓ/∂W_i = Gᵀ H_i`, `∂ℓ/∂b_i = 1ᵀ G`,
//! `∂ℓ/∂H_i = G W_i`, and `∂ℓ/∂Z_{i−1} = ∂ℓ/∂H_i ⊙ σ'(Z_{i−1})`. Fixed layers are
//! propagated through but receive no gradient.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

use crate::elbo::{Likelihood, Targets};
use crate::weights::{Activation, Arch};

/// `Σ_rows ln p(y | x, w)` for the rows `rows` of the data (inputs `x`, already
/// gathered), with its gradient with respect to the flat weights `w` *added* into
/// `grad_w` after multiplication by `scale`.
///
/// # Panics
///
/// If `w`, `grad_w` or `x` do not fit `arch` (the trainer checks them first).
pub fn data_term_grad(
    arch: &Arch,
    w: &[f64],
    x: MatRef<'_, f64>,
    targets: &Targets,
    rows: &[usize],
    likelihood: Likelihood,
    scale: f64,
    grad_w: &mut [f64],
) -> f64 {
    let n_layers = arch.n_layers();
    let n = x.nrows();
    // Forward, keeping pre-activations Z_i and inputs H_i.
    let mut hs: Vec<Mat<f64>> = Vec::with_capacity(n_layers + 1);
    let mut zs: Vec<Mat<f64>> = Vec::with_capacity(n_layers);
    hs.push(x.to_owned());
    for i in 0..n_layers {
        let layer = arch.layer(w, i);
        let mut z = Mat::<f64>::zeros(n, arch.widths()[i + 1]);
        matmul(
            &mut z,
            Accum::Replace,
            &hs[i],
            layer.weight.transpose(),
            1.0,
            Par::Seq,
        );
        if let Some(b) = layer.bias {
            for c in 0..z.ncols() {
                let bc = b[c];
                z.col_mut(c).iter_mut().for_each(|v| *v += bc);
            }
        }
        if i + 1 < n_layers {
            let act = arch.activation();
            hs.push(Mat::from_fn(n, z.ncols(), |r, c| act.apply(z[(r, c)])));
        }
        zs.push(z);
    }
    let out = zs.last().expect("at least one layer");
    let mut g = Mat::<f64>::zeros(n, out.ncols());
    let total = likelihood.ln_lik(out, targets, rows, Some(&mut g));
    // Backward.
    for i in (0..n_layers).rev() {
        let layer = arch.layer(w, i);
        if let Some(o) = arch.offsets(i) {
            let (d_in, d_out) = (arch.widths()[i], arch.widths()[i + 1]);
            let mut gw = Mat::<f64>::zeros(d_out, d_in);
            matmul(
                &mut gw,
                Accum::Replace,
                g.transpose(),
                &hs[i],
                scale,
                Par::Seq,
            );
            for a in 0..d_out {
                for b in 0..d_in {
                    grad_w[o.weight + a * d_in + b] += gw[(a, b)];
                }
            }
            if let Some(ob) = o.bias {
                for a in 0..d_out {
                    grad_w[ob + a] += scale * g.col(a).iter().sum::<f64>();
                }
            }
        }
        if i > 0 {
            let mut gh = Mat::<f64>::zeros(n, arch.widths()[i]);
            matmul(&mut gh, Accum::Replace, &g, layer.weight, 1.0, Par::Seq);
            let z = &zs[i - 1];
            let act = arch.activation();
            g = Mat::from_fn(n, gh.ncols(), |r, c| {
                gh[(r, c)] * derivative(act, z[(r, c)])
            });
        }
    }
    total
}

#[inline]
fn derivative(act: Activation, z: f64) -> f64 {
    match act {
        Activation::Relu => f64::from(z > 0.0),
        Activation::Tanh => {
            let t = z.tanh();
            1.0 - t * t
        }
    }
}
