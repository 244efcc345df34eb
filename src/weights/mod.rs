//! MLP architectures, the flat weight layout and the forward pass (docs/mathematics.md §1).
//!
//! An MLP with widths `d0, d1, …, dL` has `L` layers; layer `i` (0-based, as in the
//! posterior file) maps `d_i` inputs to `d_{i+1}` outputs,
//! `x_{i+1} = σ(W_i x_i + b_i)`, with the last layer linear. `W_i` is
//! `d_{i+1} × d_i`.
//!
//! **Flat order.** The variational weights ω form one flat vector: for each layer that
//! is not fixed, `W_i` row-major, then `b_i` if the layer has a bias. A *fixed* layer is
//! deterministic, stored in the [`Arch`], and not part of ω (the paper's 2-parameter
//! model fixes its output layer to ones).
//!
//! A fixed layer next to a hidden layer must itself be invariant under that hidden
//! layer's permutations (equal rows where its output is hidden, equal columns where its
//! input is hidden); otherwise permuting hidden units would change the function and the
//! group would not be a symmetry. [`ArchBuilder::check`] enforces this.

use crate::linalg::matmul;
use faer::{Accum, Mat, MatRef, Par};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

mod builder;

pub use builder::ArchBuilder;

/// Pointwise activation of the hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// max(0, x) (the default).
    #[default]
    Relu,
    /// tanh(x).
    Tanh,
}

impl Activation {
    /// Applies the activation to one value.
    #[inline]
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Tanh => x.tanh(),
        }
    }

    /// The activation's name as used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "relu" => Ok(Activation::Relu),
            "tanh" => Ok(Activation::Tanh),
            _ => Err(Error::UnknownActivation(s.to_string())),
        }
    }
}

/// The values of a fixed (deterministic) layer.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedLayer {
    /// `d_out × d_in`, row-major.
    pub weight: Vec<f64>,
    /// `d_out`, if the layer has a bias.
    pub bias: Option<Vec<f64>>,
}

/// Where a variational layer's parameters sit in the flat vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerOffsets {
    /// Start of `W_i` (row-major).
    pub weight: usize,
    /// Start of `b_i`, if the layer has a bias.
    pub bias: Option<usize>,
}

/// A validated MLP architecture: widths, activation, biases, fixed layers and the flat
/// layout of the variational weights ω.
///
/// # Examples
///
/// ```
/// use mi_est::weights::Arch;
/// let arch = Arch::builder(vec![784, 30, 10]).check()?;
/// assert_eq!(arch.n_params(), 784 * 30 + 30 + 30 * 10 + 10);
/// // The paper's 2-parameter model: no biases, output fixed to ones.
/// let two = Arch::builder(vec![1, 2, 1]).bias(false).fixed_layer(1, vec![1.0, 1.0], None).check()?;
/// assert_eq!(two.n_params(), 2);
/// # Ok::<(), mi_est::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Arch {
    widths: Vec<usize>,
    activation: Activation,
    bias: Vec<bool>,
    fixed: Vec<Option<FixedLayer>>,
    offsets: Vec<Option<LayerOffsets>>,
    n_params: usize,
}

/// A view of one layer: the weight matrix and the bias, either into a flat weight
/// vector or into a fixed layer's stored values.
#[derive(Clone, Copy, Debug)]
pub struct LayerRef<'a> {
    /// `d_out × d_in`.
    pub weight: MatRef<'a, f64>,
    /// `d_out` entries, if the layer has a bias.
    pub bias: Option<&'a [f64]>,
}

impl Arch {
    /// Starts an unchecked description with widths `d0..dL`, ReLU, biases on every layer
    /// and no fixed layer.
    pub fn builder(widths: Vec<usize>) -> ArchBuilder {
        let n_layers = widths.len().saturating_sub(1);
        ArchBuilder {
            widths,
            activation: Activation::Relu,
            bias: vec![true; n_layers],
            fixed: vec![None; n_layers],
        }
    }

    /// Widths `d0..dL`.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// Number of layers `L`.
    pub fn n_layers(&self) -> usize {
        self.widths.len() - 1
    }

    /// Widths of the hidden layers `d1..d(L-1)`.
    pub fn hidden_widths(&self) -> &[usize] {
        &self.widths[1..self.widths.len() - 1]
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Whether layer `i` has a bias.
    ///
    /// # Panics
    ///
    /// If `i >= n_layers()`.
    pub fn has_bias(&self, i: usize) -> bool {
        self.bias[i]
    }

    /// The stored values of layer `i` if it is fixed.
    ///
    /// # Panics
    ///
    /// If `i >= n_layers()`.
    pub fn fixed(&self, i: usize) -> Option<&FixedLayer> {
        self.fixed[i].as_ref()
    }

    /// Offsets of layer `i` in the flat vector, `None` for a fixed layer.
    ///
    /// # Panics
    ///
    /// If `i >= n_layers()`.
    pub fn offsets(&self, i: usize) -> Option<LayerOffsets> {
        self.offsets[i]
    }

    /// Number of variational parameters P = dim ω.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// Checks that `w` has length P.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] naming `field`.
    pub fn check_len(&self, field: &str, w: &[f64]) -> Result<()> {
        if w.len() == self.n_params {
            Ok(())
        } else {
            Err(Error::length(field, self.n_params, w.len()))
        }
    }

    /// A view of layer `i`: into `w` for a variational layer, into the stored values for
    /// a fixed one. No copies.
    ///
    /// # Panics
    ///
    /// If `i >= n_layers()` or `w.len() != n_params()`.
    pub fn layer<'a>(&'a self, w: &'a [f64], i: usize) -> LayerRef<'a> {
        assert_eq!(w.len(), self.n_params, "weight vector length");
        let (d_in, d_out) = (self.widths[i], self.widths[i + 1]);
        match (&self.fixed[i], self.offsets[i]) {
            (Some(f), _) => LayerRef {
                weight: MatRef::from_row_major_slice(&f.weight, d_out, d_in),
                bias: f.bias.as_deref(),
            },
            (None, Some(o)) => LayerRef {
                weight: MatRef::from_row_major_slice(
                    &w[o.weight..o.weight + d_out * d_in],
                    d_out,
                    d_in,
                ),
                bias: o.bias.map(|b| &w[b..b + d_out]),
            },
            (None, None) => unreachable!("a variational layer always has offsets"),
        }
    }

    /// Batched forward pass: `x` is `n × d0` (one row per input), the result `n × dL`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `w` is not of length P or `x` does not have d0
    /// columns.
    pub fn forward(&self, w: &[f64], x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        self.check_len("weights", w)?;
        if x.ncols() != self.widths[0] {
            return Err(Error::length("input columns", self.widths[0], x.ncols()));
        }
        Ok(self.forward_ref(w, x, 0))
    }

    /// The forward pass from layer `first` on, given that layer's input `h`
    /// (`n × d_first`): used when an earlier layer was computed another way (e.g. the
    /// local reparameterization of the first layer's pre-activations).
    ///
    /// # Panics
    ///
    /// If `w` is not of length P or `h` does not have `d_first` columns.
    pub fn forward_from(&self, w: &[f64], h: Mat<f64>, first: usize) -> Mat<f64> {
        self.forward_ref(w, h.as_ref(), first)
    }

    /// [`forward_from`](Self::forward_from) into buffers the caller keeps: layer
    /// `i`'s output goes to `layers[i − first]` (resized as needed; the last one is the
    /// network's output, returned). Same bits as `forward_from`; repeated calls with
    /// the same shapes allocate nothing.
    ///
    /// # Panics
    ///
    /// As [`forward_from`](Self::forward_from), or if `first` is not a layer.
    pub fn forward_into<'a>(
        &self,
        w: &[f64],
        input: MatRef<'_, f64>,
        first: usize,
        layers: &'a mut Vec<Mat<f64>>,
    ) -> &'a Mat<f64> {
        assert!(
            first < self.n_layers(),
            "layer {first} of {}",
            self.n_layers()
        );
        assert_eq!(
            input.ncols(),
            self.widths[first],
            "input width of layer {first}"
        );
        let n = input.nrows();
        layers.resize_with(self.n_layers() - first, Mat::new);
        for i in first..self.n_layers() {
            let (done, rest) = layers.split_at_mut(i - first);
            let z = &mut rest[0];
            if z.nrows() != n || z.ncols() != self.widths[i + 1] {
                *z = Mat::zeros(n, self.widths[i + 1]);
            }
            let src = done.last().map_or(input, |h| h.as_ref());
            self.layer_into(w, i, src, z);
        }
        layers.last().expect("at least one layer")
    }

    /// `z = act(src · W_iᵀ + b_i)` (no activation on the last layer), `z` of the right
    /// shape.
    fn layer_into(&self, w: &[f64], i: usize, src: MatRef<'_, f64>, z: &mut Mat<f64>) {
        let layer = self.layer(w, i);
        matmul(
            &mut *z,
            Accum::Replace,
            src,
            layer.weight.transpose(),
            1.0,
            Par::Seq,
        );
        let last = i + 1 == self.n_layers();
        for c in 0..z.ncols() {
            let b = layer.bias.map_or(0.0, |b| b[c]);
            for r in 0..z.nrows() {
                let v = z[(r, c)] + b;
                z[(r, c)] = if last { v } else { self.activation.apply(v) };
            }
        }
    }

    /// [`forward_from`](Self::forward_from) reading the first layer's input in place
    /// (no copy of the data: the full-data ELBO passes 60,000 MNIST rows).
    fn forward_ref(&self, w: &[f64], input: MatRef<'_, f64>, first: usize) -> Mat<f64> {
        assert_eq!(
            input.ncols(),
            self.widths[first],
            "input width of layer {first}"
        );
        let n = input.nrows();
        let mut h: Option<Mat<f64>> = None;
        for i in first..self.n_layers() {
            let mut z = Mat::<f64>::zeros(n, self.widths[i + 1]);
            let src = h.as_ref().map_or(input, |h| h.as_ref());
            self.layer_into(w, i, src, &mut z);
            h = Some(z);
        }
        h.unwrap_or_else(|| input.to_owned())
    }
}

#[cfg(test)]
mod tests;
