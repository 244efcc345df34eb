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

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

mod builder;
mod likelihood;
pub use likelihood::Likelihood;
#[cfg(feature = "train")]
mod forward;
#[cfg(feature = "train")]
pub use forward::LayerRef;

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
}

#[cfg(all(test, feature = "train"))]
mod tests;
