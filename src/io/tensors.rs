//! A file's tensors read by their names: each classified by naming scheme, decoded,
//! checked finite, σ brought to one form, and gathered into layers.

use super::*;

/// A tensor as read: shape and values (row-major).
pub(super) type Read = (Vec<usize>, Vec<f64>);

/// The mean, σ (as ρ) and fixed value of one part of a layer, as given.
#[derive(Default)]
pub(super) struct PartTensors {
    pub(super) mu: Option<Read>,
    pub(super) rho: Option<Read>,
    pub(super) fixed: Option<Read>,
}

/// A layer's tensors, by part.
#[derive(Default)]
pub(super) struct LayerTensors {
    pub(super) weight: PartTensors,
    pub(super) kernel: PartTensors,
    pub(super) bias: PartTensors,
    /// A normalization layer's running statistics (fixed).
    pub(super) running_mean: PartTensors,
    pub(super) running_var: PartTensors,
}

impl PartTensors {
    /// The part's shape: its mean's, or its fixed value's.
    pub(super) fn shape(&self) -> Option<Vec<usize>> {
        self.mu
            .as_ref()
            .or(self.fixed.as_ref())
            .map(|t| t.0.clone())
    }
}

impl LayerTensors {
    /// One part of the layer.
    pub(super) fn part(&self, part: Part) -> &PartTensors {
        match part {
            Part::Weight => &self.weight,
            Part::Kernel => &self.kernel,
            Part::Bias => &self.bias,
            Part::RunningMean => &self.running_mean,
            Part::RunningVar => &self.running_var,
        }
    }

    /// One part of the layer, to fill.
    pub(super) fn part_mut(&mut self, part: Part) -> &mut PartTensors {
        match part {
            Part::Weight => &mut self.weight,
            Part::Kernel => &mut self.kernel,
            Part::Bias => &mut self.bias,
            Part::RunningMean => &mut self.running_mean,
            Part::RunningVar => &mut self.running_var,
        }
    }
}

/// A file's layers, keyed by their names as written.
pub(super) type Layers = BTreeMap<String, LayerTensors>;

/// What [`read_tensors`] found in a file.
pub(super) struct FileTensors {
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) layers: Layers,
    pub(super) schemes: std::collections::BTreeSet<Scheme>,
    /// How σ is given and by which tensor.
    pub(super) sigma_given: Option<(Role, String)>,
    /// Tensors that are not parameters of the posterior, skipped by rule.
    pub(super) skipped: Vec<String>,
}

/// Reads and classifies every tensor of a safetensors file (in name order: the first
/// error must not depend on safetensors' unordered list), with the metadata.
pub(super) fn read_tensors(set: TensorSet<'_>) -> Result<FileTensors> {
    let here = Path::new("");
    let TensorSet {
        metadata,
        tensors: mut set,
        ..
    } = set;
    if let Some(f) = metadata.get("format")
        && f != FORMAT
    {
        return Err(bad(
            here,
            format!("metadata `format` = `{f}`, expected `{FORMAT}`"),
        ));
    }
    let mut layers: Layers = BTreeMap::new();
    let mut schemes = std::collections::BTreeSet::new();
    // How σ is given: ρ (with the file's transform), σ itself, or ln σ; and by which tensor.
    let mut sigma_given: Option<(Role, String)> = None;
    // In name order: safetensors hands the tensors out in no fixed order, and the first
    // error found must not depend on it.
    set.sort_by(|a, b| a.0.cmp(&b.0));
    // blitz's samplers: the last noise draw (a buffer) and copies of the parameters.
    let mut skipped: Vec<String> = Vec::new();
    let mut copies: Vec<(String, String, Vec<f64>)> = Vec::new();
    for (name, shape, raw) in set {
        let skip = names::skipped(&name);
        // A counter is skipped before its (integer) values are read.
        if skip == Some(names::Skipped::Counter) {
            skipped.push(name);
            continue;
        }
        let values = raw.decode(&name)?;
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(
                here,
                format!(
                    "tensor `{name}` has a non-finite value {} at index {k}",
                    values[k]
                ),
            ));
        }
        match skip {
            Some(names::Skipped::Noise | names::Skipped::Counter) => {
                skipped.push(name);
                continue;
            }
            Some(names::Skipped::CopyOf(of)) => {
                copies.push((name.clone(), of, values));
                skipped.push(name);
                continue;
            }
            None => {}
        }
        let mut values = values;
        let Some(meaning) = names::classify(&name) else {
            if let Some(why) = names::unreadable(&name) {
                return Err(bad(here, why));
            }
            return Err(bad(
                here,
                format!(
                    "tensor `{name}` fits no naming scheme (expected e.g. `layers.0.weight_mu`, `fc1.mu_weight`, `AutoNormal.locs.fc1.weight`, `fc1.weight.loc`, `fc1.weight_auto_loc` or `mean.Dense_0.kernel`; docs/posteriors.md)"
                ),
            ));
        };
        let mut shape = shape;
        if meaning.transposed {
            if shape.len() != 2 {
                return Err(bad(
                    here,
                    format!("tensor `{name}` has shape {shape:?}, expected 2 dimensions"),
                ));
            }
            let (rows, cols) = (shape[0], shape[1]);
            values = (0..cols)
                .flat_map(|j| (0..rows).map(move |i| i * cols + j))
                .map(|k| values[k])
                .collect();
            shape = vec![cols, rows];
        }
        match meaning.role {
            Role::Rho | Role::Scale | Role::LogStd => match &sigma_given {
                Some((role, first)) if *role != meaning.role => {
                    return Err(bad(
                        here,
                        format!(
                            "tensor `{name}` gives σ as {} but `{first}` gives it as {}; a file uses one",
                            sigma_words(meaning.role),
                            sigma_words(*role)
                        ),
                    ));
                }
                Some(_) => {}
                None => sigma_given = Some((meaning.role, name.to_string())),
            },
            Role::Mean | Role::Fixed => {}
        }
        if meaning.role == Role::Scale {
            if let Some(k) = values.iter().position(|&v| v <= 0.0) {
                let pyro = if meaning.scheme == Scheme::PyroAutoNormal {
                    " (these look like Pyro's unconstrained scales, from `pyro.get_param_store().get_state()`: save the constrained ones, `{n: pyro.param(n) for n in pyro.get_param_store()}`, or the guide's `state_dict()`, which mi-est reads as unconstrained)"
                } else {
                    ""
                };
                return Err(bad(
                    here,
                    format!(
                        "tensor `{name}` holds σ, which must be > 0, but has {} at index {k}{pyro}",
                        values[k]
                    ),
                ));
            }
            values.iter_mut().for_each(|v| *v = v.ln());
        }
        schemes.insert(meaning.scheme);
        let part = layers
            .entry(meaning.layer.clone())
            .or_default()
            .part_mut(meaning.part);
        let slot = match meaning.role {
            Role::Mean => &mut part.mu,
            Role::Rho | Role::Scale | Role::LogStd => &mut part.rho,
            Role::Fixed => &mut part.fixed,
        };
        if slot.is_some() {
            return Err(bad(
                here,
                format!("tensor `{name}` given twice (under two naming conventions)"),
            ));
        }
        *slot = Some((shape, values));
    }
    if layers.is_empty() {
        return Err(bad(here, "the file holds no tensors"));
    }
    // A copy is skipped only where it equals what it copies: never a silent choice.
    for (name, of, values) in copies {
        let held = names::classify(&of).and_then(|m| {
            let part = layers.get(&m.layer)?.part(m.part);
            match m.role {
                Role::Mean => part.mu.as_ref(),
                Role::Rho => part.rho.as_ref(),
                _ => None,
            }
        });
        match held {
            Some((_, v)) if *v == values => {}
            Some(_) => {
                return Err(bad(
                    here,
                    format!(
                        "tensor `{name}` (blitz's sampler copy) differs from `{of}`; which one holds the posterior is not stated"
                    ),
                ));
            }
            None => {
                return Err(bad(
                    here,
                    format!("tensor `{name}` (blitz's sampler copy) has no `{of}` beside it"),
                ));
            }
        }
    }
    Ok(FileTensors {
        metadata,
        layers,
        schemes,
        sigma_given,
        skipped,
    })
}

pub(super) fn sigma_words(role: Role) -> &'static str {
    match role {
        Role::Rho => "ρ",
        Role::Scale => "σ itself",
        Role::LogStd => "ln σ",
        Role::Mean | Role::Fixed => "no σ",
    }
}
