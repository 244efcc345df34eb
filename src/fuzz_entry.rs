//! The entry points of the fuzz targets (`fuzz/fuzz_targets/*.rs`) and of the test that
//! replays their corpus with random mutations: each feeds arbitrary bytes to one file
//! reader and, when the bytes parse, to the first computations a user would run on the
//! result. Every function must return (with any `Ok` or `Err`) and never panic.

use std::path::Path;

use crate::estimators::{InfoNce, MiEstimator};

/// A posterior file (safetensors + metadata), then its entropy, KL to the prior and a
/// one-draw I^2 when it parses.
pub fn posterior(data: &[u8]) {
    if let Ok(file) = crate::io::from_bytes(data) {
        let q = &file.posterior;
        let _ = q.entropy();
        let _ = q.kl_to_prior(file.prior_scale);
        if q.n_params() <= 100_000 {
            let est = InfoNce::new(2).and_then(|e| e.samples(1));
            let _ = est.and_then(|e| e.estimate(q));
        }
        let _ = crate::io::to_bytes(&file);
    }
}

/// An IDX file, gzipped or not.
pub fn idx(data: &[u8]) {
    let _ = crate::data::idx_from_bytes(data, Path::new("fuzz.idx"), &Default::default());
}

/// A CSV data set, read both as regression (one target) and as classification.
pub fn csv(data: &[u8]) {
    let path = Path::new("fuzz.csv");
    let _ = crate::data::csv_from_bytes(data, path, 1, false);
    let _ = crate::data::csv_from_bytes(data, path, 1, true);
}

/// A permutation spec (JSON), then its checks against the tensors of the spec's own
/// example and of an MLP, and, where they pass, the action of a random element.
pub fn spec(data: &[u8]) {
    use crate::symmetry::spec::{PermutationSpec, mlp_layout};
    use crate::symmetry::{GroupElement, Permutation};
    let Ok(spec) = PermutationSpec::from_json(&String::from_utf8_lossy(data)) else {
        return;
    };
    assert!(
        PermutationSpec::from_json(&spec.to_json()).is_ok_and(|back| back == spec),
        "a spec survives its JSON round trip"
    );
    let _ = spec.ln_order();
    let arch = crate::weights::Arch::builder(vec![3, 4, 2])
        .check()
        .expect("a valid MLP");
    let example = crate::symmetry::spec::conv_example_layout();
    for layout in [example, mlp_layout(&arch)] {
        if spec.check_layout(&layout).is_ok() && spec.permutations().iter().all(|(_, n)| *n <= 64) {
            let mut rng = crate::rng::stream(0, 0);
            let g = GroupElement::new(
                spec.permutations()
                    .iter()
                    .map(|(_, n)| Permutation::random(*n, &mut rng))
                    .collect(),
            );
            let _ = spec.action(&layout, &g);
            let space = crate::symmetry::SpecSpace::new(spec.clone(), &layout, &[])
                .expect("the layout was checked");
            let taus: Vec<Vec<usize>> = g.perms().iter().map(|p| p.forward().to_vec()).collect();
            for k in 0..spec.permutations().len() {
                if let Some(units) = space.units(k) {
                    assert_eq!(units.index.len(), units.width * units.n_per_unit);
                    for &p in &units.index {
                        assert!(
                            space.relabel(p, &taus)
                                < space
                                    .layout()
                                    .iter()
                                    .map(|(_, s)| s.iter().product::<usize>())
                                    .sum()
                        );
                    }
                }
            }
        }
    }
}

/// A fuzz target: its name and entry point.
pub type Target = (&'static str, fn(&[u8]));

/// The targets by name, as the replay test and the fuzz crate see them.
pub const TARGETS: [Target; 4] = [
    ("posterior", posterior),
    ("idx", idx),
    ("csv", csv),
    ("spec", spec),
];
