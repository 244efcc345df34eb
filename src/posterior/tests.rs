//! Unit tests of `posterior`.

use super::*;

#[test]
fn softplus_round_trips_in_extreme_ranges() {
    for &x in &[
        -700.0, -300.0, -40.0, -1e-8, 0.0, 1e-8, 1.0, 19.9, 20.1, 40.0, 300.0, 1e6,
    ] {
        let y = softplus(x);
        assert!(y.is_finite() && y > 0.0, "softplus({x}) = {y}");
        let back = softplus_inverse(y);
        let tol = 1e-12 * x.abs().max(1.0);
        assert!((back - x).abs() <= tol, "x = {x}, back = {back}");
    }
    assert_eq!(softplus(1e6), 1e6);
    assert!((softplus(-700.0) - (-700f64).exp()).abs() < 1e-320);
}

#[test]
fn logistic_is_softplus_derivative() {
    for &x in &[-30.0, -2.0, 0.0, 0.3, 5.0, 40.0] {
        let h = 1e-5;
        let fd = (softplus(x + h) - softplus(x - h)) / (2.0 * h);
        assert!((fd - logistic(x)).abs() < 1e-8);
    }
}

#[test]
fn bad_scales_are_named_errors() {
    let arch = Arch::builder(vec![1, 1]).check().unwrap();
    for bad in [f64::NAN, -1.0, 0.0, f64::INFINITY] {
        let e = MeanFieldGaussian::from_mu_sigma(arch.clone(), vec![0.0; 2], vec![1.0, bad])
            .unwrap_err();
        assert!(e.to_string().contains("sigma[1]"), "{e}");
    }
    let e = MeanFieldGaussian::new(arch.clone(), vec![0.0; 2], vec![0.0, -800.0]).unwrap_err();
    assert!(
        e.to_string().contains("rho[1]") && e.to_string().contains("underflow"),
        "{e}"
    );
    // σ = exp(800) is infinite: said to overflow, not underflow.
    let e = MeanFieldGaussian::with_transform(
        arch.clone(),
        vec![0.0; 2],
        vec![0.0, 800.0],
        SigmaTransform::Exp,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("rho[1]") && e.to_string().contains("= inf overflows"),
        "{e}"
    );
    let e = MeanFieldGaussian::new(arch.clone(), vec![f64::NAN, 0.0], vec![0.0; 2]).unwrap_err();
    assert!(e.to_string().contains("mu[0]"), "{e}");
    let e = MeanFieldGaussian::new(arch.clone(), vec![0.0; 3], vec![0.0; 2]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::LengthMismatch {
                expected: 2,
                actual: 3,
                ..
            }
        ),
        "{e}"
    );
    let q = MeanFieldGaussian::new(arch, vec![0.0; 2], vec![0.0; 2]).unwrap();
    assert!(q.kl_to_prior(0.0).is_err() && q.kl_to_prior(f64::NAN).is_err());
    assert!(q.ln_q(&[0.0]).is_err());
    assert!("cube".parse::<SigmaTransform>().is_err());
}

#[test]
fn sigma_and_slope_are_the_bits_of_sigma_and_its_derivative() {
    let mut rhos = vec![
        -745.0, -700.0, -40.0, -3.0, -1e-300, -0.0, 0.0, 1e-300, 0.5, 20.0, 36.0, 710.0,
    ];
    rhos.extend((0..2000).map(|i| -50.0 + 0.05 * i as f64 + 1e-3 * (i % 7) as f64));
    for t in [SigmaTransform::Softplus, SigmaTransform::Exp] {
        for &r in &rhos {
            let (s, slope) = t.sigma_and_slope(r);
            assert_eq!(s.to_bits(), t.sigma(r).to_bits(), "{t} sigma({r})");
            assert_eq!(
                slope.to_bits(),
                t.dsigma_drho(r).to_bits(),
                "{t} slope({r})"
            );
        }
    }
    // The slope is the derivative: central finite differences (independent of both).
    for &r in &[-8.0, -3.0, -0.2, 0.0, 0.7, 4.0] {
        let h = 1e-6;
        let t = SigmaTransform::Softplus;
        let fd = (t.sigma(r + h) - t.sigma(r - h)) / (2.0 * h);
        assert!((t.sigma_and_slope(r).1 - fd).abs() < 1e-8, "rho {r}");
    }
}

#[test]
fn update_in_place_equals_rebuilding_the_posterior() {
    let arch = Arch::builder(vec![3, 4, 2]).check().unwrap();
    let n = arch.n_params();
    let mu: Vec<f64> = (0..n).map(|i| 0.1 * i as f64 - 1.0).collect();
    let rho: Vec<f64> = (0..n).map(|i| -4.0 + 0.3 * i as f64).collect();
    for t in [SigmaTransform::Softplus, SigmaTransform::Exp] {
        let mut q =
            MeanFieldGaussian::with_transform(arch.clone(), mu.clone(), rho.clone(), t).unwrap();
        let step = |p: usize, m: &mut f64, r: &mut f64| {
            *m -= 0.01 * p as f64;
            *r += 0.02 * (p % 3) as f64 - 0.01;
        };
        let (mut mu2, mut rho2) = (mu.clone(), rho.clone());
        for p in 0..n {
            step(p, &mut mu2[p], &mut rho2[p]);
        }
        q.update_in_place(|start, m, r| {
            for (i, (m, r)) in m.iter_mut().zip(r).enumerate() {
                step(start + i, m, r);
            }
        })
        .unwrap();
        let rebuilt = MeanFieldGaussian::with_transform(arch.clone(), mu2, rho2, t).unwrap();
        assert_eq!(q, rebuilt);
        assert_eq!(
            q.kl_to_prior(0.7).unwrap().to_bits(),
            rebuilt.kl_to_prior(0.7).unwrap().to_bits()
        );
    }
    let mut q = MeanFieldGaussian::new(arch, mu, rho).unwrap();
    let e = q
        .update_in_place(|start, _, r| {
            if (start..start + r.len()).contains(&5) {
                r[5 - start] = -800.0;
            }
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("rho[5]") && e.to_string().contains("underflow"),
        "{e}"
    );
}

#[test]
fn permuted_density_from_the_permutations_equals_two_independent_routes() {
    use crate::rng::stream;
    use crate::symmetry::Group;
    let archs = [
        Arch::builder(vec![3, 4, 2]).check().unwrap(),
        Arch::builder(vec![5, 3, 4, 2]).bias(false).check().unwrap(),
        Arch::builder(vec![17, 6, 5, 3]).check().unwrap(),
        Arch::builder(vec![1, 2, 1])
            .bias(false)
            .fixed_layer(1, vec![1.0, 1.0], None)
            .check()
            .unwrap(),
    ];
    for arch in archs {
        let n = arch.n_params();
        let mu = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.1).collect();
        let rho = (0..n).map(|i| -2.0 + (i % 5) as f64 * 0.3).collect();
        let q = MeanFieldGaussian::new(arch.clone(), mu, rho).unwrap();
        let group = Group::of(&arch);
        let mut rng = stream(5, 0);
        let v = q.sample(&mut rng);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
        let id = q.ln_q_inverse_permuted_by(&v, &group.identity());
        assert!(close(id, q.ln_q(&v).unwrap()), "{id} vs ln q");
        for _ in 0..50 {
            let g = group.random(&mut rng);
            let ours = q.ln_q_inverse_permuted_by(&v, &g);
            let by_map = q
                .ln_q_inverse_permuted(&v, &ActionMap::new(&arch, &g))
                .unwrap();
            // q(g⁻¹·v) = (g·q)(v).
            let by_moved_q = q.permuted(&g).ln_q(&v).unwrap();
            assert!(
                close(ours, by_map) && close(ours, by_moved_q),
                "{ours} {by_map} {by_moved_q}"
            );
        }
    }
}
