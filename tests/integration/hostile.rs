//! Hostile files (issue 8 item 1): the fuzz corpus under `fuzz/corpus/` is replayed, plus
//! a few thousand seeded random mutations per reader, through the same entry points the
//! cargo-fuzz targets call (`mi_est::fuzz_entry`). A panic anywhere fails the test.

use mi_est::fuzz_entry::TARGETS;
use mi_est::rng::stream;
use rand::RngExt;
use std::path::PathBuf;

/// Mutations per target (seeded, so a failure reproduces).
const MUTATIONS: usize = 3000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// One random edit of `bytes`: bit flips, byte overwrites with boundary values,
/// truncation, insertion, deletion, duplication of a chunk, or a splice with another
/// corpus file.
fn mutate(bytes: &[u8], other: &[u8], rng: &mut impl rand::Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let n_edits = rng.random_range(1..=4);
    for _ in 0..n_edits {
        let len = b.len();
        match rng.random_range(0..8u8) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                b[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                b[i] = [0u8, 1, 0x7f, 0x80, 0xff][rng.random_range(0..5)];
            }
            2 if len >= 4 => {
                let i = rng.random_range(0..len - 3);
                let v: u32 =
                    [0, 1, u32::MAX, i32::MAX as u32, 1 << 31, 65_536][rng.random_range(0..6)];
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            3 => b.truncate(rng.random_range(0..=len)),
            4 => {
                let i = rng.random_range(0..=len);
                let extra: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                b.splice(i..i, extra);
            }
            5 if len > 0 => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(i..=len.min(i + 64));
                b.drain(i..j);
            }
            6 if len > 0 => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(i..=len.min(i + 64));
                let chunk = b[i..j].to_vec();
                b.splice(j..j, chunk);
            }
            _ if !other.is_empty() => {
                let cut = rng.random_range(0..=b.len());
                let from = rng.random_range(0..other.len());
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    b
}

#[test]
fn fuzz_corpus_and_random_mutations_never_panic() {
    for (t, (name, entry)) in TARGETS.iter().enumerate() {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "{name}: empty corpus");
        for s in &seeds {
            entry(s);
        }
        let mut rng = stream(8, t as u64);
        for _ in 0..MUTATIONS {
            let a = &seeds[rng.random_range(0..seeds.len())];
            let b = &seeds[rng.random_range(0..seeds.len())];
            entry(&mutate(a, b, &mut rng));
        }
        entry(&[]);
    }
}

/// The harness is not vacuous: the committed seeds are valid files of each kind.
#[test]
fn fuzz_seed_files_are_valid_inputs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for f in [
        "abs-2.safetensors",
        "abs-3x2.safetensors",
        "bayesian-torch.npz",
        "pyro-f32.npz",
        "fortuna-names.safetensors",
        "tyxe.safetensors",
    ] {
        mi_est::io::from_bytes(&std::fs::read(dir.join("posterior").join(f)).unwrap()).unwrap();
    }
    for f in ["images-3.idx", "images-3.idx.gz", "labels-3.idx"] {
        let p = dir.join("idx").join(f);
        mi_est::data::idx_from_bytes(&std::fs::read(&p).unwrap(), &p, &Default::default()).unwrap();
    }
    for f in ["conv-example.json", "mlp-3-4-2.json"] {
        let text = std::fs::read_to_string(dir.join("spec").join(f)).unwrap();
        mi_est::symmetry::spec::PermutationSpec::from_json(&text).unwrap();
    }
    let p = dir.join("csv/regression.csv");
    mi_est::data::csv_from_bytes(&std::fs::read(&p).unwrap(), &p, 1, false).unwrap();
    let p = dir.join("csv/classes.csv");
    mi_est::data::csv_from_bytes(&std::fs::read(&p).unwrap(), &p, 1, true).unwrap();
}
