//! Permutation specs with BatchNorm: deterministic per-channel tensors that pin the
//! channels they tell apart, checked against brute-force enumeration, and a
//! bayesian-torch CNN with BatchNorm read from its file.

use mi_est::estimators::{InfoNce, MiEstimator, Sandwich};
use mi_est::posterior::HALF_LN_2PI;
use mi_est::symmetry::spec::PermutationSpec;
use rand::RngExt;
use rand_distr::StandardNormal;

/// A small CNN with BatchNorm (issue 26 item 6): conv(1→4, 2×2 on 3×3) with bias, a
/// BatchNorm whose gain and shift are deterministic (point masses in q), flatten (4 × 4)
/// and a linear layer to 2 outputs. `bn` is the BatchNorm's (weight, bias) per channel.
fn bn_cnn(
    bn: [(f64, f64); 4],
    mu_of: impl Fn(&str, usize) -> f64,
    rho: f64,
) -> mi_est::io::PosteriorFile {
    let spec = PermutationSpec::from_json(
        r#"{"permutations": {"c1": 4}, "axes": {
            "conv1.kernel": ["c1", null, null, null], "conv1.bias": ["c1"],
            "bn.weight": ["c1"], "bn.bias": ["c1"],
            "fc1.weight": [null, {"perm": "c1", "block": 4}], "fc1.bias": [null]}}"#,
    )
    .unwrap();
    let var = |name: &str, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        let mu: Vec<f64> = (0..n).map(|i| mu_of(name, i)).collect();
        vec![
            (format!("{name}_mu"), shape.clone(), mu),
            (format!("{name}_rho"), shape, vec![rho; n]),
        ]
    };
    let mut tensors = Vec::new();
    tensors.extend(var("conv1.kernel", vec![4, 1, 2, 2]));
    tensors.extend(var("conv1.bias", vec![4]));
    tensors.push((
        "bn.weight".to_string(),
        vec![4],
        bn.iter().map(|b| b.0).collect(),
    ));
    tensors.push((
        "bn.bias".to_string(),
        vec![4],
        bn.iter().map(|b| b.1).collect(),
    ));
    tensors.extend(var("fc1.weight", vec![2, 16]));
    tensors.extend(var("fc1.bias", vec![2]));
    let options = mi_est::io::ReadOptions::spec(Some(&spec));
    mi_est::io::from_tensors(&tensors, &Default::default(), options)
        .unwrap()
        .0
}

/// The channel of coordinate `i` of tensor `name` (None: no channel axis).
fn bn_cnn_channel(name: &str, i: usize) -> Option<usize> {
    match name {
        "conv1.kernel" => Some(i / 4),
        "conv1.bias" => Some(i),
        "fc1.weight" => Some((i % 16) / 4),
        _ => None,
    }
}

/// ln q^G(ω) − ln q(ω) for the BatchNorm CNN by brute force over all 24 channel
/// permutations, written here independently of the library: a permutation g contributes
/// only if it maps the BatchNorm's (weight, bias) onto themselves (q is a point mass
/// there), with q(g⁻¹·ω) from the Gaussian densities of the moved coordinates.
fn bn_cnn_brute_i(
    bn: [(f64, f64); 4],
    mu_of: &dyn Fn(&str, usize) -> f64,
    rho: f64,
    draws: usize,
    seed: u64,
) -> (f64, f64) {
    let sigma = (1.0 + rho.exp()).ln();
    bn_cnn_brute(bn, mu_of, &|_, _| sigma, draws, seed)
}

/// [`bn_cnn_brute_i`] with σ per coordinate.
fn bn_cnn_brute(
    bn: [(f64, f64); 4],
    mu_of: &dyn Fn(&str, usize) -> f64,
    sigma_of: &dyn Fn(&str, usize) -> f64,
    draws: usize,
    seed: u64,
) -> (f64, f64) {
    let layout: [(&str, usize); 4] = [
        ("conv1.kernel", 16),
        ("conv1.bias", 4),
        ("fc1.weight", 32),
        ("fc1.bias", 2),
    ];
    let perms: Vec<[usize; 4]> = {
        let mut out = Vec::new();
        for a in 0..4 {
            for b in 0..4 {
                for c in 0..4 {
                    for d in 0..4 {
                        let p = [a, b, c, d];
                        let mut seen = [false; 4];
                        if p.iter().all(|&x| !std::mem::replace(&mut seen[x], true)) {
                            out.push(p);
                        }
                    }
                }
            }
        }
        out
    };
    assert_eq!(perms.len(), 24);
    // Where coordinate i of a tensor lands when channel c moves to g[c].
    let moved = |name: &str, i: usize, g: &[usize; 4]| -> usize {
        match (name, bn_cnn_channel(name, i)) {
            ("conv1.kernel", Some(c)) => g[c] * 4 + i % 4,
            ("conv1.bias", Some(c)) => g[c],
            ("fc1.weight", Some(c)) => (i / 16) * 16 + g[c] * 4 + i % 4,
            _ => i,
        }
    };
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut terms = Vec::with_capacity(draws);
    for _ in 0..draws {
        let omega: Vec<Vec<f64>> = layout
            .iter()
            .map(|(n, len)| {
                (0..*len)
                    .map(|i| mu_of(n, i) + sigma_of(n, i) * rng.sample::<f64, _>(StandardNormal))
                    .collect()
            })
            .collect();
        let ln_q = |w: &[Vec<f64>]| -> f64 {
            layout
                .iter()
                .zip(w)
                .map(|((n, len), v)| {
                    (0..*len)
                        .map(|i| {
                            let sigma = sigma_of(n, i);
                            let z = (v[i] - mu_of(n, i)) / sigma;
                            -0.5 * z * z - sigma.ln() - HALF_LN_2PI
                        })
                        .sum::<f64>()
                })
                .sum()
        };
        let base = ln_q(&omega);
        let mut logs = Vec::new();
        for g in &perms {
            // g·d₀ = d₀: the point mass of the BatchNorm tensors stays where it was.
            if (0..4).any(|c| bn[g[c]] != bn[c]) {
                continue;
            }
            // ω' = g⁻¹·ω: coordinate i of ω' is ω at the place i moves to.
            let back: Vec<Vec<f64>> = layout
                .iter()
                .zip(&omega)
                .map(|((n, len), v)| (0..*len).map(|i| v[moved(n, i, g)]).collect())
                .collect();
            logs.push(ln_q(&back) - base);
        }
        let m = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + logs.iter().map(|l| (l - m).exp()).sum::<f64>().ln();
        terms.push(24f64.ln() - lse);
    }
    let n = terms.len() as f64;
    let mean = terms.iter().sum::<f64>() / n;
    let var = terms.iter().map(|t| (t - mean) * (t - mean)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn batchnorm_tensors_pin_the_channels_they_tell_apart() {
    use mi_est::estimators::{ExactLimits, exact_estimator};
    let exact = |f: &mi_est::io::PosteriorFile, s: usize| {
        let q = &f.posterior;
        exact_estimator(q, s, 9, ExactLimits::FULL)
            .unwrap()
            .unwrap()
            .estimate(q)
            .unwrap()
    };
    let ln24 = 24f64.ln();
    // Channels 0 and 1 share their BatchNorm values, 2 and 3 differ: S = Sym({0, 1}).
    let bn = [(1.0, 0.0), (1.0, 0.0), (2.0, 0.5), (3.0, -0.5)];
    // Every channel far from every other: I = ln 24 (the pair's swap moves ω far too).
    let far = |_: &str, i: usize| 3.0 * (i as f64 + 1.0).sin() + i as f64;
    let e = exact(&bn_cnn(bn, far, -4.0), 50);
    assert!((e.value - ln24).abs() < 1e-9, "{}", e.value);
    assert!((e.ln_group_order - ln24).abs() < 1e-12);
    // Channels 0 and 1 identical under q: the swap leaves q unchanged, I = ln 24 − ln 2.
    let tied = |n: &str, i: usize| {
        let c = bn_cnn_channel(n, i);
        let j = match (n, c) {
            ("conv1.kernel", Some(1)) => i - 4,
            ("conv1.bias", Some(1)) => 0,
            ("fc1.weight", Some(1)) => i - 4,
            _ => i,
        };
        far(n, j)
    };
    let e = exact(&bn_cnn(bn, tied, -1.0), 50);
    assert!((e.value - 12f64.ln()).abs() < 1e-9, "{}", e.value);
    // Every channel's BatchNorm distinct: no permutation is left, I = ln 24 exactly.
    let distinct = [(1.0, 0.0), (1.5, 0.0), (2.0, 0.5), (3.0, -0.5)];
    let e = exact(&bn_cnn(distinct, tied, -1.0), 50);
    assert!(
        (e.value - ln24).abs() < 1e-12 && e.std_err == Some(0.0),
        "{:?}",
        e
    );
    // Overlap between channels 0 and 1 (means 0.1 apart, σ ≈ 0.31): against brute-force
    // enumeration over all 24 permutations with independent draws.
    let near = |n: &str, i: usize| match (n, bn_cnn_channel(n, i)) {
        ("conv1.kernel", Some(1)) | ("fc1.weight", Some(1)) => tied(n, i) + 0.1,
        _ => tied(n, i),
    };
    let file = bn_cnn(bn, near, -1.0);
    let e = exact(&file, 20_000);
    let (brute, brute_se) = bn_cnn_brute_i(bn, &near, -1.0, 20_000, 17);
    let se = (e.std_err.unwrap().powi(2) + brute_se * brute_se).sqrt();
    assert!(
        (e.value - brute).abs() < 4.0 * se,
        "library {} ± {:?}, brute force {brute} ± {brute_se}",
        e.value,
        e.std_err
    );
    println!(
        "BatchNorm CNN, channels 0 and 1 overlapping: library {} ± {:?}, brute force {brute} ± {brute_se}",
        e.value, e.std_err
    );
    assert!(
        e.value > 12f64.ln() + 0.05 && e.value < ln24 - 0.05,
        "{}",
        e.value
    );
    // Every other estimator meets the same stabilizer: I^K ≤ I, the sandwich brackets it.
    let q = &file.posterior;
    let ik = InfoNce::new(64)
        .unwrap()
        .samples(2000)
        .unwrap()
        .seed(3)
        .estimate(q)
        .unwrap();
    assert!(
        ik.value <= e.value + 4.0 * se,
        "{} vs {}",
        ik.value,
        e.value
    );
    let (lo, up) = Sandwich::new(16)
        .unwrap()
        .samples(2000)
        .unwrap()
        .seed(4)
        .estimate_both(q)
        .unwrap();
    assert!(
        lo.value <= e.value + 0.05 && up.value >= e.value - 0.05,
        "[{}, {}] vs {}",
        lo.value,
        up.value,
        e.value
    );
    assert!(up.value <= ln24 + 1e-9);
    // The annealed bounds walk an MLP's layers: a CNN is refused, by name.
    let e = mi_est::estimators::Annealed::new(10)
        .unwrap()
        .samples(4)
        .unwrap()
        .estimate_both(q)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the annealed bounds") && e.contains("an MLP given by its widths"),
        "{e}"
    );
}

/// The same CNN made by bayesian-torch with torch's BatchNorm2d (data/fixtures, its whole
/// state_dict and a hand-written spec): the BatchNorm's fixed gains tie channels 0 and 1
/// and tell 2 and 3 apart; exact I against the brute force over all 24 permutations.
#[test]
fn a_bayesian_torch_cnn_with_batchnorm_reads_and_pins_its_channels() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures");
    let spec = mi_est::grid::load_spec(&dir.join("bt-cnn-batchnorm.spec.json")).unwrap();
    let (file, _) = mi_est::io::inspect(
        &dir.join("bt-cnn-batchnorm.safetensors"),
        mi_est::io::ReadOptions::spec(Some(&spec.spec)),
    )
    .unwrap();
    let q = &file.posterior;
    let space = q.space().spec_space().unwrap();
    assert_eq!(space.pins(), &[Some(vec![0, 0, 1, 2])]);
    // μ and σ by tensor name and index, from the file as read.
    let mut offsets = std::collections::HashMap::new();
    let mut at = 0;
    for (name, shape) in space.layout() {
        offsets.insert(name, at);
        at += shape.iter().product::<usize>();
    }
    let (mu, sigma) = (q.mu().to_vec(), q.sigma());
    let mu_of = |n: &str, i: usize| mu[offsets[n] + i];
    let sigma_of = |n: &str, i: usize| sigma[offsets[n] + i];
    let bn = [(1.0, 0.0), (1.0, 0.0), (2.0, 0.5), (3.0, -0.5)];
    let e = mi_est::estimators::exact_estimator(q, 5000, 2, mi_est::estimators::ExactLimits::FULL)
        .unwrap()
        .unwrap()
        .estimate(q)
        .unwrap();
    let (brute, brute_se) = bn_cnn_brute(bn, &mu_of, &sigma_of, 5000, 5);
    let se = (e.std_err.unwrap().powi(2) + brute_se * brute_se).sqrt();
    assert!(
        (e.value - brute).abs() <= 4.0 * se + 1e-9,
        "{} vs {brute} ± {se}",
        e.value
    );
    assert!(
        e.value <= 24f64.ln() + 1e-9 && e.value >= 12f64.ln() - 1e-9,
        "{}",
        e.value
    );
}
