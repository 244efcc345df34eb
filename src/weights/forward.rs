//! The forward pass (`train` feature): layer views into a flat weight vector and the
//! batched pass through the network (docs/mathematics.md §1, eq. 1), on faer's matrix
//! product through [`crate::linalg::matmul`].

use faer::{Accum, Mat, MatRef, Par};

use crate::error::{Error, Result};
use crate::linalg::matmul;
use crate::weights::Arch;

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
