"""The layers mi-est reads whole: where their means and scales are, and how they act on
the axes of their input."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import torch

from .. import _dtype_refused, _error

class _Tensor:
    """One tensor of the posterior: its spec name, shape, where its values come from, and
    (after labelling) the permutation acting on each axis."""

    __slots__ = ("name", "shape", "module", "mu", "rho", "site", "fixed", "axes", "splits")

    def __init__(self, name, shape, module, mu=None, rho=None, site=None, fixed=None):
        self.name = name
        self.shape = tuple(shape)
        self.module = module  # the module path
        self.mu = mu  # attribute of the means (bayesian-torch, blitz)
        self.rho = rho  # attribute of rho, with sigma = log1p(exp(rho))
        self.site = site  # Pyro sample site (AutoNormal's locs/scales)
        self.fixed = fixed  # attribute of a deterministic parameter or buffer
        self.axes: List[Any] = [None] * len(self.shape)
        self.splits: List[Any] = []

    @property
    def variational(self) -> bool:
        return self.fixed is None


class _Leaf:
    """A layer recorded whole: its kind (how it acts on axes) and its tensors."""

    __slots__ = ("path", "module", "kind", "tensors")

    def __init__(self, path, module, kind, tensors):
        self.path, self.module, self.kind, self.tensors = path, module, kind, tensors


_CONV_DIMS = {"Conv1d": 1, "Conv2d": 2, "Conv3d": 3}


def _guide_sites(guide) -> Dict[str, Any]:
    if guide is None:
        return {}
    if not hasattr(guide, "locs") or not hasattr(guide, "scales"):
        raise _error(
            f"guide: {type(guide).__name__} is not a Pyro AutoNormal (a mean-field Gaussian with "
            "`locs` and `scales` per site); fit an AutoNormal, or pass its means and scales to "
            "mi_est.Posterior.from_arrays",
            "guide",
            type(guide).__name__,
        )
    names = [n for n, _ in guide.locs.named_parameters()]
    names = [n[: -len("_unconstrained")] if n.endswith("_unconstrained") else n for n in names]
    if not names:
        raise _error(
            "guide: the AutoNormal has no parameters yet; run it once on a batch (guide(x)) or train it first",
            "guide",
            type(guide).__name__,
        )
    return {n: None for n in names}


def _leaf(path: str, m: "torch.nn.Module", guide, sites: Dict[str, Any]) -> Optional[_Leaf]:
    """The layer at `path` as mi-est reads it, or None for a module that is not a layer
    (its functions are then traced)."""
    cls = type(m).__name__
    p = f"{path}." if path else ""

    def var(attr_mu, attr_rho, name):
        t = getattr(m, attr_mu, None)
        if t is None:
            return None
        return _Tensor(p + name, t.shape, path, mu=attr_mu, rho=attr_rho)

    def fixed(attr, name=None):
        t = m._parameters.get(attr)
        if t is None:
            t = m._buffers.get(attr)
        if t is None:
            return None
        return _Tensor(p + (name or attr), t.shape, path, fixed=attr)

    def pyro_or_fixed(attr):
        site = p + attr
        if site in sites:
            loc = _attr_path(guide.locs, site)
            return _Tensor(site, loc.shape, path, site=site)
        return fixed(attr)

    tensors: List[Optional[_Tensor]]
    if hasattr(m, "mu_weight") and hasattr(m, "rho_weight"):  # bayesian-torch Linear
        if "LSTM" in cls or "Transpose" in cls:
            raise _unsupported(path, m)
        kind = "linear"
        tensors = [var("mu_weight", "rho_weight", "weight"), var("mu_bias", "rho_bias", "bias")]
    elif hasattr(m, "mu_kernel") and hasattr(m, "rho_kernel"):  # bayesian-torch Conv
        if "Transpose" in cls:
            raise _unsupported(path, m)
        kind = "conv"
        tensors = [var("mu_kernel", "rho_kernel", "kernel"), var("mu_bias", "rho_bias", "bias")]
    elif hasattr(m, "weight_mu") and hasattr(m, "weight_rho"):  # blitz
        if cls not in ("BayesianLinear", "BayesianConv1d", "BayesianConv2d", "BayesianConv3d"):
            raise _unsupported(path, m)
        kind = "linear" if cls == "BayesianLinear" else "conv"
        has_bias = getattr(m, "bias", True) is not False
        tensors = [var("weight_mu", "weight_rho", "weight")]
        tensors.append(var("bias_mu", "bias_rho", "bias") if has_bias else None)
    elif isinstance(m, torch.nn.Linear):  # also PyroModule[nn.Linear]
        kind = "linear"
        tensors = [pyro_or_fixed("weight"), pyro_or_fixed("bias")]
    elif isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
        kind = "conv"
        tensors = [pyro_or_fixed("weight"), pyro_or_fixed("bias")]
    elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
        kind = "batchnorm"
        tensors = [fixed(a) for a in ("weight", "bias", "running_mean", "running_var")]
    elif isinstance(m, torch.nn.LayerNorm):
        kind = "layernorm"
        tensors = [fixed("weight"), fixed("bias")]
    elif isinstance(m, torch.nn.GroupNorm):
        kind = "groupnorm"
        tensors = [fixed("weight"), fixed("bias")]
    elif isinstance(m, (torch.nn.MultiheadAttention, torch.nn.RNNBase, torch.nn.Embedding)):
        raise _unsupported(path, m)
    else:
        return None
    if kind == "conv" and getattr(m, "groups", 1) != 1:
        raise _error(
            f"`{path}` ({cls}) is a grouped convolution (groups = {m.groups}); its channel "
            "permutations are not representable in a spec yet",
            path,
            cls,
        )
    return _Leaf(path, m, kind, [t for t in tensors if t is not None])


def _unsupported(path, m):
    return _error(
        f"`{path}` ({type(m).__name__}): mi-est does not read this layer; write its spec by hand "
        "(docs/specs.md) or build it from Linear layers (attention: separate q, k, v and output "
        "projections)",
        path,
        type(m).__name__,
    )


def _attr_path(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _leaves(model, guide) -> Dict[str, _Leaf]:
    sites = _guide_sites(guide)
    out = {}
    for path, m in model.named_modules():
        if any(path.startswith(q + ".") for q in out):  # inside a layer
            continue
        leaf = _leaf(path, m, guide, sites)
        if leaf is not None:
            out[path] = leaf
    return out




def _np(t: "torch.Tensor", name: str) -> np.ndarray:
    _np_dtype(t, name)
    return t.detach().to("cpu", torch.float64).numpy()


def _np_dtype(t: "torch.Tensor", name: str) -> None:
    """Refuses a tensor that is not float32 or float64 (half precision as the command
    refuses an F16 or BF16 safetensors tensor), naming it."""
    if t.dtype not in (torch.float32, torch.float64):
        raise _dtype_refused(name, str(t.dtype).replace("torch.", ""))
