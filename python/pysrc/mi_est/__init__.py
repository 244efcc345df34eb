"""mi_est: how much hidden-unit permutation symmetry costs a mean-field variational
posterior, from a Python session.

The symmetrized posterior q^G predicts like q, but its ELBO is larger by the mutual
information I(g; w) between a uniformly random weight-space permutation g and the weights.
This package estimates I(g; w) for a posterior given as arrays, a PyTorch ``state_dict``
or a file. The estimates are those of the ``mi-est`` command, with the same seeds and the
same numbers.

    >>> import mi_est
    >>> q = mi_est.Posterior.from_state_dict(net.state_dict())      # bayesian-torch, blitz, ...
    >>> est = mi_est.estimate(q, "sandwich", k=64, samples=1000, seed=0)
    >>> est.lower, est.upper, est.ln_group_order

The numeric work runs in Rust (the ``mi-est`` crate) with the GIL released.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _mi_est
from ._mi_est import ESTIMATORS as _ESTIMATORS
from ._mi_est import MiEstError, __version__

__all__ = ["Posterior", "Estimate", "estimate", "grid", "ESTIMATORS", "MiEstError", "__version__"]


def _error(message: str, field: Optional[str], value: Any) -> MiEstError:
    """A :class:`MiEstError` naming ``field`` and ``value`` (as the library's own do)."""
    e = MiEstError(message)
    e.field = field
    e.value = None if value is None else str(value)
    return e

#: Estimator names accepted by :func:`estimate` (the library's one list of them).
ESTIMATORS = tuple(_ESTIMATORS)

_PARTS = ("weight", "bias", "kernel")


def _dtype_refused(name: str, dtype: str) -> MiEstError:
    # As the command refuses an F16 or BF16 safetensors tensor: its values are rounded
    # already, and reading them as float32 would hide that. (Also what mi_est.torch says
    # of a layer's tensor of any dtype but float32 and float64.)
    return _error(
        f"tensor `{name}` has dtype {dtype}; only float32 and float64 are read (convert it with .float() if that is meant)",
        name,
        dtype,
    )


def _array(value: Any, name: str) -> np.ndarray:
    """A float32 or float64 NumPy array from an array, a torch tensor or a JAX array
    (integer buffers, such as a step counter, as float64); half precision is refused."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
        dtype = str(getattr(value, "dtype", "")).replace("torch.", "")
        if dtype in ("float16", "bfloat16", "half"):
            raise _dtype_refused(name, dtype)
        value = value.detach().cpu().numpy()
    try:
        a = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - any conversion failure names the tensor
        raise TypeError(f"`{name}`: not an array ({e})") from None
    if a.dtype == np.float16 or a.dtype.name == "bfloat16":
        raise _dtype_refused(name, a.dtype.name)
    if a.dtype not in (np.float32, np.float64):
        if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer):
            a = a.astype(np.float64)
        else:
            raise TypeError(f"`{name}`: expected a float array, got dtype {a.dtype}")
    return a


def _spec_json(spec: Any) -> Optional[str]:
    """A permutation spec as JSON text, from a dict, JSON text or a path to a JSON file."""
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        return json.dumps(spec)
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if text.lstrip().startswith("{"):
            return text
        with open(text, encoding="utf-8") as f:
            return f.read()
    raise TypeError(f"`spec`: expected a dict, JSON text or a path, got {type(spec).__name__}")


def _layers(layers: Optional[Sequence[str]]) -> Optional[List[str]]:
    """A forward order of layers by name, checked to be a list of strings."""
    if layers is None:
        return None
    if isinstance(layers, str) or not all(isinstance(n, str) for n in layers):
        raise _error("`layers`: expected a list of layer names, e.g. ['encoder', 'decoder']", "layers", repr(layers))
    return list(layers)


def _pyro_scale(scales: Any, name: str) -> Any:
    """An AutoNormal guide's scale of site ``name`` (``fc1.weight``): its ``scales``
    module holds the sites as nested attributes."""
    value = scales
    for part in name.split("."):
        value = getattr(value, part)
    return value


def _limit(name: str, value: Any) -> Optional[float]:
    """A limit in GiB or hours: a positive number, or None for the machine's default."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _error(f"invalid `{name}` = {value!r}: expected a number > 0 or None", name, repr(value))
    v = float(value)
    if not v > 0 or v != v or v == float("inf"):
        raise _error(f"invalid `{name}` = {value!r}: expected a number > 0 or None", name, repr(value))
    return v


def _count(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _error(f"invalid `{name}` = {value!r}: expected a whole number", name, repr(value))
    if value < minimum:
        raise _error(f"invalid `{name}` = {value}: must be >= {minimum}", name, value)
    return int(value)


class Posterior:
    """A mean-field Gaussian posterior q(w) = N(mu, diag sigma^2) over a network's weights:
    an MLP given by its widths, or any architecture under a permutation spec (CNNs,
    residual nets, attention; see the repository's docs/specs.md)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: "_mi_est._Posterior") -> None:
        self._inner = inner

    @classmethod
    def from_arrays(
        cls,
        mu: Mapping[str, Any],
        sigma: Optional[Mapping[str, Any]] = None,
        rho: Optional[Mapping[str, Any]] = None,
        spec: Any = None,
        widths: Optional[Sequence[int]] = None,
        sigma_transform: str = "softplus",
        prior_scale: Optional[float] = None,
        layers: Optional[Sequence[str]] = None,
    ) -> "Posterior":
        """A posterior from ``{name: array}`` of means and of sigma (or of rho, with
        sigma = softplus(rho), or exp(rho) with ``sigma_transform="exp"``).

        Names end in ``.weight``, ``.bias`` or ``.kernel`` (``fc1.weight``,
        ``layers.0.bias``, ``conv1.kernel``). The forward order of the layers is
        ``layers`` (names) when given, else the numeric indices in the names
        (``fc1 < fc2 < fc10``), else the order of ``mu``'s keys. Without ``spec`` the
        layers must chain as an MLP (checked against ``widths`` when given); with it,
        any shapes the spec fits.
        """
        if (sigma is None) == (rho is None):
            raise _error("give exactly one of `sigma` and `rho`", "sigma", None)
        if spec is not None and widths is not None:
            raise _error("give at most one of `spec` and `widths`", "spec", None)
        scale, marker = (sigma, "sigma") if sigma is not None else (rho, "rho")
        if set(mu) != set(scale):
            only = sorted(set(mu) ^ set(scale))
            raise _error(f"`mu` and `{marker}` name different tensors: {only}", marker, only)
        tensors: Dict[str, np.ndarray] = {}
        for name in mu:
            if not isinstance(name, str) or name.rsplit(".", 1)[-1] not in _PARTS:
                raise _error(
                    f"invalid tensor name `{name}`: expected `<layer>.weight`, `<layer>.bias` or `<layer>.kernel`",
                    "mu",
                    name,
                )
            tensors[f"{name}_mu"] = _array(mu[name], f"mu[{name!r}]")
            tensors[f"{name}_{marker}"] = _array(scale[name], f"{marker}[{name!r}]")
        meta: Dict[str, str] = {}
        if widths is not None:
            meta["widths"] = json.dumps([_count("widths", w, 1) for w in widths])
        if rho is not None:
            meta["sigma_transform"] = str(sigma_transform)
        if prior_scale is not None:
            meta["prior_scale"] = repr(float(prior_scale))
        return cls(
            _mi_est._Posterior.from_tensors(tensors, meta, _spec_json(spec), _layers(layers))
        )

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, Any],
        spec: Any = None,
        prior_scale: Optional[float] = None,
        layers: Optional[Sequence[str]] = None,
    ) -> "Posterior":
        """A posterior from a ``state_dict`` (or any ``{name: array}``) in the naming of
        bayesian-torch (``fc1.mu_weight``/``rho_weight``, ``conv1.mu_kernel``), blitz
        (``weight_mu``/``weight_rho``; its sampler buffers are skipped), Pyro's
        ``AutoNormal`` (``AutoNormal.locs.fc1.weight`` / ``.scales.``, or the guide's own
        ``state_dict()``), NumPyro (``_auto_loc``/``_auto_scale``), TyXe
        (``.loc``/``.scale``), Fortuna (``mean``/``log_std``) or mi-est
        (``layers.0.weight_mu``). The layers' forward order is ``layers`` when given,
        else the numeric indices in the names, else the state_dict's own (module) order."""
        tensors = {str(k): _array(v, str(k)) for k, v in state_dict.items()}
        meta = {} if prior_scale is None else {"prior_scale": repr(float(prior_scale))}
        return cls(
            _mi_est._Posterior.from_tensors(tensors, meta, _spec_json(spec), _layers(layers))
        )

    @classmethod
    def from_pyro_guide(
        cls,
        guide: Any,
        spec: Any = None,
        prior_scale: Optional[float] = None,
    ) -> "Posterior":
        """A posterior from a fitted Pyro ``AutoNormal`` or ``AutoDiagonalNormal`` guide
        over a model whose latent sites are named ``<layer>.weight`` / ``<layer>.bias``
        (``PyroModule`` with ``PyroSample`` weights). The means are the guide's
        ``median()``; the scales its constrained ``scale`` (AutoDiagonalNormal's flat
        vector unpacked with the guide's own site shapes) or ``scales`` (AutoNormal); the
        sites come in the order the model samples them, which is the forward order."""
        import torch  # noqa: F401  (a Pyro guide implies torch)

        with torch.no_grad():
            mu = {name: v.detach().double().cpu().numpy() for name, v in guide.median().items()}
            if hasattr(guide, "_unpack_latent") and hasattr(guide, "scale"):
                sigma = {}
                for site, value in guide._unpack_latent(guide.scale.unsqueeze(0)):
                    name = site["name"] if isinstance(site, dict) else site
                    sigma[name] = value.detach().double().cpu().numpy().reshape(mu[name].shape)
            elif hasattr(guide, "scales"):
                sigma = {
                    name: _pyro_scale(guide.scales, name).detach().double().cpu().numpy()
                    for name in mu
                }
            else:
                raise _error(
                    f"guide: {type(guide).__name__} is not AutoNormal or AutoDiagonalNormal "
                    "(a mean-field Gaussian over named sites)",
                    "guide",
                    type(guide).__name__,
                )
        return cls.from_arrays(mu, sigma=sigma, spec=spec, prior_scale=prior_scale)

    @classmethod
    def load(
        cls,
        path: Union[str, os.PathLike],
        spec: Any = None,
        layers: Optional[Sequence[str]] = None,
        max_memory_gib: Optional[float] = None,
    ) -> "Posterior":
        """A posterior file (safetensors or ``.npz``), as ``mi-est run`` reads it;
        ``layers`` states the forward order of its layers where the file does not. A file
        that would take more than ``max_memory_gib`` GiB to read (default: half the
        available memory, as the command's ``--max-memory-gib``) is refused before it is read."""
        return cls(
            _mi_est._Posterior.load(
                os.fspath(path), _spec_json(spec), _layers(layers), _limit("max_memory_gib", max_memory_gib)
            )
        )

    def save(self, path: Union[str, os.PathLike], overwrite: bool = False) -> None:
        """Writes a safetensors file that ``mi-est`` reads (temporary file, then rename)."""
        self._inner.save(os.fspath(path), overwrite)

    @property
    def n_params(self) -> int:
        """Number of variational parameters P."""
        return self._inner.n_params

    @property
    def ln_group_order(self) -> float:
        """ln|G| in nats."""
        return self._inner.ln_group_order

    @property
    def permutation_sizes(self) -> List[int]:
        """Sizes of the permutations making up G (an MLP's hidden widths)."""
        return self._inner.permutation_sizes

    @property
    def widths(self) -> Optional[List[int]]:
        """The MLP's widths, or None under a permutation spec."""
        return self._inner.widths

    @property
    def spec(self) -> Optional[dict]:
        """The permutation spec, or None for an MLP given by widths."""
        s = self._inner.spec
        return None if s is None else json.loads(s)

    @property
    def layout(self) -> List[tuple]:
        """The variational tensors as (name, shape), in the order of :meth:`mu`."""
        return [(n, tuple(s)) for n, s in self._inner.layout]

    @property
    def architecture(self) -> str:
        return self._inner.architecture

    @property
    def schemes(self) -> List[str]:
        """The naming schemes the tensors followed."""
        return self._inner.schemes

    @property
    def prior_scale(self) -> float:
        return self._inner.prior_scale

    def mu(self) -> np.ndarray:
        """mu, flat, in the order of :attr:`layout`."""
        return self._inner.mu()

    def sigma(self) -> np.ndarray:
        """sigma, flat, in the order of :attr:`layout`."""
        return self._inner.sigma()

    def entropy(self) -> float:
        """H(q) in nats."""
        return self._inner.entropy()

    def kl_to_prior(self, prior_scale: Optional[float] = None) -> float:
        """KL(q || N(0, s^2 I)) in nats."""
        return self._inner.kl_to_prior(prior_scale)

    def __repr__(self) -> str:
        return (
            f"Posterior({self.architecture}, {self.n_params} parameters, "
            f"ln|G| = {self.ln_group_order:.4f})"
        )


@dataclass(frozen=True)
class Estimate:
    """One estimate of I(g; w), in nats.

    ``value`` is the estimate (the lower bound for the sandwich and the annealed bounds),
    ``std_err`` its Monte Carlo standard error, ``lower``/``upper`` the interval's bounds
    from the same draws, as computed (a Monte Carlo bound can fall outside [0, ln|G|],
    where I lies), ``lower_cut``/``upper_cut`` the same cut to [0, ln|G|] (what to quote;
    the library cuts, as ``mi-est run``'s tables do), ``width_std_err`` the paired standard
    error of ``upper - lower``,
    ``cap`` the largest value one term can take (ln K for InfoNCE, ln|G| otherwise),
    ``terms`` the per-draw terms (their mean is ``value``)."""

    estimator: str
    value: float
    std_err: Optional[float]
    lower: Optional[float]
    upper: Optional[float]
    lower_cut: Optional[float]
    upper_cut: Optional[float]
    upper_std_err: Optional[float]
    width_std_err: Optional[float]
    ln_group_order: float
    cap: float
    k: Optional[int]
    samples: int
    seed: int
    entropy_q: float
    bracket: Optional[float]
    wall_s: float
    terms: np.ndarray
    upper_terms: Optional[np.ndarray]


def estimate(
    posterior: Posterior,
    estimator: str = "sandwich",
    k: Optional[int] = 64,
    samples: int = 1000,
    seed: int = 0,
    max_memory_gib: Optional[float] = None,
    max_hours: Optional[float] = None,
) -> Estimate:
    """I(g; w) of ``posterior`` by ``estimator`` (one of :data:`ESTIMATORS`; ``k`` is K for
    ``infonce`` and ``sandwich``, and the number of temperatures T for ``annealed``). With the seed of a ``mi-est run`` row (its ``seed``
    column) this gives that row's numbers bit for bit. Work estimated to need more than
    ``max_memory_gib`` GiB or ``max_hours`` hours (defaults: half the available memory,
    72 hours, as the command's ``--max-memory-gib`` and ``--max-hours``) is refused
    before it starts."""
    if not isinstance(posterior, Posterior):
        raise TypeError(f"`posterior`: expected a mi_est.Posterior, got {type(posterior).__name__}")
    if not isinstance(estimator, str):
        raise _error(f"invalid `estimator` = {estimator!r}: expected a name", "estimator", repr(estimator))
    name = estimator.strip().lower()
    if name == "ik":
        name = "infonce"
    uses_k = name in ("infonce", "sandwich", "annealed")
    kk = _count("k", k, 1) if (uses_k and k is not None) else None
    d = _mi_est.estimate(
        posterior._inner,
        name,
        kk,
        _count("samples", samples, 1),
        _count("seed", seed),
        _limit("max_memory_gib", max_memory_gib),
        _limit("max_hours", max_hours),
    )
    return Estimate(**d)


def _frame(rows: List[dict], output: str):
    if output == "records":
        return rows
    if output in ("auto", "polars"):
        try:
            import polars as pl

            return pl.DataFrame(rows)
        except ImportError:
            if output == "polars":
                raise
    if output in ("auto", "pandas"):
        try:
            import pandas as pd

            return pd.DataFrame(rows)
        except ImportError:
            if output == "pandas":
                raise
    if output == "auto":
        return rows
    raise _error(f"invalid `output` = {output!r}: expected auto, polars, pandas or records", "output", repr(output))


def grid(
    posteriors: Union[str, os.PathLike, Posterior, Iterable[Any], Mapping[str, Posterior]],
    estimators: Sequence[str] = ("infonce", "exact"),
    k: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
    samples: int = 1000,
    repeats: int = 5,
    seed: int = 0,
    spec: Any = None,
    output: str = "auto",
    layers: Optional[Sequence[str]] = None,
    max_memory_gib: Optional[float] = None,
    max_hours: Optional[float] = None,
    temperatures: Sequence[int] = (1000,),
):
    """The grid of ``mi-est run`` (posterior x estimator x K x repeat) as its tidy table of
    raw rows (the columns of ``raw.parquet``): a polars DataFrame if polars is installed,
    else a pandas one, else a list of dicts (``output`` chooses). Posteriors are file paths
    (read as the command reads them; same ids, hashes, seeds and numbers as
    ``mi-est run --seed``) or :class:`Posterior` objects (ids ``posterior0``, ... or the
    keys of a dict); ``layers`` states the forward order of the files' layers, as
    ``--layers``; ``max_memory_gib`` and ``max_hours`` are the limits of the whole grid,
    checked before any estimate runs, as ``--max-memory-gib`` and ``--max-hours``;
    ``temperatures`` are the annealed bounds' numbers of temperatures T (their rows' ``k``),
    as ``--temperatures``."""
    if isinstance(posteriors, (str, os.PathLike, Posterior)):
        posteriors = [posteriors]
    if isinstance(posteriors, Mapping):
        items = list(posteriors.items())
    else:
        items = [(f"posterior{i}", p) for i, p in enumerate(posteriors)]
    paths = [os.fspath(p) for _, p in items if isinstance(p, (str, os.PathLike))]
    objects = [(i, p._inner) for i, p in items if isinstance(p, Posterior)]
    if len(paths) + len(objects) != len(items):
        bad = next(p for _, p in items if not isinstance(p, (str, os.PathLike, Posterior)))
        raise TypeError(f"`posteriors`: expected paths or mi_est.Posterior objects, got {type(bad).__name__}")
    if paths and objects:
        raise _error("`posteriors`: give either file paths or Posterior objects, not both", "posteriors", None)
    if isinstance(estimators, str):
        estimators = [estimators]
    if isinstance(k, (int, np.integer)):
        k = [k]
    if isinstance(temperatures, (int, np.integer)):
        temperatures = [temperatures]
    rows = _mi_est.grid(
        paths,
        objects,
        [str(e) for e in estimators],
        [_count("k", x, 1) for x in k],
        [_count("temperatures", x, 1) for x in temperatures],
        _count("samples", samples, 1),
        _count("repeats", repeats, 1),
        _count("seed", seed),
        _spec_json(spec),
        _layers(layers),
        _limit("max_memory_gib", max_memory_gib),
        _limit("max_hours", max_hours),
    )
    return _frame(rows, output)
