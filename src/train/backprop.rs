//! Hand-written backpropagation of the data term through the MLP.
//!
//! For layer `i`, `Z_i = H_i W_iᵀ + 1 b_iᵀ`, `H_{i+1} = σ(Z_i)` (last layer linear), with
//! rows as data points. Given `G = ∂ℓ/∂Z_i`: `∂ℓ/∂W_i = Gᵀ H_i`, `∂ℓ/∂b_i = 1ᵀ G`,
//! `∂ℓ/∂H_i = G W_i`, and `∂ℓ/∂Z_{i−1} = ∂ℓ/∂H_i ⊙ σ'(Z_{i−1})`. Fixed layers are
//! propagated through but receive no gradient.

use crate::linalg::matmul;
use faer::{Accum, Mat, MatRef, Par};

use crate::data::Targets;
use crate::weights::Likelihood;
use crate::weights::{Activation, Arch};

/// Reusable buffers of [`data_term_grad_in_place`]: per-layer inputs and
/// pre-activations and the back-propagated gradients.
#[derive(Clone, Debug)]
pub struct BackpropWorkspace {
    hs: Vec<Mat<f64>>,
    zs: Vec<Mat<f64>>,
    /// `∂ℓ/∂Z_i` per layer (one buffer each, so no shape changes between steps).
    gs: Vec<Mat<f64>>,
    gh: Mat<f64>,
    gw: Mat<f64>,
}

impl Default for BackpropWorkspace {
    fn default() -> Self {
        BackpropWorkspace {
            hs: Vec::new(),
            zs: Vec::new(),
            gs: Vec::new(),
            gh: Mat::new(),
            gw: Mat::new(),
        }
    }
}

/// Makes `m` an `r × c` matrix, reallocating only when the shape changes (its contents
/// are overwritten by the caller).
fn shape(m: &mut Mat<f64>, r: usize, c: usize) {
    if m.nrows() != r || m.ncols() != c {
        *m = Mat::zeros(r, c);
    }
}

/// `Σ_rows ln p(y | x, w)` for the rows `rows` of the data (inputs `x`, already
/// gathered), with its gradient with respect to the flat weights `w` *added* into
/// `grad_w` after multiplication by `scale`.
///
/// # Panics
///
/// If `w`, `grad_w` or `x` do not fit `arch` (the trainer checks them first).
#[allow(clippy::too_many_arguments)]
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
    let mut ws = BackpropWorkspace::default();
    data_term_grad_in_place(
        arch, w, x, targets, rows, likelihood, scale, grad_w, &mut ws,
    )
}

/// [`data_term_grad`] with caller-owned buffers (no allocation once the shapes are
/// set).
///
/// # Panics
///
/// As [`data_term_grad`].
#[allow(clippy::too_many_arguments)]
pub fn data_term_grad_in_place(
    arch: &Arch,
    w: &[f64],
    x: MatRef<'_, f64>,
    targets: &Targets,
    rows: &[usize],
    likelihood: Likelihood,
    scale: f64,
    grad_w: &mut [f64],
    ws: &mut BackpropWorkspace,
) -> f64 {
    let n_layers = arch.n_layers();
    let n = x.nrows();
    let act = arch.activation();
    ws.hs.resize_with(n_layers, Mat::new);
    ws.zs.resize_with(n_layers, Mat::new);
    // Forward, keeping each layer's input H_i (H_0 = x) and pre-activation Z_i.
    for i in 0..n_layers {
        let layer = arch.layer(w, i);
        let d_out = arch.widths()[i + 1];
        let (done, rest) = ws.zs.split_at_mut(i);
        let z = &mut rest[0];
        shape(z, n, d_out);
        if i == 0 {
            matmul(
                &mut *z,
                Accum::Replace,
                x,
                layer.weight.transpose(),
                1.0,
                Par::Seq,
            );
        } else {
            let (prev_z, h) = (&done[i - 1], &mut ws.hs[i]);
            shape(h, n, arch.widths()[i]);
            for c in 0..h.ncols() {
                for r in 0..n {
                    h[(r, c)] = act.apply(prev_z[(r, c)]);
                }
            }
            matmul(
                &mut *z,
                Accum::Replace,
                &*h,
                layer.weight.transpose(),
                1.0,
                Par::Seq,
            );
        }
        if let Some(b) = layer.bias {
            for (c, &bc) in b.iter().enumerate().take(z.ncols()) {
                z.col_mut(c).iter_mut().for_each(|v| *v += bc);
            }
        }
    }
    ws.gs.resize_with(n_layers, Mat::new);
    let out = &ws.zs[n_layers - 1];
    shape(&mut ws.gs[n_layers - 1], n, out.ncols());
    let total = likelihood.ln_lik(out, targets, rows, Some(&mut ws.gs[n_layers - 1]));
    // Backward.
    for i in (0..n_layers).rev() {
        let layer = arch.layer(w, i);
        let (below, rest) = ws.gs.split_at_mut(i);
        let g = &rest[0];
        if let Some(o) = arch.offsets(i) {
            let (d_in, d_out) = (arch.widths()[i], arch.widths()[i + 1]);
            shape(&mut ws.gw, d_out, d_in);
            let input = if i == 0 { x } else { ws.hs[i].as_ref() };
            matmul(
                &mut ws.gw,
                Accum::Replace,
                g.transpose(),
                input,
                scale,
                Par::Seq,
            );
            for a in 0..d_out {
                for b in 0..d_in {
                    grad_w[o.weight + a * d_in + b] += ws.gw[(a, b)];
                }
            }
            if let Some(ob) = o.bias {
                for a in 0..d_out {
                    grad_w[ob + a] += scale * g.col(a).iter().sum::<f64>();
                }
            }
        }
        if i > 0 {
            shape(&mut ws.gh, n, arch.widths()[i]);
            matmul(&mut ws.gh, Accum::Replace, g, layer.weight, 1.0, Par::Seq);
            let z = &ws.zs[i - 1];
            let g_below = &mut below[i - 1];
            shape(g_below, n, arch.widths()[i]);
            for c in 0..g_below.ncols() {
                for r in 0..n {
                    g_below[(r, c)] = ws.gh[(r, c)] * derivative(act, z[(r, c)]);
                }
            }
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
