//! Builders of random architectures and posteriors shared by the tests.

use mi_est::posterior::MeanFieldGaussian;
use mi_est::rng::stream;
use mi_est::weights::{Activation, Arch};
use proptest::prelude::*;
use rand::RngExt;
use rand_distr::StandardNormal;

/// A description of a small random MLP: hidden widths, bias flags, a fixed output layer.
#[derive(Clone, Debug)]
pub struct NetCase {
    pub widths: Vec<usize>,
    pub bias: bool,
    pub fixed_output: bool,
    pub activation: Activation,
    pub seed: u64,
}

impl NetCase {
    pub fn arch(&self) -> Arch {
        let mut b = Arch::builder(self.widths.clone())
            .activation(self.activation)
            .bias(self.bias);
        if self.fixed_output {
            let l = self.widths.len() - 2;
            let (d_in, d_out) = (self.widths[l], self.widths[l + 1]);
            // Rows may differ, columns must be equal (its input is hidden).
            let weight = (0..d_out * d_in).map(|k| 1.0 + (k / d_in) as f64).collect();
            b = b.fixed_layer(l, weight, None);
        }
        b.check().expect("valid test architecture")
    }

    /// A posterior with μ ~ N(0, 1), σ ∈ [0.05, 1.5].
    pub fn posterior(&self) -> MeanFieldGaussian {
        random_posterior(self.arch(), self.seed, 1.0)
    }
}

/// μ ~ N(0, mu_scale²), σ uniform in [0.05, 1.5], from stream (seed, 999).
pub fn random_posterior(arch: Arch, seed: u64, mu_scale: f64) -> MeanFieldGaussian {
    let mut rng = stream(seed, 999);
    let p = arch.n_params();
    let mu = (0..p)
        .map(|_| mu_scale * rng.sample::<f64, _>(StandardNormal))
        .collect();
    let sigma = (0..p).map(|_| rng.random_range(0.05..1.5)).collect();
    MeanFieldGaussian::from_mu_sigma(arch, mu, sigma).expect("valid test posterior")
}

/// One- and two-hidden-layer nets, widths 1..=5, with and without biases, with and
/// without a fixed output layer, relu or tanh.
pub fn net_case() -> impl Strategy<Value = NetCase> {
    (
        1usize..=4,
        prop::collection::vec(1usize..=5, 1..=2),
        1usize..=3,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(d0, hidden, dl, bias, fixed_output, tanh, seed)| {
            let mut widths = vec![d0];
            widths.extend(hidden);
            widths.push(dl);
            NetCase {
                widths,
                bias,
                fixed_output,
                activation: if tanh {
                    Activation::Tanh
                } else {
                    Activation::Relu
                },
                seed,
            }
        })
}
