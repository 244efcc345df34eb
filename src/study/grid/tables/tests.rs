use super::*;

fn row(estimator: &str, k: Option<u64>, repeat: u64, value: f64, upper: Option<f64>) -> RawRow {
    RawRow {
        posterior_id: "p".into(),
        estimator: estimator.into(),
        k,
        repeat,
        mi_nats: value,
        upper_nats: upper,
        ln_group_order_nats: 6f64.ln(),
        ln_cap_nats: k.map_or(6f64.ln(), |k| (k as f64).ln()),
        ..RawRow::default()
    }
}

#[test]
fn the_reference_names_the_estimate_it_is() {
    let infonce = [
        row("infonce", Some(2), 0, 0.5, None),
        row("infonce", Some(8), 0, 1.2, None),
    ];
    let sandwich = [
        row("sandwich", Some(4), 0, 1.0, Some(1.4)),
        row("sandwich", Some(16), 0, 1.5, Some(1.7)),
    ];
    let exact = [row("exact-permanent", None, 0, 1.6, None)];
    let kinds = |rows: Vec<RawRow>| {
        let bv = bias_variance(&rows);
        let r = bv.iter().find(|r| r.estimator == "infonce").unwrap();
        (r.reference_kind.clone().unwrap(), r.reference_nats.unwrap())
    };
    let only_infonce = kinds(infonce.to_vec());
    assert_eq!(only_infonce.0, "largest-K infonce, K = 8 (a lower bound)");
    assert_eq!(only_infonce.1, 1.2);
    // With the sandwich (which sorts after infonce, and whose upper side once stood in
    // for "largest-K infonce"): its interval's midpoint at the largest K.
    let with_sandwich = kinds([&infonce[..], &sandwich[..]].concat());
    assert_eq!(
        with_sandwich.0,
        "sandwich interval midpoint, K = 16 (ends cut to [0, ln|G|])"
    );
    assert_eq!(with_sandwich.1, 0.5 * (1.5 + 1.7));
    let with_exact = kinds([&infonce[..], &sandwich[..], &exact[..]].concat());
    assert_eq!(with_exact, ("exact (exact-permanent)".to_string(), 1.6));
}

#[test]
fn upper_bounds_above_ln_g_are_cut_and_the_raw_value_kept() {
    let ln_g = 6f64.ln();
    let rows = vec![
        row("sandwich", Some(4), 0, 1.5, Some(ln_g + 0.5)),
        row("sandwich", Some(4), 1, 1.6, Some(ln_g - 0.1)),
    ];
    let bv = bias_variance(&rows);
    let up = bv.iter().find(|r| r.estimator == "sandwich-upper").unwrap();
    assert_eq!(up.n_cut, 1);
    assert_eq!(up.mean_nats, 0.5 * (ln_g + ln_g - 0.1));
    assert_eq!(up.mean_raw_nats, 0.5 * (ln_g + 0.5 + ln_g - 0.1));
    assert!(up.mean_nats <= ln_g);
    let lo = bv.iter().find(|r| r.estimator == "sandwich-lower").unwrap();
    assert_eq!((lo.n_cut, lo.mean_nats), (0, 1.55));
    // The bound table: KL_sym from the cut value, never below KL − ln|G|.
    let file = crate::io::PosteriorFile {
        posterior: crate::demo::demo_posterior(
            &[2, 3, 1],
            crate::weights::Activation::Relu,
            0,
            -3.0,
        )
        .unwrap(),
        likelihood: None,
        prior_scale: 0.5,
        train_config: None,
        metadata: Default::default(),
    };
    let lp = LoadedPosterior::in_memory("p", file).unwrap();
    let bd = bounds(&rows, &[lp], None, 1, 0, &Default::default()).unwrap();
    let up = bd.iter().find(|r| r.estimator == "sandwich-upper").unwrap();
    assert_eq!(
        (up.mi_nats, up.mi_raw_nats, up.n_cut),
        (0.5 * (2.0 * ln_g - 0.1), 0.5 * (2.0 * ln_g + 0.4), 1)
    );
    assert!(up.kl_sym_nats >= up.kl_nats - ln_g && up.kl_sym_nats >= 0.0);
    assert_eq!(up.prior_scale, 0.5);
    // An upper bound above KL(q‖p) itself is cut to KL: KL(q^G‖p) ≥ 0.
    let big = vec![row("sandwich", Some(4), 0, 0.1, Some(ln_g))];
    let file = crate::io::PosteriorFile {
        // q = the prior N(0, I) itself (σ = softplus(ln(e − 1)) = 1): KL = 0.
        posterior: {
            let arch = crate::weights::Arch::builder(vec![2, 3, 1])
                .check()
                .unwrap();
            let n = arch.n_params();
            crate::posterior::MeanFieldGaussian::new(
                arch,
                vec![0.0; n],
                vec![(std::f64::consts::E - 1.0).ln(); n],
            )
            .unwrap()
        },
        likelihood: None,
        prior_scale: 1.0,
        train_config: None,
        metadata: Default::default(),
    };
    let lp = LoadedPosterior::in_memory("p", file).unwrap();
    let bd = bounds(&big, &[lp], None, 1, 0, &Default::default()).unwrap();
    let up = bd.iter().find(|r| r.estimator == "sandwich-upper").unwrap();
    assert!(up.kl_nats < ln_g, "{}", up.kl_nats);
    assert!(up.cut_at_kl && up.mi_nats == up.kl_nats && up.kl_sym_nats == 0.0);
}
