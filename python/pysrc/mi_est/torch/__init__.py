"""From a PyTorch model to mi-est: its permutation spec, its posterior, and the
symmetrized objective's term as a loss.

    >>> import mi_est.torch as mt
    >>> q = mt.from_module(net, example_input=x[:8])       # bayesian-torch, blitz, or Pyro (guide=)
    >>> mi_est.estimate(q, "infonce", k=64, samples=200)
    >>> loss = -(elbo + mt.mi_term(net, k=20, example_input=x[:8])) / n_train

How the spec is derived (the repository's docs/posteriors.md says more):

1. **Trace.** The model runs once, in float64 on a copy with its weights at their means,
   on ``example_input``. Every torch function called outside the layers mi-est knows is
   recorded (a ``torch.overrides.TorchFunctionMode``); the known layers (Linear and Conv,
   bayesian-torch's Reparameterization and Flipout layers, blitz's Bayesian layers, Pyro's
   ``PyroModule`` layers, BatchNorm, LayerNorm, GroupNorm) are recorded whole. Tracing by
   running, rather than symbolically, follows Python control flow, bayesian-torch's
   ``(output, kl)`` pairs and Pyro's sample statements; the graph is the one this input
   takes.
2. **Label axes.** Each Linear or Conv output gets a permutation of its units. Labels flow
   through elementwise functions, reshapes, transposes, pooling, reductions, matmuls and
   attention; a residual ``+`` ties the permutations of its operands; a reshape that splits
   a permuted axis into heads makes that permutation act on blocks of the head size; a
   ``flatten`` after a conv makes the next layer's input axis move in blocks of H·W.
   Norm layers' parameters and running statistics move with their channel (fixed tensors:
   where their entries differ between units, those units are pinned).
3. **Drop what is not a symmetry.** A permutation that reaches the model's output, or an
   operand that varies along the axis and does not move with it (the raw input, a mask, a
   constant), is dropped: it is not a symmetry. What the spec format cannot state (a
   concatenation or padding along a permuted axis, a channels-last flatten, an operation
   this module does not know applied to a permuted tensor on the way to the output) is an
   error naming the operation and the module it ran in.
4. **Check, never trust.** The model's outputs with the permuted weights (every
   permutation at once, then each alone) are compared with the originals on random
   inputs in float64; a mismatch is an error naming the permutation and the first layer
   whose output does not move as the spec says.
"""

from __future__ import annotations

import json
import weakref
from typing import Dict, Optional

import numpy as np
import torch

from .. import Posterior, _count, _error, _mi_est
from ._derive import _check, _derive, _Derived, _gather, _pieces
from ._layers import _np, _np_dtype

__all__ = ["from_module", "spec", "mi_term", "MiTerm"]

def _tensor_arrays(derived: _Derived) -> Dict[str, np.ndarray]:
    """The posterior's tensors, piece by piece: fixed ones as they are, bayesian-torch and
    blitz means with rho as stored (read as the command reads their files), Pyro's means
    with their scales."""
    out = {}
    with torch.no_grad():
        for p in derived.pieces:
            t = p.tensor
            if t.fixed is not None:
                out[p.name] = _np(_gather(derived.fixed(t), p.index), t.name)
            elif t.rho is not None:
                out[f"{p.name}_mu"] = _np(_gather(derived.mu(t), p.index), t.name)
                rho = getattr(derived.model.get_submodule(t.module), t.rho)
                out[f"{p.name}_rho"] = _np(_gather(rho, p.index), t.name)
            else:
                out[f"{p.name}_mu"] = _np(_gather(derived.mu(t), p.index), t.name)
                out[f"{p.name}_sigma"] = _np(_gather(derived.sigma(t), p.index), t.name)
    return out


def spec(model, guide=None, example_input=None, check: bool = True) -> dict:
    """The permutation spec of ``model`` (``{"permutations": ..., "axes": ...}``), derived
    from a run of the model and, with ``check``, verified numerically (module docs). Save
    it with ``json.dump`` and pass it to the command as ``--spec`` with a file of the
    model's ``state_dict``; the tensor names are those the command reads from that
    library's ``state_dict`` (``conv1.kernel``, ``fc1.weight``, ``bn1.running_mean``)."""
    derived = _derive(model, guide, example_input)
    if check:
        _check(derived)
    split = [t.name for t in derived.tensors if len(_pieces(t.splits)) > 1]
    if split:
        raise _error(
            f"the spec of this model splits tensors (`{split[0]}`{' and ' + str(len(split) - 1) + ' more' if len(split) > 1 else ''}: "
            "permutations share an axis after a concatenation or padding), so it names pieces no "
            "state_dict file has; save the posterior with from_module(model, ...).save(path) and "
            "give the command that file",
            split[0],
            None,
        )
    return derived.spec


def from_module(model, guide=None, example_input=None, check: bool = True, prior_scale: Optional[float] = None) -> Posterior:
    """The mean-field posterior of ``model`` under its derived, checked permutation spec
    (module docs): bayesian-torch and blitz layers read from the live module, a Pyro
    ``PyroModule`` with its ``AutoNormal`` passed as ``guide``. Deterministic layers and
    norm layers' parameters and running statistics are fixed tensors (point masses). The
    tensors come in the order the model calls its layers."""
    derived = _derive(model, guide, example_input)
    if check:
        _check(derived)
    return _posterior(derived, prior_scale)


def _posterior(derived: _Derived, prior_scale=None) -> Posterior:
    meta = {} if prior_scale is None else {"prior_scale": repr(float(prior_scale))}
    return Posterior(_mi_est._Posterior.from_tensors(_tensor_arrays(derived), meta, json.dumps(derived.spec), None))


class MiTerm:
    """The symmetrization term of a model as a differentiable torch scalar: the spec is
    derived (and checked) once, each call reads the model's current means and scales.

    ``estimator`` is one with a gradient (``infonce``, the paper's I^K, for any spec;
    ``sandwich``, its lower bound, for one hidden layer; ``exact-permanent`` for one
    permutation of width <= 24). Each call draws as our trainer draws step ``step`` of
    ``seed``; without ``step``, successive calls take steps 0, 1, 2, ...; without ``seed``,
    the seed is torch's (``torch.initial_seed()``, what ``torch.manual_seed`` set), read
    without drawing from torch's generator, so that the term leaves the draws of the
    user's own layers as they were."""

    def __init__(self, model, guide=None, estimator: str = "infonce", k: Optional[int] = 20, samples: int = 1, example_input=None, check: bool = True):
        names = tuple(_mi_est.GRADIENT_ESTIMATORS)
        name = str(estimator).strip().lower()
        name = "infonce" if name == "ik" else name
        if name not in names:
            raise _error(f"invalid `estimator` = {estimator!r}: those with a gradient are {', '.join(names)}", "estimator", estimator)
        self.estimator = name
        self.k = None if name == "exact-permanent" else _count("k", k, 1)
        self.samples = _count("samples", samples, 1)
        self.derived = _derive(model, guide, example_input)
        if check:
            _check(self.derived)
        self.posterior = _posterior(self.derived)
        self._fixed = {t.name: self.derived.fixed(t).detach().clone() for t in self.derived.tensors if t.fixed is not None}
        by_name = {p.name: p for p in self.derived.pieces}
        self._order = [by_name[n] for n, _ in self.posterior.layout]
        self._step = 0

    def _refresh(self):
        """Rebuilds the posterior when a fixed tensor (a running statistic) changed: which
        units it pins depends on its values."""
        changed = False
        for t in self.derived.tensors:
            if t.fixed is not None:
                now = self.derived.fixed(t).detach()
                if not torch.equal(now.to(self._fixed[t.name].device, self._fixed[t.name].dtype), self._fixed[t.name]):
                    self._fixed[t.name] = now.clone()
                    changed = True
        if changed:
            self.posterior = _posterior(self.derived)

    def __call__(self, seed: Optional[int] = None, step: Optional[int] = None) -> "torch.Tensor":
        seed = torch.initial_seed() if seed is None else _count("seed", seed)
        if step is None:
            step = self._step
            self._step += 1
        else:
            step = _count("step", step)
        self._refresh()
        mus = [_gather(self.derived.mu(p.tensor), p.index) for p in self._order]
        sigmas = [_gather(self.derived.sigma(p.tensor), p.index) for p in self._order]
        for p, m in zip(self._order, mus):
            _np_dtype(m, p.tensor.name)
        device, dtype = mus[0].device, mus[0].dtype
        mu = torch.cat([m.reshape(-1).to("cpu", torch.float64) for m in mus])
        sigma = torch.cat([s.reshape(-1).to("cpu", torch.float64) for s in sigmas])
        value = _MiTermFunction.apply(self, seed, step, mu, sigma)
        return value.to(device, dtype)


class _MiTermFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, term: MiTerm, seed: int, step: int, mu, sigma):
        value, g_mu, g_sigma = _mi_est.mi_term(
            term.posterior._inner,
            mu.detach().numpy(),
            sigma.detach().numpy(),
            term.estimator,
            term.k,
            term.samples,
            seed,
            step,
        )
        ctx.save_for_backward(torch.from_numpy(g_mu), torch.from_numpy(g_sigma))
        return torch.tensor(value, dtype=torch.float64)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        g_mu, g_sigma = ctx.saved_tensors
        return None, None, None, grad * g_mu, grad * g_sigma


_TERMS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def mi_term(model, guide=None, estimator: str = "infonce", k: Optional[int] = 20, samples: int = 1, seed: Optional[int] = None, step: Optional[int] = None, example_input=None) -> "torch.Tensor":
    """``MiTerm(model, ...)(seed, step)``, with the derived term kept per model and
    setting (the first call derives and checks the spec; later ones only compute).
    ``loss = -(elbo + mi_term(model, k=20)) / n_train`` trains on the paper's symmetrized
    objective (I^K saturates at ln K where units are far apart: the sandwich's lower bound
    does not, for one hidden layer)."""
    key = (id(guide), str(estimator), k, samples)
    terms = _TERMS.setdefault(model, {})
    term = terms.get(key)
    if term is None:
        term = MiTerm(model, guide, estimator, k, samples, example_input)
        terms[key] = term
    return term(seed, step)

