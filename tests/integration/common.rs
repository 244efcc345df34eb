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

/// A Parquet report of ours, read back with polars (the library only writes Parquet).
pub fn read_parquet(path: &std::path::Path) -> polars::prelude::DataFrame {
    use polars::prelude::SerReader;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    polars::prelude::ParquetReader::new(file)
        .finish()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rows of a `raw.parquet` report.
pub fn read_raw(path: &std::path::Path) -> Vec<mi_est::grid::RawRow> {
    let df = read_parquet(path);
    let col = |name: &str| df.column(name).unwrap().as_materialized_series().clone();
    let u64s = |name: &str| -> Vec<Option<u64>> { col(name).u64().unwrap().iter().collect() };
    let f64s = |name: &str| -> Vec<Option<f64>> { col(name).f64().unwrap().iter().collect() };
    let strs = |name: &str| -> Vec<String> {
        col(name)
            .str()
            .unwrap()
            .iter()
            .map(|s| s.unwrap().to_string())
            .collect()
    };
    let (item, k, n_samples, repeat, seed) = (
        u64s("item"),
        u64s("k"),
        u64s("n_samples"),
        u64s("repeat"),
        u64s("seed"),
    );
    let (mi, se, cap, lng, h, share, wall) = (
        f64s("mi_nats"),
        f64s("std_err_nats"),
        f64s("ln_cap_nats"),
        f64s("ln_group_order_nats"),
        f64s("entropy_q_nats"),
        f64s("max_term_share"),
        f64s("wall_s"),
    );
    let (upper, upper_se, width, width_se, bracket) = (
        f64s("upper_nats"),
        f64s("upper_std_err_nats"),
        f64s("width_nats"),
        f64s("width_std_err_nats"),
        f64s("bracket_nats"),
    );
    let (pid, ppath, sha, est) = (
        strs("posterior_id"),
        strs("posterior_path"),
        strs("posterior_sha256"),
        strs("estimator"),
    );
    (0..df.height())
        .map(|i| mi_est::grid::RawRow {
            item: item[i].unwrap(),
            posterior_id: pid[i].clone(),
            posterior_path: ppath[i].clone(),
            posterior_sha256: sha[i].clone(),
            estimator: est[i].clone(),
            k: k[i],
            n_samples: n_samples[i].unwrap(),
            repeat: repeat[i].unwrap(),
            seed: seed[i].unwrap(),
            mi_nats: mi[i].unwrap(),
            std_err_nats: se[i],
            ln_cap_nats: cap[i].unwrap(),
            ln_group_order_nats: lng[i].unwrap(),
            entropy_q_nats: h[i].unwrap(),
            max_term_share: share[i],
            upper_nats: upper[i],
            upper_std_err_nats: upper_se[i],
            width_nats: width[i],
            width_std_err_nats: width_se[i],
            bracket_nats: bracket[i],
            wall_s: wall[i].unwrap(),
        })
        .collect()
}

/// An error and its causes, outermost first, as the command prints them.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The tensors of an F64 safetensors file as (name, shape, values), in the file's order.
pub fn f64_tensors(bytes: &[u8]) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| {
            let vals = v
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (n, v.shape().to_vec(), vals)
        })
        .collect()
}

/// A fresh folder under the system's temporary folder, unique to this process and
/// `name`, removed with everything in it when dropped (also when the test fails).
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    pub fn new(kind: &str, name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mi-est-{kind}-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A path inside the repository (the crate's folder).
pub fn repo(p: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}
