//! `mi-est inspect`: what a posterior file holds, as read.

use anyhow::Result;

use super::args::InspectArgs;

/// `mi-est inspect`: what each file holds, as read.
pub(crate) fn inspect(a: InspectArgs, limits: &mi_est::resources::Limits) -> Result<()> {
    let spec = a.read.load_spec()?;
    let options = a.read.options(spec.as_ref(), limits);
    for path in &a.files {
        let (file, how) = mi_est::io::inspect(path, options)?;
        let q = &file.posterior;
        let group = q.space().group();
        let schemes: Vec<&str> = how.schemes.iter().map(|s| s.describe()).collect();
        println!("{}", path.display());
        println!("  naming        {}", schemes.join("; "));
        println!("  sigma         {}", how.sigma);
        println!("  layer order   {} ({})", how.layers.join(" → "), how.order);
        if !how.skipped.is_empty() {
            println!(
                "  skipped       {} (not parameters of the posterior: blitz's sampler noise, and its copies of the means and rhos, checked equal)",
                how.skipped.join(", ")
            );
        }
        match (q.arch(), q.space().spec_space()) {
            (Some(arch), _) => {
                let fixed: Vec<String> = (0..arch.n_layers())
                    .filter(|&i| arch.fixed(i).is_some())
                    .map(|i| i.to_string())
                    .collect();
                println!(
                    "  architecture  widths {:?}, {} activation, fixed layers: {}",
                    arch.widths(),
                    arch.activation().name(),
                    if fixed.is_empty() {
                        "none".to_string()
                    } else {
                        fixed.join(", ")
                    }
                );
            }
            (None, Some(space)) => {
                println!(
                    "  architecture  {} (permutation spec)",
                    q.space().describe()
                );
                for (name, shape) in space.layout() {
                    println!("    {name:<24} {shape:?}");
                }
                for (name, shape, _) in space.fixed() {
                    println!("    {name:<24} {shape:?} (fixed)");
                }
                for ((perm, n), pins) in space.spec().permutations().iter().zip(space.pins()) {
                    let Some(labels) = pins else { continue };
                    let n_classes = labels.iter().max().map_or(0, |m| m + 1);
                    let classes: Vec<String> = (0..n_classes)
                        .map(|c| {
                            let units: Vec<String> = (0..*n)
                                .filter(|&u| labels[u] == c)
                                .map(|u| u.to_string())
                                .collect();
                            format!("{{{}}}", units.join(", "))
                        })
                        .collect();
                    println!(
                        "  pinned        `{perm}`: its fixed tensors differ between units, so only permutations within {} keep q(g⁻¹·ω) > 0",
                        classes.join(" ")
                    );
                }
            }
            (None, None) => {}
        }
        println!("  parameters    {} (variational)", q.n_params());
        println!(
            "  ln|G|         {:.4} nats ({} {:?})",
            group.ln_order(),
            if q.arch().is_some() {
                "hidden widths"
            } else {
                "permutation sizes"
            },
            group.hidden_widths()
        );
        let sigma = q.sigma();
        let (lo, hi) = sigma
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &s| (a.min(s), b.max(s)));
        println!("  sigma range   [{lo:.3e}, {hi:.3e}]");
        if let Some(l) = file.likelihood {
            println!("  likelihood    {l}");
        }
        println!("  prior         N(0, {}²): {}", file.prior_scale, how.prior);
    }
    Ok(())
}
