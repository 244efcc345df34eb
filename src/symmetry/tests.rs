//! Unit tests of `symmetry`.

use super::*;
use crate::rng::stream;

#[test]
fn enumeration_of_3_2_3_1_visits_twelve_distinct_elements() {
    let arch = Arch::builder(vec![3, 2, 3, 1]).check().unwrap();
    let group = Group::of(&arch);
    assert_eq!(group.order(), Some(12));
    let all: Vec<_> = group.elements(100).unwrap().collect();
    assert_eq!(all.len(), 12);
    let set: std::collections::HashSet<_> = all.iter().cloned().collect();
    assert_eq!(set.len(), 12);
    assert!(all[0].is_identity());
    let mut n = 0;
    group.elements(100).unwrap().for_each_ref(|_| n += 1);
    assert_eq!(n, 12);
}

#[test]
fn enumeration_refuses_large_groups() {
    let arch = Arch::builder(vec![3, 12, 1]).check().unwrap();
    let e = Group::of(&arch)
        .elements(DEFAULT_MAX_ENUMERATION)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::GroupTooLarge {
                limit: DEFAULT_MAX_ENUMERATION,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("1000000"), "{e}");
    let huge = Arch::builder(vec![3, 100, 100, 1]).check().unwrap();
    assert!(Group::of(&huge).order().is_none());
    assert!(Group::of(&huge).elements(u64::MAX).is_err());
}

#[test]
fn ln_order_matches_factorials() {
    let arch = Arch::builder(vec![4, 5, 3, 2]).check().unwrap();
    assert!((Group::of(&arch).ln_order() - (120f64 * 6.0).ln()).abs() < 1e-12);
    let wide = Arch::builder(vec![784, 30, 10]).check().unwrap();
    assert!((Group::of(&wide).ln_order() - 74.658_236_3).abs() < 1e-6);
}

#[test]
fn random_permutations_are_uniform_on_s3() {
    let mut counts = std::collections::HashMap::new();
    let mut rng = stream(1, 0);
    let n = 60_000;
    for _ in 0..n {
        *counts
            .entry(Permutation::random(3, &mut rng).forward().to_vec())
            .or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 6);
    for c in counts.values() {
        // Binomial(n, 1/6) sd ≈ 91; 5 sd.
        assert!((*c as f64 - n as f64 / 6.0).abs() < 460.0, "{counts:?}");
    }
}

#[test]
fn from_forward_rejects_non_permutations() {
    assert!(Permutation::from_forward(vec![0, 0, 1]).is_err());
    assert!(Permutation::from_forward(vec![0, 3]).is_err());
    let p = Permutation::from_forward(vec![2, 0, 1]).unwrap();
    assert_eq!(p.inverse_map(), &[1, 2, 0]);
}

#[test]
fn action_matches_paper_matrix_form() {
    // One hidden layer of width 3: W1' = P1ᵀ W1, b1' = P1ᵀ b1, W2' = W2 P1.
    let arch = Arch::builder(vec![2, 3, 2]).check().unwrap();
    let w: Vec<f64> = (0..arch.n_params()).map(|i| i as f64).collect();
    let tau = Permutation::from_forward(vec![1, 2, 0]).unwrap();
    let mut p = [[0.0; 3]; 3];
    for i in 0..3 {
        p[i][tau.forward()[i]] = 1.0;
    }
    let g = GroupElement::new(vec![tau]);
    let gw = ActionMap::new(&arch, &g).apply(&w);
    let (w1, b1, w2) = (&w[0..6], &w[6..9], &w[9..15]);
    for a in 0..3 {
        for b in 0..2 {
            let expect: f64 = (0..3).map(|i| p[i][a] * w1[i * 2 + b]).sum();
            assert_eq!(gw[a * 2 + b], expect);
        }
        let expect_b: f64 = (0..3).map(|i| p[i][a] * b1[i]).sum();
        assert_eq!(gw[6 + a], expect_b);
    }
    for r in 0..2 {
        for c in 0..3 {
            let expect: f64 = (0..3).map(|i| w2[r * 3 + i] * p[i][c]).sum();
            assert_eq!(gw[9 + r * 3 + c], expect);
        }
    }
    assert_eq!(&gw[15..], &w[15..]);
}
