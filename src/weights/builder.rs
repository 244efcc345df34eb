//! [`ArchBuilder`]: the unchecked description of an MLP and its validation into an
//! [`Arch`](super::Arch), including the check that a fixed layer is invariant under the
//! permutations of the hidden layer it reads.

use crate::error::{Error, Result};

use super::{Activation, Arch, FixedLayer, LayerOffsets};

/// Unchecked description of an MLP; [`ArchBuilder::check`] validates it into an
/// [`Arch`].
///
/// Defaults (set by [`Arch::builder`]): ReLU, a bias on every layer, no fixed layer.
#[derive(Clone, Debug)]
pub struct ArchBuilder {
    pub(super) widths: Vec<usize>,
    pub(super) activation: Activation,
    pub(super) bias: Vec<bool>,
    pub(super) fixed: Vec<Option<FixedLayer>>,
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
    // Row-major d_out × d_in.
    let w = |a: usize, b: usize| f.weight[a * d_in + b];
    let output_hidden = layer + 1 < n_layers;
    let input_hidden = layer > 0;
    if output_hidden {
        // Permuting the outputs must leave W and b unchanged: all rows equal.
        for a in 1..d_out {
            for b in 0..d_in {
                if w(a, b) != w(0, b) {
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
                if w(a, b) != w(a, 0) {
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
