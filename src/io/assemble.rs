//! The posterior assembled from a file's layers: their forward order, then an MLP
//! (widths, fixed layers, activation) or tensors under a permutation spec, with the
//! metadata's checks.

use super::*;

/// The layers of a file in forward order ([`order::forward_order`]) and how it was
/// settled; `file_order` lists the file's tensor names in its own order, where it keeps
/// one.
pub(super) fn order_layers(
    layers: Layers,
    file_order: Option<&[String]>,
    options: ReadOptions<'_>,
    spec: bool,
) -> Result<(Vec<(String, LayerTensors)>, LayerOrder)> {
    let chain_shape = |t: &LayerTensors| match (t.weight.shape(), t.kernel.shape()) {
        (Some(w), None) if w.len() == 2 => Some(order::ChainShape {
            d_in: w[1],
            d_out: w[0],
            conv: false,
        }),
        (None, Some(k)) if k.len() >= 2 => Some(order::ChainShape {
            d_in: k[1],
            d_out: k[0],
            conv: true,
        }),
        _ => None,
    };
    let named: Vec<(String, Option<order::ChainShape>)> = layers
        .iter()
        .map(|(n, t)| (n.clone(), chain_shape(t)))
        .collect();
    // The file's order of layers: each layer where its first tensor stands.
    let file_layers: Option<Vec<String>> = file_order.map(|names| {
        names
            .iter()
            .filter_map(|n| names::classify(n).map(|m| m.layer))
            .collect()
    });
    let (order, how) = order::forward_order(&named, file_layers.as_deref(), options.layers, spec)
        .map_err(|e| bad(Path::new(""), e))?;
    let mut slots: Vec<Option<(String, LayerTensors)>> = layers.into_iter().map(Some).collect();
    let ordered = order
        .into_iter()
        .map(|i| slots[i].take().expect("each layer once"))
        .collect();
    Ok((ordered, how))
}

pub(super) fn parse_set(
    set: TensorSet<'_>,
    options: ReadOptions<'_>,
) -> Result<(PosteriorFile, Recognised)> {
    let here = Path::new("");
    let order = set.order.clone();
    let file_order = order.as_deref();
    let FileTensors {
        metadata,
        layers,
        schemes,
        sigma_given,
        skipped,
    } = read_tensors(set)?;
    let spec = match (options.spec, metadata.get("permutation_spec")) {
        (Some(spec), _) => Some(spec.clone()),
        (None, Some(text)) => Some(
            PermutationSpec::from_json(text)
                .map_err(|e| bad(here, format!("metadata `permutation_spec`: {e}")))?,
        ),
        (None, None) => None,
    };
    let (layers, order) = order_layers(layers, file_order, options, spec.is_some())?;
    let layer_names: Vec<String> = layers.iter().map(|(n, _)| n.clone()).collect();
    let (space, mu, rho): (WeightSpace, _, _) = match spec {
        Some(spec) => {
            let (space, mu, rho) = spec_space(layers, spec)?;
            (space.into(), mu, rho)
        }
        None => {
            let (arch, mu, rho) = mlp_space(layers, &metadata)?;
            (arch.into(), mu, rho)
        }
    };
    let declared_transform: Option<SigmaTransform> = match metadata.get("sigma_transform") {
        Some(a) => Some(
            a.parse()
                .map_err(|e: Error| bad(here, format!("metadata `sigma_transform`: {e}")))?,
        ),
        None => None,
    };
    // σ given directly (or as ln σ) is held as ρ = ln σ with σ = exp(ρ).
    let sigma = match (&sigma_given, declared_transform) {
        (Some((Role::Scale, first)) | Some((Role::LogStd, first)), Some(t)) => {
            return Err(bad(
                here,
                format!(
                    "metadata `sigma_transform` = `{t}` does not apply: `{first}` gives σ directly"
                ),
            ));
        }
        (Some((Role::Scale, _)), None) => SigmaSource::Scale,
        (Some((Role::LogStd, _)), None) => SigmaSource::LogStd,
        (_, t) => SigmaSource::Rho(t.unwrap_or_default()),
    };
    let transform = match sigma {
        SigmaSource::Rho(t) => t,
        SigmaSource::Scale | SigmaSource::LogStd => SigmaTransform::Exp,
    };
    let (prior_scale, prior) = match (metadata.get("prior_scale"), options.prior_scale) {
        (Some(s), _) => (
            s.parse::<f64>()
                .ok()
                .filter(|v| (1.0 / LARGEST..=LARGEST).contains(v))
                .ok_or_else(|| {
                    bad(
                        here,
                        format!("metadata `prior_scale` = `{s}` is not a number in [1e-30, 1e30]"),
                    )
                })?,
            PriorSource::Metadata,
        ),
        (None, Some(s)) if (1.0 / LARGEST..=LARGEST).contains(&s) => (s, PriorSource::Option),
        (None, Some(s)) => {
            return Err(Error::invalid(
                "prior_scale",
                s,
                "must be a number in [1e-30, 1e30]",
            ));
        }
        (None, None) => (1.0, PriorSource::Assumed),
    };
    let likelihood = match metadata.get("likelihood") {
        Some(l) => Some(
            l.parse::<Likelihood>()
                .map_err(|e| bad(here, format!("metadata `likelihood`: {e}")))?,
        ),
        None => None,
    };
    let posterior = MeanFieldGaussian::with_transform(space, mu, rho, transform)
        .map_err(|e| bad(here, e.to_string()))?;
    let recognised = Recognised {
        schemes: schemes.into_iter().collect(),
        sigma,
        layers: layer_names,
        order,
        prior,
        skipped,
    };
    Ok((
        PosteriorFile {
            posterior,
            likelihood,
            prior_scale,
            train_config: metadata.get("train_config").cloned(),
            metadata,
        },
        recognised,
    ))
}

/// The MLP of a file's layers (in forward order): widths from the chained shapes, fixed
/// layers, the activation from the metadata; flat μ and ρ in our layout.
pub(super) fn mlp_space(
    layers: Vec<(String, LayerTensors)>,
    metadata: &BTreeMap<String, String>,
) -> Result<(Arch, Vec<f64>, Vec<f64>)> {
    let here = Path::new("");
    if let Some((prefix, _)) = layers.iter().find(|(_, t)| {
        t.running_mean.fixed.is_some()
            || t.running_var.fixed.is_some()
            || t.weight.fixed.as_ref().is_some_and(|w| w.0.len() == 1)
    }) {
        return Err(bad(
            here,
            format!(
                "layer `{prefix}` is a normalization layer (running statistics, or a one-dimensional weight); give a permutation spec (`--spec`, or the metadata key `permutation_spec`; docs/specs.md)"
            ),
        ));
    }
    if let Some((prefix, _)) = layers
        .iter()
        .find(|(_, t)| t.kernel.mu.is_some() || t.kernel.rho.is_some() || t.kernel.fixed.is_some())
    {
        return Err(bad(
            here,
            format!(
                "layer `{prefix}` is a convolution (a kernel tensor); give a permutation spec (`--spec`, or the metadata key `permutation_spec`; docs/specs.md)"
            ),
        ));
    }
    // Shapes → widths, fixed layers, flat μ and ρ.
    let mut widths: Vec<usize> = Vec::new();
    // Per layer: its bias flag, and the weight and bias of a fixed layer.
    type LayerParts = (bool, Option<(Vec<f64>, Option<Vec<f64>>)>);
    let mut builder_parts: Vec<LayerParts> = Vec::new();
    let mut mu = Vec::new();
    let mut rho = Vec::new();
    for (prefix, t) in layers {
        let matrix = |x: &Option<(Vec<usize>, Vec<f64>)>, what: &str| -> Result<(usize, usize)> {
            match x {
                Some((s, _)) if s.len() == 2 => Ok((s[0], s[1])),
                Some((s, _)) => Err(bad(
                    here,
                    format!("tensor `{prefix}.{what}` has shape {s:?}, expected 2 dimensions"),
                )),
                None => Err(bad(here, format!("layer `{prefix}` lacks `{what}`"))),
            }
        };
        let fixed = t.weight.fixed.is_some();
        if fixed && (t.weight.mu.is_some() || t.weight.rho.is_some()) {
            return Err(bad(
                here,
                format!("layer `{prefix}` has both `weight` and `weight_mu`"),
            ));
        }
        let (d_out, d_in) = if fixed {
            matrix(&t.weight.fixed, "weight")?
        } else {
            matrix(&t.weight.mu, "weight_mu")?
        };
        if !fixed && matrix(&t.weight.rho, "weight_rho")? != (d_out, d_in) {
            return Err(bad(
                here,
                format!("`{prefix}.weight_rho` shape differs from `{prefix}.weight_mu`"),
            ));
        }
        if d_out == 0 || d_in == 0 {
            return Err(bad(here, format!("layer `{prefix}` has an empty weight")));
        }
        match widths.last() {
            None => widths.extend([d_in, d_out]),
            Some(&prev) if prev == d_in => widths.push(d_out),
            Some(&prev) => {
                return Err(bad(
                    here,
                    format!(
                        "layer `{prefix}` takes {d_in} inputs but the previous layer has {prev} outputs"
                    ),
                ));
            }
        }
        let vector = |x: &Option<(Vec<usize>, Vec<f64>)>, what: &str| -> Result<Option<Vec<f64>>> {
            match x {
                Some((s, v)) if s.as_slice() == [d_out] => Ok(Some(v.clone())),
                Some((s, _)) => Err(bad(
                    here,
                    format!("tensor `{prefix}.{what}` has shape {s:?}, expected [{d_out}]"),
                )),
                None => Ok(None),
            }
        };
        if fixed {
            let w = t.weight.fixed.expect("fixed").1;
            builder_parts.push((true, Some((w, vector(&t.bias.fixed, "bias")?))));
        } else {
            let bm = vector(&t.bias.mu, "bias_mu")?;
            let br = vector(&t.bias.rho, "bias_rho")?;
            if bm.is_some() != br.is_some() {
                return Err(bad(
                    here,
                    format!("layer `{prefix}` has only one of `bias_mu` and `bias_rho`"),
                ));
            }
            mu.extend(t.weight.mu.expect("checked").1);
            rho.extend(t.weight.rho.expect("checked").1);
            let has_bias = bm.is_some();
            if let (Some(bm), Some(br)) = (bm, br) {
                mu.extend(bm);
                rho.extend(br);
            }
            builder_parts.push((has_bias, None));
        }
    }
    if let Some(w) = metadata.get("widths") {
        let declared: Vec<usize> = serde_json::from_str(w).map_err(|e| {
            bad(
                here,
                format!("metadata `widths` = `{w}` is not a JSON list of integers: {e}"),
            )
        })?;
        if declared != widths {
            return Err(bad(
                here,
                format!(
                    "metadata `widths` = {declared:?} disagrees with the tensor shapes {widths:?}"
                ),
            ));
        }
    }
    let activation: Activation = match metadata.get("activation") {
        Some(a) => a
            .parse()
            .map_err(|e: Error| bad(here, format!("metadata `activation`: {e}")))?,
        None => Activation::Relu,
    };
    let mut b = Arch::builder(widths).activation(activation);
    for (i, (bias_or_fixed, fixed)) in builder_parts.into_iter().enumerate() {
        b = match fixed {
            Some((w, bias)) => b.fixed_layer(i, w, bias),
            None => b.layer_bias(i, bias_or_fixed),
        };
    }
    let arch = b.check().map_err(|e| bad(here, e.to_string()))?;
    Ok((arch, mu, rho))
}

/// The space of a file's tensors under `spec`: every variational tensor, named
/// `{layer}.{weight|kernel|bias}`, in natural order of the layers (weight, kernel, bias
/// within a layer), and the fixed tensors beside them.
pub(super) fn spec_space(
    layers: Vec<(String, LayerTensors)>,
    spec: PermutationSpec,
) -> Result<(SpecSpace, Vec<f64>, Vec<f64>)> {
    let here = Path::new("");
    let (mut layout, mut fixed, mut mu, mut rho) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (prefix, t) in layers {
        for (part, p) in [
            (Part::Weight, t.weight),
            (Part::Kernel, t.kernel),
            (Part::Bias, t.bias),
            (Part::RunningMean, t.running_mean),
            (Part::RunningVar, t.running_var),
        ] {
            let name = format!("{prefix}.{}", part.name());
            match (p.mu, p.rho, p.fixed) {
                (None, None, None) => {}
                (Some(_), Some(_), Some(_))
                | (None, Some(_), Some(_))
                | (Some(_), None, Some(_)) => {
                    return Err(bad(
                        here,
                        format!("`{name}` is given both as fixed and as variational"),
                    ));
                }
                (None, None, Some((shape, values))) => fixed.push((name, shape, values)),
                (Some((shape, m)), Some((rho_shape, r)), None) => {
                    if shape != rho_shape {
                        return Err(bad(
                            here,
                            format!(
                                "`{name}`: the σ tensor has shape {rho_shape:?}, the mean {shape:?}"
                            ),
                        ));
                    }
                    mu.extend(m);
                    rho.extend(r);
                    layout.push((name, shape));
                }
                (Some(_), None, None) => {
                    return Err(bad(here, format!("`{name}` has a mean but no σ tensor")));
                }
                (None, Some(_), None) => {
                    return Err(bad(here, format!("`{name}` has a σ tensor but no mean")));
                }
            }
        }
    }
    let space = SpecSpace::new(spec, &layout, &fixed).map_err(|e| bad(here, e.to_string()))?;
    Ok((space, mu, rho))
}
