//! The tensor naming schemes a posterior file may use (docs/posteriors.md): which
//! layer, which part (weight or bias) and which role (mean, ρ, σ, ln σ, fixed value) a
//! tensor name stands for.

/// A naming scheme of posterior tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scheme {
    /// `{layer}.weight_mu`, `.weight_rho`, `.bias_mu`, `.bias_rho` (ours, and blitz's;
    /// `.kernel_mu`, `.kernel_rho` for a convolution; `_sigma` for σ given directly).
    MuRho,
    /// bayesian-torch's `{layer}.mu_weight`, `.rho_weight`, `.mu_bias`, `.rho_bias`
    /// (`.mu_kernel`, `.rho_kernel` for its convolutions).
    BayesianTorch,
    /// Pyro's AutoNormal parameter store: `{guide}.locs.{layer}.weight`,
    /// `{guide}.scales.{layer}.weight` (σ given directly).
    PyroAutoNormal,
    /// Pyro's `AutoNormal.state_dict()`: `locs.{layer}.weight_unconstrained`,
    /// `scales.{layer}.weight_unconstrained` (the scales unconstrained by Pyro's
    /// `softplus_positive`: ρ with σ = softplus(ρ)).
    PyroStateDict,
    /// NumPyro's AutoNormal parameters: `{layer}.weight_auto_loc`,
    /// `{layer}.weight_auto_scale` (σ given directly).
    NumPyroAutoNormal,
    /// TyXe (and any `loc`/`scale` guide): `{layer}.weight.loc`, `{layer}.weight.scale`.
    LocScale,
    /// Fortuna: the trees `mean` and `log_std` (σ = exp), e.g. `mean.params.Dense_0.kernel`;
    /// a flax `kernel` is stored inputs × outputs and is transposed on reading.
    MeanLogStd,
    /// A fixed (deterministic) layer: `{layer}.weight`, `{layer}.bias`.
    Fixed,
}

impl Scheme {
    /// A short description for `mi-est inspect`.
    pub fn describe(self) -> &'static str {
        match self {
            Scheme::MuRho => "weight_mu/weight_rho (mi-est, blitz)",
            Scheme::BayesianTorch => "mu_weight/rho_weight (bayesian-torch)",
            Scheme::PyroAutoNormal => "AutoNormal.locs/scales (Pyro)",
            Scheme::PyroStateDict => {
                "AutoNormal.state_dict() locs/scales *_unconstrained (Pyro; sigma = softplus)"
            }
            Scheme::NumPyroAutoNormal => "_auto_loc/_auto_scale (NumPyro)",
            Scheme::LocScale => ".loc/.scale (TyXe, Pyro guides)",
            Scheme::MeanLogStd => "mean/log_std (Fortuna)",
            Scheme::Fixed => "weight/bias (fixed layer)",
        }
    }
}

/// Which parameter of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The weight matrix.
    Weight,
    /// The bias vector.
    Bias,
    /// A convolution kernel (`out × in × k_h × k_w`), read only with a permutation spec.
    Kernel,
    /// A normalization layer's running mean (BatchNorm): fixed, read only with a spec.
    RunningMean,
    /// A normalization layer's running variance (BatchNorm): fixed, read only with a spec.
    RunningVar,
}

impl Part {
    /// The part's name in a permutation spec's tensor names (`conv1.kernel`).
    pub fn name(self) -> &'static str {
        match self {
            Part::Weight => "weight",
            Part::Bias => "bias",
            Part::Kernel => "kernel",
            Part::RunningMean => "running_mean",
            Part::RunningVar => "running_var",
        }
    }
}

/// What the tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The means μ.
    Mean,
    /// ρ, with σ from the file's transform (softplus unless the metadata says `exp`).
    Rho,
    /// σ itself.
    Scale,
    /// ln σ.
    LogStd,
    /// The values of a fixed layer.
    Fixed,
}

/// A recognised tensor name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// The layer, as written (ordered naturally: `fc1 < fc2 < fc10`).
    pub layer: String,
    /// Weight or bias.
    pub part: Part,
    /// Mean, ρ, σ, ln σ or fixed.
    pub role: Role,
    /// Stored inputs × outputs (a flax `kernel`): transposed on reading.
    pub transposed: bool,
    /// The scheme it follows.
    pub scheme: Scheme,
}

fn part_of(leaf: &str) -> Option<(Part, bool)> {
    match leaf {
        "weight" => Some((Part::Weight, false)),
        "kernel" => Some((Part::Weight, true)),
        "bias" => Some((Part::Bias, false)),
        _ => None,
    }
}

/// The meaning of a tensor name, or `None` when it fits no scheme. `/` separates like `.`.
pub fn classify(name: &str) -> Option<Name> {
    let norm = name.replace('/', ".");
    let segs: Vec<&str> = norm.split('.').collect();
    let n = segs.len();
    let join = |s: &[&str]| s.join(".");
    let make = |layer: String, part: Part, role: Role, transposed: bool, scheme: Scheme| {
        (!layer.is_empty()).then_some(Name {
            layer,
            part,
            role,
            transposed,
            scheme,
        })
    };
    if n < 2 {
        return None;
    }
    // Pyro's parameter store: `{guide}.locs.{layer}.{weight|bias}`; the guide's own
    // state_dict: `locs.{layer}.{weight|bias}_unconstrained`.
    if let Some(k) = segs[..n - 1]
        .iter()
        .position(|s| *s == "locs" || *s == "scales")
    {
        let locs = segs[k] == "locs";
        let layer = join(&segs[k + 1..n - 1]);
        if let Some(leaf) = segs[n - 1].strip_suffix("_unconstrained") {
            let (part, transposed) = part_of(leaf)?;
            let role = if locs { Role::Mean } else { Role::Rho };
            return make(layer, part, role, transposed, Scheme::PyroStateDict);
        }
        let (part, transposed) = part_of(segs[n - 1])?;
        let role = if locs { Role::Mean } else { Role::Scale };
        return make(layer, part, role, transposed, Scheme::PyroAutoNormal);
    }
    // Fortuna: a `mean` or `log_std` tree holding the model's parameters.
    if let Some(k) = segs[..n - 1]
        .iter()
        .position(|s| *s == "mean" || *s == "log_std")
    {
        let (part, transposed) = part_of(segs[n - 1])?;
        let role = if segs[k] == "mean" {
            Role::Mean
        } else {
            Role::LogStd
        };
        let mut layer: Vec<&str> = segs[..n - 1].to_vec();
        layer.remove(k);
        return make(join(&layer), part, role, transposed, Scheme::MeanLogStd);
    }
    let leaf = segs[n - 1];
    // TyXe / loc-scale guides: `{layer}.{weight|bias}.{loc|scale}`.
    if (leaf == "loc" || leaf == "scale") && n >= 3 {
        let (part, transposed) = part_of(segs[n - 2])?;
        let role = if leaf == "loc" {
            Role::Mean
        } else {
            Role::Scale
        };
        return make(
            join(&segs[..n - 2]),
            part,
            role,
            transposed,
            Scheme::LocScale,
        );
    }
    let layer = join(&segs[..n - 1]);
    // NumPyro: `{layer}.{weight|bias}_auto_{loc|scale}`.
    for (suffix, role) in [("_auto_loc", Role::Mean), ("_auto_scale", Role::Scale)] {
        if let Some(p) = leaf.strip_suffix(suffix) {
            let (part, transposed) = part_of(p)?;
            return make(layer, part, role, transposed, Scheme::NumPyroAutoNormal);
        }
    }
    let (part, role, scheme) = match leaf {
        "weight_mu" => (Part::Weight, Role::Mean, Scheme::MuRho),
        "weight_rho" => (Part::Weight, Role::Rho, Scheme::MuRho),
        "bias_mu" => (Part::Bias, Role::Mean, Scheme::MuRho),
        "bias_rho" => (Part::Bias, Role::Rho, Scheme::MuRho),
        "weight_sigma" => (Part::Weight, Role::Scale, Scheme::MuRho),
        "bias_sigma" => (Part::Bias, Role::Scale, Scheme::MuRho),
        "kernel_sigma" => (Part::Kernel, Role::Scale, Scheme::MuRho),
        "kernel_mu" => (Part::Kernel, Role::Mean, Scheme::MuRho),
        "kernel_rho" => (Part::Kernel, Role::Rho, Scheme::MuRho),
        "mu_kernel" => (Part::Kernel, Role::Mean, Scheme::BayesianTorch),
        "rho_kernel" => (Part::Kernel, Role::Rho, Scheme::BayesianTorch),
        "mu_weight" => (Part::Weight, Role::Mean, Scheme::BayesianTorch),
        "rho_weight" => (Part::Weight, Role::Rho, Scheme::BayesianTorch),
        "mu_bias" => (Part::Bias, Role::Mean, Scheme::BayesianTorch),
        "rho_bias" => (Part::Bias, Role::Rho, Scheme::BayesianTorch),
        "weight" => (Part::Weight, Role::Fixed, Scheme::Fixed),
        "bias" => (Part::Bias, Role::Fixed, Scheme::Fixed),
        "running_mean" => (Part::RunningMean, Role::Fixed, Scheme::Fixed),
        "running_var" => (Part::RunningVar, Role::Fixed, Scheme::Fixed),
        _ => return None,
    };
    make(layer, part, role, false, scheme)
}

/// Why a tensor name that fits no scheme cannot be read, where that is known: a flat
/// vector over every latent site (Pyro's AutoDiagonalNormal and its kin).
pub fn unreadable(name: &str) -> Option<String> {
    let norm = name.replace('/', ".");
    let (guide, leaf) = match norm.rsplit_once('.') {
        Some((g, l)) => (Some(g), l),
        None => (None, norm.as_str()),
    };
    let flat = matches!(
        leaf,
        "loc" | "scale" | "scale_unconstrained" | "scale_tril" | "scale_tril_unconstrained"
    );
    (flat && guide.is_none_or(|g| g.starts_with("Auto"))).then(|| {
        format!(
            "tensor `{name}` is one flat vector over every latent site (Pyro's AutoDiagonalNormal or a kin guide): the file does not say which entries belong to which layer; from Python, `mi_est.Posterior.from_pyro_guide(guide)` unpacks it with the guide's own site shapes, or train with AutoNormal, whose parameters are named per site"
        )
    })
}

/// A tensor that is not a parameter of the posterior, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// blitz's `{layer}.{weight|bias}_sampler.eps_w`: the last noise draw (a buffer).
    Noise,
    /// blitz's `{layer}.{weight|bias}_sampler.{mu|rho}`: a copy of the named tensor
    /// (`{layer}.weight_mu`), skipped only where it equals it.
    CopyOf(String),
    /// A normalization layer's `num_batches_tracked`: a step counter, not a parameter.
    Counter,
}

/// Whether a tensor name is one that a library keeps beside the posterior's parameters
/// and that is skipped by rule.
pub fn skipped(name: &str) -> Option<Skipped> {
    let norm = name.replace('/', ".");
    let (head, leaf) = norm.rsplit_once('.')?;
    if leaf == "num_batches_tracked" {
        return Some(Skipped::Counter);
    }
    let (layer, part) = match head.rsplit_once('.') {
        Some((layer, part)) => (Some(layer), part),
        None => (None, head),
    };
    let part = part.strip_suffix("_sampler")?;
    if part != "weight" && part != "bias" {
        return None;
    }
    let prefix = layer.map_or(String::new(), |l| format!("{l}."));
    match leaf {
        "eps_w" => Some(Skipped::Noise),
        "mu" | "rho" => Some(Skipped::CopyOf(format!("{prefix}{part}_{leaf}"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> (String, Part, Role, bool, Scheme) {
        let n = classify(name).unwrap_or_else(|| panic!("{name} not recognised"));
        (n.layer, n.part, n.role, n.transposed, n.scheme)
    }

    #[test]
    fn blitz_sampler_tensors_are_skipped_by_rule() {
        assert_eq!(skipped("fc1.weight_sampler.eps_w"), Some(Skipped::Noise));
        assert_eq!(
            skipped("net.fc1.bias_sampler.rho"),
            Some(Skipped::CopyOf("net.fc1.bias_rho".into()))
        );
        assert_eq!(skipped("fc1.weight_mu"), None);
        assert_eq!(skipped("fc1.kernel_sampler.mu"), None);
    }

    #[test]
    fn every_scheme_is_recognised() {
        use Part::*;
        use Role::{LogStd, Mean, Rho, Scale};
        use Scheme::{
            BayesianTorch, LocScale, MeanLogStd, MuRho, NumPyroAutoNormal, PyroAutoNormal,
        };
        let s = |x: &str| x.to_string();
        for (name, want) in [
            (
                "layers.0.weight_mu",
                (s("layers.0"), Weight, Mean, false, MuRho),
            ),
            ("fc2.bias_rho", (s("fc2"), Bias, Rho, false, MuRho)),
            (
                "net.fc1.rho_weight",
                (s("net.fc1"), Weight, Rho, false, BayesianTorch),
            ),
            (
                "AutoNormal.locs.fc1.weight",
                (s("fc1"), Weight, Mean, false, PyroAutoNormal),
            ),
            (
                "AutoNormal.scales.net.0.bias",
                (s("net.0"), Bias, Scale, false, PyroAutoNormal),
            ),
            (
                "fc1.weight_auto_loc",
                (s("fc1"), Weight, Mean, false, NumPyroAutoNormal),
            ),
            (
                "fc1.bias_auto_scale",
                (s("fc1"), Bias, Scale, false, NumPyroAutoNormal),
            ),
            (
                "net.0.weight.loc",
                (s("net.0"), Weight, Mean, false, LocScale),
            ),
            (
                "net.0.bias.scale",
                (s("net.0"), Bias, Scale, false, LocScale),
            ),
            (
                "mean.params.Dense_0.kernel",
                (s("params.Dense_0"), Weight, Mean, true, MeanLogStd),
            ),
            (
                "log_std/params/Dense_1/bias",
                (s("params.Dense_1"), Bias, LogStd, false, MeanLogStd),
            ),
            (
                "layers.2.weight",
                (s("layers.2"), Weight, Role::Fixed, false, Scheme::Fixed),
            ),
        ] {
            assert_eq!(c(name), want, "{name}");
        }
        for name in [
            "weight_mu",
            "fc1.gamma",
            "AutoNormal.locs.fc1.gamma",
            "fc1.weight_auto_x",
            ".weight_mu",
            "x.loc",
        ] {
            assert!(classify(name).is_none(), "{name}");
        }
    }
}
