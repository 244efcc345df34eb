//! Unit tests of `weights`.

use super::*;
use faer::Mat;

#[test]
fn flat_layout_follows_design_order() {
    let arch = Arch::builder(vec![3, 2, 1])
        .layer_bias(1, false)
        .check()
        .unwrap();
    assert_eq!(arch.n_params(), 3 * 2 + 2 + 2);
    assert_eq!(
        arch.offsets(0),
        Some(LayerOffsets {
            weight: 0,
            bias: Some(6)
        })
    );
    assert_eq!(
        arch.offsets(1),
        Some(LayerOffsets {
            weight: 8,
            bias: None
        })
    );
}

#[test]
fn forward_matches_hand_computation() {
    // widths [2, 2, 1]; W0 = [[1, -1], [0.5, 2]], b0 = [0.1, -3], W1 = [[2, 1]], b1 = [0.5]
    let arch = Arch::builder(vec![2, 2, 1]).check().unwrap();
    let w = [1.0, -1.0, 0.5, 2.0, 0.1, -3.0, 2.0, 1.0, 0.5];
    let x = Mat::from_fn(2, 2, |r, c| [[1.0, 2.0], [3.0, 0.5]][r][c]);
    let y = arch.forward(&w, x.as_ref()).unwrap();
    let relu = |v: f64| v.max(0.0);
    for r in 0..2 {
        let (a, b) = (x[(r, 0)], x[(r, 1)]);
        let h0 = relu(a - b + 0.1);
        let h1 = relu(0.5 * a + 2.0 * b - 3.0);
        assert!((y[(r, 0)] - (2.0 * h0 + h1 + 0.5)).abs() < 1e-12);
    }
}

#[test]
fn bad_descriptions_are_named_errors() {
    assert!(matches!(
        Arch::builder(vec![3]).check(),
        Err(Error::InvalidParameter { .. })
    ));
    let e = Arch::builder(vec![3, 0, 1]).check().unwrap_err();
    assert!(e.to_string().contains("widths[1]"), "{e}");
    let e = Arch::builder(vec![1, 2, 1])
        .fixed_layer(1, vec![1.0], None)
        .check()
        .unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { .. }), "{e}");
    let e = Arch::builder(vec![1, 2, 1])
        .fixed_layer(1, vec![1.0, 2.0], None)
        .check()
        .unwrap_err();
    assert!(
        matches!(e, Error::FixedLayerBreaksSymmetry { layer: 1, .. }),
        "{e}"
    );
    let e = Arch::builder(vec![1, 2, 1])
        .layer_bias(5, false)
        .check()
        .unwrap_err();
    assert!(e.to_string().contains("layer"), "{e}");
    assert!(matches!(
        "sigmoid".parse::<Activation>(),
        Err(Error::UnknownActivation(_))
    ));
    let arch = Arch::builder(vec![2, 2, 1]).check().unwrap();
    assert!(matches!(
        arch.forward(&[0.0; 3], Mat::<f64>::zeros(1, 2).as_ref()),
        Err(Error::LengthMismatch { .. })
    ));
}
