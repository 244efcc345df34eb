//! MLP architectures, the flat weight layout and the forward pass (DESIGN §2).
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

/// Unchecked description of an MLP; [`ArchBuilder::check`] validates it into an
/// [`Arch`].
///
/// Defaults (set by [`Arch::builder`]): ReLU, a bias on every layer, no fixed layer.
#[derive(Clone, Debug)]
pub struct ArchBuilder {
    widths: Vec<usize>,
    activation: Activation,
    bias: Vec<bool>,
    fixed: Vec<Option<FixedLayer>>,
}

impl ArchBuilder {
    /// Sets the hidden activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Switches biases on or off on every layer.
    pub fn bias(mut self, on: bool) -> Self {
        self.bias.iter_mut().for_each(|b| *b = on);
        self
    }

    /// Switches the bias of layer `layer` (0-based) on or off. An out-of-range layer is
    /// reported by [`check`](Self::check).
    pub fn layer_bias(mut self, layer: usize, on: bool) -> Self {
        if layer >= self.bias.len() {
            self.bias.resize(layer + 1, true);
        }
        self.bias[layer] = on;
        self
    }

    /// Makes layer `layer` fixed with the given values (its bias flag becomes whether
    /// `bias` is given).
    pub fn fixed_layer(mut self, layer: usize, weight: Vec<f64>, bias: Option<Vec<f64>>) -> Self {
        if layer >= self.fixed.len() {
            self.fixed.resize(layer + 1, None);
        }
        if layer >= self.bias.len() {
            self.bias.resize(layer + 1, true);
        }
        self.bias[layer] = bias.is_some();
        self.fixed[layer] = Some(FixedLayer { weight, bias });
        self
    }

    /// Validates the description.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for fewer than two widths, a zero width, a layer index
    /// out of range or non-finite fixed values; [`Error::LengthMismatch`] for fixed
    /// values of the wrong size; [`Error::FixedLayerBreaksSymmetry`] for a fixed layer
    /// that is not invariant under its neighbouring hidden layer's permutations.
    pub fn check(self) -> Result<Arch> {
        let widths = self.widths;
        if widths.len() < 2 {
            return Err(Error::invalid(
                "widths",
                format!("{widths:?}"),
                "need at least an input and an output width",
            ));
        }
        if let Some(i) = widths.iter().position(|&d| d == 0) {
            return Err(Error::invalid(
                format!("widths[{i}]"),
                0,
                "every width must be at least 1",
            ));
        }
        let n_layers = widths.len() - 1;
        if self.bias.len() > n_layers || self.fixed.len() > n_layers {
            return Err(Error::invalid(
                "layer",
                self.bias.len().max(self.fixed.len()) - 1,
                format!("the architecture has layers 0..{}", n_layers - 1),
            ));
        }
        let mut fixed = self.fixed;
        fixed.resize(n_layers, None);
        let bias = self.bias;
        for (i, f) in fixed.iter().enumerate() {
            let Some(f) = f else { continue };
            let (d_in, d_out) = (widths[i], widths[i + 1]);
            if f.weight.len() != d_out * d_in {
                return Err(Error::length(
                    format!("layers.{i}.weight"),
                    d_out * d_in,
                    f.weight.len(),
                ));
            }
            if let Some(b) = &f.bias
                && b.len() != d_out
            {
                return Err(Error::length(format!("layers.{i}.bias"), d_out, b.len()));
            }
            let values = f.weight.iter().chain(f.bias.iter().flatten());
            if let Some(v) = values.copied().find(|v| !v.is_finite()) {
                return Err(Error::invalid(
                    format!("layers.{i}"),
                    v,
                    "fixed values must be finite",
                ));
            }
            check_fixed_invariance(i, f, d_in, d_out, n_layers)?;
        }
        let mut offsets = Vec::with_capacity(n_layers);
        let mut n = 0usize;
        for i in 0..n_layers {
            if fixed[i].is_some() {
                offsets.push(None);
                continue;
            }
            let weight = n;
            n += widths[i] * widths[i + 1];
            let b = if bias[i] {
                let at = n;
                n += widths[i + 1];
                Some(at)
            } else {
                None
            };
            offsets.push(Some(LayerOffsets { weight, bias: b }));
        }
        if n > u32::MAX as usize {
            return Err(Error::invalid(
                "widths",
                format!("{widths:?}"),
                format!("{n} parameters exceed the supported {}", u32::MAX),
            ));
        }
        Ok(Arch {
            widths,
            activation: self.activation,
            bias,
            fixed,
            offsets,
            n_params: n,
        })
    }
}

fn check_fixed_invariance(
    layer: usize,
    f: &FixedLayer,
    d_in: usize,
    d_out: usize,
    n_layers: usize,
) -> Result<()> {
    let w = MatRef::from_row_major_slice(&f.weight, d_out, d_in);
    let output_hidden = layer + 1 < n_layers;
    let input_hidden = layer > 0;
    if output_hidden {
        // Permuting the outputs must leave W and b unchanged: all rows equal.
        for a in 1..d_out {
            for b in 0..d_in {
                if w[(a, b)] != w[(0, b)] {
                    return Err(Error::FixedLayerBreaksSymmetry {
                        layer,
                        hidden_width_index: layer + 1,
                        reason: format!("rows 0 and {a} differ in column {b}"),
                    });
                }
            }
            if let Some(bias) = &f.bias
                && bias[a] != bias[0]
            {
                return Err(Error::FixedLayerBreaksSymmetry {
                    layer,
                    hidden_width_index: layer + 1,
                    reason: format!("bias entries 0 and {a} differ"),
                });
            }
        }
    }
    if input_hidden {
        // Permuting the inputs must leave W unchanged: all columns equal.
        for a in 0..d_out {
            for b in 1..d_in {
                if w[(a, b)] != w[(a, 0)] {
                    return Err(Error::FixedLayerBreaksSymmetry {
                        layer,
                        hidden_width_index: layer,
                        reason: format!("columns 0 and {b} differ in row {a}"),
                    });
                }
            }
        }
    }
    Ok(())
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
