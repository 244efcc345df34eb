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

import copy
import weakref
from fractions import Fraction
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

try:
    import torch
    from torch.overrides import TorchFunctionMode
except ImportError as e:  # pragma: no cover - the module is for torch users
    raise ImportError("mi_est.torch needs PyTorch (pip install torch)") from e

from . import MiEstError, Posterior, _error, _mi_est

__all__ = ["from_module", "spec", "mi_term", "MiTerm"]

# --------------------------------------------------------------------------------------
# The layers mi-est reads: where their means and scales are, and how they act on axes.
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Tracing: run the model once, recording every torch function outside the layers.
# --------------------------------------------------------------------------------------


class _Value:
    """A tensor the trace saw: who made it (None for inputs, parameters and constants)."""

    __slots__ = ("tensor", "node", "param", "labels", "poison", "input")

    def __init__(self, tensor, node=None, param=None):
        self.tensor = tensor
        self.node = node
        self.param = param  # the parameter's name, for a parameter used outside a layer
        self.labels: List[Any] = [None] * tensor.dim()
        self.poison: Optional[str] = None
        self.input = False  # the model's input: it varies, whatever its example values


class _Node:
    __slots__ = ("op", "func", "args", "kwargs", "inputs", "outputs", "where", "leaf", "index")

    def __init__(self, op, func, args, kwargs, inputs, outputs, where, leaf, index):
        self.op, self.func, self.args, self.kwargs = op, func, args, kwargs
        self.inputs, self.outputs, self.where, self.leaf, self.index = inputs, outputs, where, leaf, index

    def describe(self) -> str:
        place = f" in `{self.where}`" if self.where else " in the model's forward"
        if self.leaf is not None:
            return f"layer `{self.leaf.path}` ({type(self.leaf.module).__name__})"
        return f"`{self.op}` (call {self.index}){place}"


def _op_name(func) -> str:
    name = getattr(func, "__name__", None) or str(func)
    if name == "__get__":
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    if name.startswith("__i") and name.endswith("__") and name[3:-2] in (
        "add", "sub", "mul", "truediv", "div", "and", "or", "pow"
    ):
        name = "__" + name[3:]
    elif name.endswith("_") and not name.startswith("_"):
        name = name[:-1]  # in place: relu_ -> relu
    return name


class _Recorder(TorchFunctionMode):
    def __init__(self, trace):
        super().__init__()
        self.trace = trace

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.trace.depth == 0:
            self.trace.record(_op_name(func), func, args, kwargs, out, None)
        return out


class _Trace:
    def __init__(self, model, leaves: Dict[str, _Leaf]):
        self.values: Dict[int, _Value] = {}
        self.keep: List[Any] = []
        self.nodes: List[_Node] = []
        self.depth = 0
        self.where: List[str] = [""]
        self.params = {}
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            self.params.setdefault(id(t), name)
        self.leaves = leaves
        self.handles = []
        by_module = {id(l.module): l for l in leaves.values()}
        for path, m in model.named_modules():
            leaf = by_module.get(id(m))
            if leaf is not None:
                self.handles.append(m.register_forward_pre_hook(self._enter(leaf), with_kwargs=True))
                self.handles.append(m.register_forward_hook(self._exit(leaf), with_kwargs=True))
            elif not any(path.startswith(q + ".") for q in leaves) and path:
                self.handles.append(m.register_forward_pre_hook(self._enter_scope(path)))
                self.handles.append(m.register_forward_hook(self._exit_scope()))

    def _enter_scope(self, path):
        def hook(module, args):
            self.where.append(path)

        return hook

    def _exit_scope(self):
        def hook(module, args, out):
            self.where.pop()

        return hook

    def _enter(self, leaf):
        def hook(module, args, kwargs):
            if self.depth == 0:
                self.pending = (args, kwargs)
            self.depth += 1

        return hook

    def _exit(self, leaf):
        def hook(module, args, kwargs, out):
            self.depth -= 1
            if self.depth == 0:
                self.record(type(module).__name__, None, args, kwargs, out, leaf)

        return hook

    def value(self, t) -> _Value:
        v = self.values.get(id(t))
        if v is None or v.tensor is not t:
            v = _Value(t, None, self.params.get(id(t)))
            self.values[id(t)] = v
            self.keep.append(t)
        return v

    def record(self, op, func, args, kwargs, out, leaf):
        inputs = []

        def to_value(a):
            if isinstance(a, torch.Tensor):
                v = self.value(a)
                inputs.append(v)
                return v
            if isinstance(a, (list, tuple)):
                return type(a)(to_value(x) for x in a) if not hasattr(a, "_fields") else a
            return a

        vargs = tuple(to_value(a) for a in args)
        vkwargs = {k: to_value(a) for k, a in kwargs.items()}
        outs = []
        node = _Node(op, func, vargs, vkwargs, inputs, outs, self.where[-1], leaf, len(self.nodes))

        def add_out(o):
            if isinstance(o, torch.Tensor):
                v = _Value(o, node)
                self.values[id(o)] = v
                self.keep.append(o)
                outs.append(v)
                return v
            if isinstance(o, (list, tuple)):
                return [add_out(x) for x in o]
            return None

        node.outputs = outs
        add_out(out)
        if outs:
            self.nodes.append(node)

    def close(self):
        for h in self.handles:
            h.remove()


def _flat_tensors(obj) -> List["torch.Tensor"]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _flat_tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _flat_tensors(o)]
    return []


# --------------------------------------------------------------------------------------
# Labels: which permutation acts on which axis.
# --------------------------------------------------------------------------------------


class _Perms:
    """Union-find over the permutations; a label is (class, elements per base unit).
    Coarsening a class (a head split) makes its units blocks of several base units. A
    *composite* class (a concatenation or padding along a permuted axis) lists its parts:
    runs of units that are units of other classes, or of none (fixed units)."""

    def __init__(self):
        self.parent: List[int] = []
        self.units: List[int] = []  # base units
        self.coarse: List[int] = []
        self.dead: List[Optional[str]] = []
        self.origin: List[str] = []
        self.parts: List[Optional[List[Tuple[int, Optional[int], int]]]] = []

    def new(self, units: int, origin: str) -> int:
        self.parent.append(len(self.parent))
        self.units.append(units)
        self.coarse.append(1)
        self.dead.append(None)
        self.origin.append(origin)
        self.parts.append(None)
        return len(self.parent) - 1

    def composite(self, parts: List[Tuple[int, Optional[int], int]], origin: str) -> int:
        """A class whose units are, in order, `n` units of class `c` from unit `offset` on
        (or `n` fixed units where `c` is None), for each `(n, c, offset)` of `parts`."""
        c = self.new(sum(n for n, _, _ in parts), origin)
        self.parts[c] = parts
        return c

    def find(self, c: int) -> int:
        while self.parent[c] != c:
            self.parent[c] = self.parent[self.parent[c]]
            c = self.parent[c]
        return c

    def block(self, label) -> Fraction:
        c, epu = label
        return epu * self.coarse[self.find(c)]

    def size(self, c: int) -> int:
        r = self.find(c)
        return self.units[r] // self.coarse[r]

    def unit_map(self, c: int) -> List[Tuple[Optional[int], int]]:
        """For each unit of class `c`: the plain class it is a unit of and its index
        there, or (None, 0) for a fixed unit."""
        r = self.find(c)
        if self.parts[r] is None:
            return [(r, i) for i in range(self.size(r))]
        out: List[Tuple[Optional[int], int]] = []
        for n, part, offset in self.parts[r]:
            if part is None:
                out.extend([(None, 0)] * n)
            else:
                out.extend(self.unit_map(part)[offset : offset + n])
        return out

    def union(self, a, b, node) -> Any:
        """Ties two labels on one axis (same length); the label of the tie."""
        ra, rb = self.find(a[0]), self.find(b[0])
        if ra == rb:
            if a[1] != b[1]:
                raise _error(f"{node.describe()}: one permutation meets itself in two layouts", node.op, None)
            return a
        if self.parts[ra] is not None or self.parts[rb] is not None:
            return self._union_composite(a, b, ra, rb, node)
        if self.block(a) != self.block(b) or self.size(ra) != self.size(rb) or a[1] * self.coarse[ra] != b[1] * self.coarse[rb]:
            raise _error(
                f"{node.describe()}: ties permutations that move blocks of different sizes "
                f"({self.block(a)} and {self.block(b)}); not representable in a spec",
                node.op,
                None,
            )
        if self.units[ra] != self.units[rb]:
            raise _error(f"{node.describe()}: ties permutations of different sizes", node.op, None)
        self.parent[rb] = ra
        if self.dead[rb] and not self.dead[ra]:
            self.dead[ra] = self.dead[rb]
        return a

    def _union_composite(self, a, b, ra, rb, node):
        if self.block(a) != 1 or self.block(b) != 1 or self.size(ra) != self.size(rb):
            raise _error(
                f"{node.describe()}: ties a concatenated or padded axis to one laid out otherwise; not representable",
                node.op,
                None,
            )
        if self.parts[ra] is not None and self.parts[rb] is not None:
            ma, mb = self.unit_map(ra), self.unit_map(rb)
            for (ca, ia), (cb, ib) in zip(ma, mb):  # unit by unit
                if ca is None and cb is None:
                    continue
                if ca is None or cb is None or ia != ib:
                    raise _error(f"{node.describe()}: ties two concatenations that split differently", node.op, None)
                if self.find(ca) != self.find(cb):
                    self.union((ca, Fraction(1)), (cb, Fraction(1)), node)
            self.parent[rb] = ra
            return (ra, Fraction(1))
        comp, plain = (ra, rb) if self.parts[ra] is not None else (rb, ra)
        self.parent[plain] = comp
        if self.dead[plain]:
            self.kill((comp, Fraction(1)), self.dead[plain])
        return (comp, Fraction(1))

    def kill(self, label, why: str):
        r = self.find(label[0])
        if self.parts[r] is not None:
            for c, _ in self.unit_map(r):
                if c is not None and self.dead[c] is None:
                    self.dead[c] = why
            return
        if self.dead[r] is None:
            self.dead[r] = why

    def coarsen(self, label, factor: int, node):
        r = self.find(label[0])
        if self.parts[r] is not None:
            raise _error(f"{node.describe()}: splits a concatenated axis into heads; not representable", node.op, None)
        if (self.units[r] // self.coarse[r]) % factor:
            raise _error(f"{node.describe()}: splits a permuted axis unevenly", node.op, None)
        self.coarse[r] *= factor

    def unit_label(self, label, node) -> int:
        """The class of a label that moves single elements (block 1): what a
        concatenation or padding can be made of."""
        if self.block(label) != 1:
            raise _error(
                f"{node.describe()}: concatenates or pads an axis permuted in blocks; not representable",
                node.op,
                None,
            )
        return self.find(label[0])


def _invariant_along(t: "torch.Tensor", axis: int) -> bool:
    """Whether every slice of `t` along `axis` is the same (a permutation leaves it be)."""
    if t.shape[axis] <= 1:
        return True
    first = t.narrow(axis, 0, 1)
    return bool(torch.equal(t, first.expand_as(t)))


class _Labeller:
    def __init__(self, trace: _Trace):
        self.trace = trace
        self.perms = _Perms()
        self.param_axes: Dict[str, List[Any]] = {}
        self.leaf_out: Dict[str, Tuple[Any, List[Any]]] = {}

    # ---- helpers
    def labels(self, v) -> List[Any]:
        return v.labels if isinstance(v, _Value) else []

    def fail(self, node, what: str):
        raise _error(f"{node.describe()}: {what}", node.op, None)

    def set_param_axis(self, v: _Value, axis: int, label, node):
        axes = self.param_axes.setdefault(v.param, [None] * v.tensor.dim())
        if axes[axis] is None:
            axes[axis] = label
        else:
            axes[axis] = self.perms.union(axes[axis], label, node)
        v.labels[axis] = axes[axis]

    def tie(self, node, operands: List[Tuple[_Value, int]], size: int):
        """One axis of several operands that must move together: their labels tied, a
        parameter among them moved with them, a varying constant killing them."""
        labels = [v.labels[a] for v, a in operands if v.labels[a] is not None]
        if not labels:
            return None
        label = labels[0]
        for other in labels[1:]:
            label = self.perms.union(label, other, node)
        for v, a in operands:
            if v.labels[a] is not None:
                continue
            if v.param is not None and v.node is None:
                self.set_param_axis(v, a, label, node)
            elif v.input or not _invariant_along(v.tensor, a):
                self.perms.kill(label, f"{node.describe()} combines it with a tensor that does not move with it")
        return label

    # ---- the ops
    def run(self, outputs: List[_Value]):
        live = self.live(outputs)
        for node in self.trace.nodes:
            if node.index not in live:
                continue
            poisoned = [v for v in node.inputs if v.poison]
            if poisoned and node.leaf is None and self.has_labels(node.inputs):
                pass
            if node.leaf is not None:
                self.leaf(node)
            else:
                self.op(node)
        for v in outputs:
            if v.poison:
                raise _error(v.poison, "model", None)
            for label in v.labels:
                if label is not None:
                    self.perms.kill(label, "it reaches the model's output")

    def has_labels(self, values) -> bool:
        return any(l is not None for v in values for l in v.labels)

    def live(self, outputs: List[_Value]) -> set:
        live, stack = set(), [v.node for v in outputs if v.node is not None]
        while stack:
            n = stack.pop()
            if n.index in live:
                continue
            live.add(n.index)
            stack.extend(v.node for v in n.inputs if v.node is not None)
        return live

    def leaf(self, node: _Node):
        leaf = node.leaf
        x = node.args[0] if node.args else next(iter(node.kwargs.values()))
        if not isinstance(x, _Value):
            self.fail(node, "its input is not a tensor")
        if x.poison:
            raise _error(x.poison, node.op, None)
        out = node.outputs[0]
        for o in node.outputs[1:]:
            if o.tensor.dim() > 0:
                self.fail(node, "returns more than one tensor with axes")
        by_role = {t.name.rsplit(".", 1)[-1]: t for t in leaf.tensors}
        kind = leaf.kind
        if kind in ("linear", "conv"):
            axis = x.tensor.dim() - 1 if kind == "linear" else 1
            if kind == "conv":
                for a in range(2, x.tensor.dim()):
                    if x.labels[a] is not None:
                        self.fail(node, "a permuted spatial axis")
            weight = by_role.get("weight") or by_role.get("kernel")
            units = weight.shape[0]
            new = (self.perms.new(units, leaf.path), Fraction(1))
            weight.axes[0] = new
            weight.axes[1] = x.labels[axis]
            if "bias" in by_role:
                by_role["bias"].axes[0] = new
            out.labels = list(x.labels)
            out.labels[axis] = new
            if kind == "linear":
                for a in range(x.tensor.dim() - 1):
                    pass
        elif kind in ("batchnorm", "groupnorm"):
            label = x.labels[1] if x.tensor.dim() > 1 else None
            if kind == "groupnorm" and label is not None and leaf.module.num_groups not in (1, leaf.module.num_channels):
                self.fail(
                    node,
                    f"{leaf.module.num_groups} groups of {leaf.module.num_channels // leaf.module.num_groups} "
                    "channels: a channel permutation is a symmetry only within groups (not representable)",
                )
            for t in leaf.tensors:
                t.axes[0] = label
            out.labels = list(x.labels)
        elif kind == "layernorm":
            k = len(leaf.module.normalized_shape)
            labels = x.labels[-k:]
            for t in leaf.tensors:
                t.axes = list(labels)
            out.labels = list(x.labels)
        self.leaf_out[leaf.path] = (node, out)

    def op(self, node: _Node):
        name = node.op
        handler = _HANDLERS.get(name)
        if handler is None:
            if self.has_labels(node.inputs) or any(v.poison for v in node.inputs):
                why = next((v.poison for v in node.inputs if v.poison), None)
                why = why or f"{node.describe()}: mi-est cannot follow `{name}` on a permuted tensor; write the spec by hand (docs/specs.md)"
                for o in node.outputs:
                    o.poison = why
            return
        poisoned = next((v.poison for v in node.inputs if v.poison), None)
        if poisoned:
            for o in node.outputs:
                o.poison = poisoned
            return
        handler(self, node)


# ---- op handlers ---------------------------------------------------------------------

_HANDLERS = {}


def _handles(*names):
    def deco(f):
        for n in names:
            _HANDLERS[n] = f
        return f

    return deco


def _first_value(node) -> _Value:
    for a in list(node.args) + list(node.kwargs.values()):
        if isinstance(a, _Value):
            return a
    raise _error(f"{node.describe()}: no tensor operand", node.op, None)


@_handles(
    "add", "__add__", "__radd__", "sub", "__sub__", "__rsub__", "rsub", "mul", "__mul__", "__rmul__",
    "div", "__truediv__", "__rtruediv__", "__div__", "true_divide", "neg", "__neg__", "abs", "exp",
    "expm1", "log", "log1p", "sqrt", "rsqrt", "square", "pow", "__pow__", "relu", "relu6", "gelu",
    "silu", "sigmoid", "tanh", "softplus", "elu", "selu", "celu", "leaky_relu", "hardtanh",
    "hardswish", "hardsigmoid", "mish", "erf", "clamp", "clip", "clamp_min", "clamp_max",
    "maximum", "minimum", "where", "masked_fill", "dropout", "dropout1d", "dropout2d",
    "dropout3d", "alpha_dropout", "feature_alpha_dropout", "contiguous", "clone", "detach",
    "to", "float", "double", "half", "type_as", "sign", "reciprocal", "addcmul", "addcdiv",
    "nan_to_num", "softmax", "log_softmax", "logsigmoid", "tanhshrink", "softsign", "threshold",
    "sin", "cos", "cpu", "cuda",
)
def _elementwise(lab: _Labeller, node: _Node):
    out = node.outputs[0]
    if node.op in ("to", "type_as", "float", "double", "half", "cpu", "cuda", "contiguous", "clone", "detach"):
        operands = [_first_value(node)]
    else:
        operands = [a for a in list(node.args) + list(node.kwargs.values()) if isinstance(a, _Value)]
    nd = out.tensor.dim()
    labels = []
    for i in range(nd):
        size = out.tensor.shape[i]
        at = []
        for v in operands:
            a = i - (nd - v.tensor.dim())
            if a >= 0 and v.tensor.shape[a] == size and size > 1:
                at.append((v, a))
        labels.append(lab.tie(node, at, size) if at else None)
    out.labels = labels


@_handles("sum", "mean", "amax", "amin", "logsumexp", "norm", "var", "std", "prod", "max", "min", "nansum", "nanmean")
def _reduce(lab: _Labeller, node: _Node):
    x = _first_value(node)
    dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    keep = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 and isinstance(node.args[2], bool) else False)
    if node.op in ("max", "min") and isinstance(dims, _Value):  # torch.max(a, b): elementwise
        return _elementwise(lab, node)
    nd = x.tensor.dim()
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        dims = list(range(nd))
    if isinstance(dims, int):
        dims = [dims]
    dims = {d % nd for d in dims if isinstance(d, int)}
    labels = []
    for i in range(nd):
        if i in dims:
            if keep:
                labels.append(None)
        else:
            labels.append(x.labels[i])
    node.outputs[0].labels = labels[: node.outputs[0].tensor.dim()]
    for o in node.outputs[1:]:  # indices of a max over a permuted axis move with it
        if any(x.labels[d] is not None for d in dims):
            o.poison = f"{node.describe()}: the indices of a max over a permuted axis"
        o.labels = list(labels[: o.tensor.dim()])


@_handles("view", "reshape", "flatten", "unflatten", "view_as", "reshape_as")
def _reshape(lab: _Labeller, node: _Node):
    x = _first_value(node)
    out = node.outputs[0]
    src, dst = list(x.tensor.shape), list(out.tensor.shape)
    labels = list(x.labels)
    # Walk both shapes, grouping axes whose products agree.
    i = j = 0
    result: List[Any] = []
    while i < len(src) or j < len(dst):
        gi, gj = [i], [j]
        pi = src[i] if i < len(src) else 1
        pj = dst[j] if j < len(dst) else 1
        i, j = i + 1, j + 1
        while pi != pj:
            if pi < pj:
                if i >= len(src):
                    lab.fail(node, "a reshape mi-est cannot follow")
                pi *= src[i]
                gi.append(i)
                i += 1
            else:
                if j >= len(dst):
                    lab.fail(node, "a reshape mi-est cannot follow")
                pj *= dst[j]
                gj.append(j)
                j += 1
        gi = [a for a in gi if a < len(src)]
        gj = [b for b in gj if b < len(dst)]
        result.extend(_regroup(lab, node, [src[a] for a in gi], [labels[a] for a in gi], [dst[b] for b in gj]))
    out.labels = result[: len(dst)]


def _regroup(lab, node, sizes, labels, new_sizes):
    """Labels of `new_sizes` axes holding the same elements as `sizes` axes."""
    nonunit = [(s, l) for s, l in zip(sizes, labels) if s != 1]
    if all(l is None for l in labels):
        return [None] * len(new_sizes)
    if len(nonunit) != 1 and sum(l is not None for _, l in nonunit) and nonunit[0][1] is None:
        lab.fail(node, "merges a permuted axis after another axis (a channels-last flatten); not representable")
    if sum(l is not None for _, l in nonunit) > 1:
        lab.fail(node, "merges two permuted axes; not representable")
    (size, label) = next((s, l) for s, l in nonunit if l is not None)
    inner = 1
    seen = False
    for s, l in nonunit:
        if seen:
            inner *= s
        if l is not None:
            seen = True
    c, epu = label
    label = (c, epu * inner)  # merged: each unit's block grows by the axes after it
    out = []
    nonunit_new = [k for k, s in enumerate(new_sizes) if s != 1]
    out = [None] * len(new_sizes)
    if not nonunit_new:
        return out
    first = nonunit_new[0]
    rest = 1
    for k in nonunit_new[1:]:
        rest *= new_sizes[k]
    block = lab.perms.block(label)
    if rest == 1:
        out[first] = label
    elif rest % block == 0:  # blocks of whole units per leading index: heads
        factor = rest // block
        if block.denominator != 1 or factor.denominator != 1:
            lab.fail(node, "splits a permuted axis unevenly")
        lab.perms.coarsen(label, int(factor), node)
        r = lab.perms.find(c)
        out[first] = (c, Fraction(1, lab.perms.coarse[r]))
    elif block % rest == 0:
        out[first] = (c, label[1] / rest)
    else:
        lab.fail(node, "splits a permuted axis across its units; not representable")
    return out


@_handles("permute", "transpose", "swapaxes", "swapdims", "t", "T", "mT", "movedim")
def _permute_axes(lab: _Labeller, node: _Node):
    x = _first_value(node)
    nd = x.tensor.dim()
    rest = [a for a in node.args[1:]]
    if node.op in ("t", "T") or (node.op == "mT"):
        order = list(range(nd))
        if nd >= 2:
            order[-1], order[-2] = order[-2], order[-1]
    elif node.op == "permute":
        dims = node.kwargs.get("dims", rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest)
        order = [d % nd for d in dims]
    elif node.op == "movedim":
        lab.fail(node, "movedim is not followed yet")
    else:
        d0 = node.kwargs.get("dim0", rest[0] if rest else None)
        d1 = node.kwargs.get("dim1", rest[1] if len(rest) > 1 else None)
        order = list(range(nd))
        order[d0 % nd], order[d1 % nd] = order[d1 % nd], order[d0 % nd]
    node.outputs[0].labels = [x.labels[a] for a in order]


@_handles("squeeze", "unsqueeze", "expand", "expand_as")
def _unit_axes(lab: _Labeller, node: _Node):
    x = _first_value(node)
    out = node.outputs[0]
    # Match the non-unit axes of input and output in order.
    src = [(s, l) for s, l in zip(x.tensor.shape, x.labels)]
    labels = []
    k = 0
    nonunit_src = [(s, l) for s, l in src if s != 1]
    for s in out.tensor.shape:
        if s != 1 and k < len(nonunit_src) and nonunit_src[k][0] == s and node.op != "expand" and node.op != "expand_as":
            labels.append(nonunit_src[k][1])
            k += 1
        else:
            labels.append(None)
    if node.op in ("expand", "expand_as"):
        nd, xd = out.tensor.dim(), x.tensor.dim()
        labels = [None] * (nd - xd) + [x.labels[a] if x.tensor.shape[a] == out.tensor.shape[nd - xd + a] else None for a in range(xd)]
    out.labels = labels


@_handles("matmul", "__matmul__", "__rmatmul__", "mm", "bmm")
def _matmul(lab: _Labeller, node: _Node):
    vals = [a for a in node.args if isinstance(a, (_Value, torch.Tensor))][:2]
    if node.op == "__rmatmul__":
        vals = vals[::-1]
    a, b = vals
    out = node.outputs[0]
    if a.tensor.dim() < 2 or b.tensor.dim() < 2:
        if lab.has_labels([a, b]):
            lab.fail(node, "a vector product with a permuted operand")
        out.labels = [None] * out.tensor.dim()
        return
    # the contraction axis
    lab.tie(node, [(a, a.tensor.dim() - 1), (b, b.tensor.dim() - 2)], a.tensor.shape[-1])
    row = a.labels[-2]
    col = b.labels[-1]
    if col is None and b.param is not None and b.node is None:
        col = (lab.perms.new(b.tensor.shape[-1], f"{node.describe()}"), Fraction(1))
        lab.set_param_axis(b, b.tensor.dim() - 1, col, node)
    nd = out.tensor.dim()
    batch = []
    for i in range(nd - 2):
        at = []
        for v in (a, b):
            k = i - (nd - v.tensor.dim())
            if k >= 0 and v.tensor.shape[k] == out.tensor.shape[i] and out.tensor.shape[i] > 1:
                at.append((v, k))
        batch.append(lab.tie(node, at, out.tensor.shape[i]) if at else None)
    out.labels = batch + [row, col]


@_handles("linear")
def _linear(lab: _Labeller, node: _Node):
    x, w = node.args[0], node.args[1] if len(node.args) > 1 else node.kwargs["weight"]
    b = node.args[2] if len(node.args) > 2 else node.kwargs.get("bias")
    if not (isinstance(w, _Value) and w.param is not None and w.node is None):
        if lab.has_labels([x]):
            lab.fail(node, "a linear map whose weight is not a parameter")
    lab.tie(node, [(x, x.tensor.dim() - 1), (w, 1)], w.tensor.shape[1])
    new = (lab.perms.new(w.tensor.shape[0], node.describe()), Fraction(1))
    lab.set_param_axis(w, 0, new, node)
    if isinstance(b, _Value) and b.param is not None:
        lab.set_param_axis(b, 0, new, node)
    out = node.outputs[0]
    out.labels = list(x.labels[:-1]) + [new]


@_handles("scaled_dot_product_attention")
def _sdpa(lab: _Labeller, node: _Node):
    q, k, v = node.args[:3]
    if len(node.args) > 3 and isinstance(node.args[3], _Value) or isinstance(node.kwargs.get("attn_mask"), _Value):
        mask = node.args[3] if len(node.args) > 3 else node.kwargs.get("attn_mask")
        if lab.has_labels([mask]):
            lab.fail(node, "a permuted attention mask")
    nd = q.tensor.dim()
    out = node.outputs[0]
    labels = []
    for i in range(nd - 2):
        labels.append(lab.tie(node, [(t, i) for t in (q, k, v) if t.tensor.shape[i] > 1], q.tensor.shape[i]))
    lab.tie(node, [(q, nd - 1), (k, nd - 1)], q.tensor.shape[-1])
    lab.tie(node, [(k, nd - 2), (v, nd - 2)], k.tensor.shape[-2])
    if q.labels[-2] is not None:
        lab.fail(node, "permuted query positions")
    out.labels = labels + [None, v.labels[-1]]


@_handles(
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "adaptive_max_pool3d", "lp_pool2d", "interpolate", "upsample",
    "max_pool2d_with_indices",
)
def _pool(lab: _Labeller, node: _Node):
    x = _first_value(node)
    for a in range(2, x.tensor.dim()):
        if x.labels[a] is not None:
            lab.fail(node, "pools over a permuted axis")
    for o in node.outputs:
        o.labels = [x.labels[0], x.labels[1]] + [None] * (o.tensor.dim() - 2)
    if len(node.outputs) > 1 and x.labels[1] is not None:
        node.outputs[1].poison = f"{node.describe()}: pooling indices"


@_handles("__getitem__")
def _getitem(lab: _Labeller, node: _Node):
    x = node.args[0]
    idx = node.args[1]
    out = node.outputs[0]
    if not isinstance(idx, tuple):
        idx = (idx,)
    if any(isinstance(i, (_Value, torch.Tensor, list)) for i in idx):
        for a, i in enumerate(idx):
            if isinstance(i, (_Value, torch.Tensor, list)) and x.labels[a] is not None:
                lab.fail(node, "indexes a permuted axis")
        if lab.has_labels([x]):
            lab.fail(node, "advanced indexing of a permuted tensor")
        out.labels = [None] * out.tensor.dim()
        return
    n_ell = sum(i is Ellipsis for i in idx)
    consumed = sum(1 for i in idx if i is not None and i is not Ellipsis)
    expanded = []
    for i in idx:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (x.tensor.dim() - consumed))
        else:
            expanded.append(i)
    if not n_ell:
        expanded.extend([slice(None)] * (x.tensor.dim() - consumed))
    labels, a = [], 0
    for i in expanded:
        if i is None:
            labels.append(None)
            continue
        label = x.labels[a]
        size = x.tensor.shape[a]
        if isinstance(i, int):
            if label is not None:
                lab.fail(node, "selects one index of a permuted axis")
        else:
            full = (i.start in (None, 0)) and (i.stop is None or i.stop >= size) and (i.step in (None, 1))
            if label is not None and not full:
                lab.fail(node, "slices a permuted axis")
            labels.append(label)
        a += 1
    out.labels = labels


@_handles("cat", "concat", "concatenate", "stack")
def _cat(lab: _Labeller, node: _Node):
    parts = node.args[0]
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    out = node.outputs[0]
    nd = out.tensor.dim()
    dim = dim % nd
    labels = []
    for i in range(nd):
        if i == dim:
            if node.op == "stack":
                labels.append(None)
            elif any(p.labels[i] is not None for p in parts):
                labels.append(_concatenated(lab, node, [(p, i) for p in parts]))
            else:
                labels.append(None)
            continue
        k = i if node.op != "stack" or i < dim else i - 1
        labels.append(lab.tie(node, [(p, k) for p in parts if p.tensor.shape[k] > 1], out.tensor.shape[i]))
    out.labels = labels


def _concatenated(lab: _Labeller, node: _Node, pieces) -> Any:
    """The label of an axis made of `pieces` (value, axis) laid end to end: a composite
    class whose parts are the pieces' permutations. A piece without one is a run of units
    that may permute among themselves where its entries are all equal along the axis (a
    constant, zero padding), else fixed units."""
    parts: List[Tuple[int, Optional[int], int]] = []
    for v, a in pieces:
        n = v.tensor.shape[a]
        label = v.labels[a]
        if label is not None:
            parts.append((n, lab.perms.unit_label(label, node), 0))
        elif n == 0:
            continue
        elif not v.input and v.param is None and _invariant_along(v.tensor, a):
            parts.append((n, lab.perms.new(n, node.describe()), 0))
        else:
            parts.append((n, None, 0))
    return (lab.perms.composite(parts, node.describe()), Fraction(1))


@_handles("chunk", "split", "unbind", "tensor_split")
def _split(lab: _Labeller, node: _Node):
    x = _first_value(node)
    if node.op == "unbind":
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    else:
        dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
    dim = dim % x.tensor.dim()
    if x.labels[dim] is not None:
        lab.fail(node, "splits along a permuted axis; not representable in a spec yet")
    for o in node.outputs:
        labels = list(x.labels)
        if node.op == "unbind":
            del labels[dim]
        o.labels = labels


@_handles("pad")
def _pad(lab: _Labeller, node: _Node):
    x = _first_value(node)
    pad = node.args[1] if len(node.args) > 1 else node.kwargs["pad"]
    mode = node.kwargs.get("mode", node.args[2] if len(node.args) > 2 else "constant")
    nd = x.tensor.dim()
    labels = list(x.labels)
    for k in range(len(pad) // 2):
        axis = nd - 1 - k
        before, after = pad[2 * k], pad[2 * k + 1]
        if not (before or after) or x.labels[axis] is None:
            continue
        if mode != "constant" or before < 0 or after < 0:
            lab.fail(node, f"{mode} padding of a permuted axis; not representable")
        # The padded entries are one constant: they may permute among themselves, one
        # class over both ends.
        c = lab.perms.unit_label(x.labels[axis], node)
        fill = lab.perms.new(before + after, node.describe())
        parts = [(before, fill, 0), (x.tensor.shape[axis], c, 0), (after, fill, before)]
        labels[axis] = (lab.perms.composite([p for p in parts if p[0]], node.describe()), Fraction(1))
    node.outputs[0].labels = labels


@_handles("layer_norm", "group_norm", "batch_norm", "instance_norm")
def _norm(lab: _Labeller, node: _Node):
    x = _first_value(node)
    if node.op == "layer_norm":
        shape = node.args[1] if len(node.args) > 1 else node.kwargs["normalized_shape"]
        k = len(shape)
        weights = [a for a in list(node.args[2:4]) + [node.kwargs.get("weight"), node.kwargs.get("bias")] if isinstance(a, _Value)]
        for w in weights:
            for j in range(k):
                if x.labels[x.tensor.dim() - k + j] is not None:
                    lab.tie(node, [(x, x.tensor.dim() - k + j), (w, j)], w.tensor.shape[j])
    elif lab.has_labels([x]):
        lab.fail(node, f"`{node.op}` on permuted channels outside a norm layer")
    node.outputs[0].labels = list(x.labels)


# --------------------------------------------------------------------------------------
# Applying a group element, and the check.
# --------------------------------------------------------------------------------------


def _move(t: "torch.Tensor", axes, perms: Dict[str, "torch.Tensor"]) -> "torch.Tensor":
    """`t` with each axis's permutation applied (unit c moves to tau(c), in blocks)."""
    for axis, entry in enumerate(axes):
        if entry is None:
            continue
        name, block = (entry, 1) if isinstance(entry, str) else (entry["perm"], entry["block"])
        tau = perms.get(name)
        if tau is None:
            continue
        n = tau.numel()
        src = torch.empty(n * block, dtype=torch.long)
        base = torch.arange(block)
        for c in range(n):
            j = int(tau[c])
            src[j * block : (j + 1) * block] = c * block + base
        t = t.index_select(axis, src.to(t.device))
    return t


def _names(perms: _Perms, tensors: List[_Tensor]) -> Dict[int, str]:
    """`h1`, `h2`, ... for the permutations that survived, in the order the tensors meet them."""
    names: Dict[int, str] = {}
    for t in tensors:
        for label in t.axes:
            if label is None:
                continue
            for c, _ in perms.unit_map(label[0]):
                r = None if c is None else perms.find(c)
                if r is not None and r not in names and perms.dead[r] is None and perms.size(r) > 1:
                    names[r] = f"h{len(names) + 1}"
    return names


def _split_axis(perms: _Perms, names: Dict[int, str], label, length: int, what: str):
    """An axis as groups of its indices, one per permutation acting on it (its units in
    order) and one of the indices no permutation moves: [(spec entry, indices or None for
    the whole axis in order)]."""
    if label is None:
        return [(None, None)]
    block = perms.block(label)
    if block.denominator != 1:
        raise _error(f"`{what}`: a permuted axis in a fractional block ({block})", what, str(block))
    b = int(block)
    units = perms.unit_map(label[0])
    if len(units) * b != length:
        raise _error(f"`{what}`: an axis of {length} entries labelled with {len(units)} units of {b}", what, length)
    groups: Dict[Any, List[Tuple[int, int]]] = {}
    for u, (c, k) in enumerate(units):
        r = None if c is None else perms.find(c)
        key = r if r in names else None
        for j in range(u * b, (u + 1) * b):
            groups.setdefault(key, []).append(((k, j - u * b) if key is not None else (j, 0), j))
    out = []
    for key, members in groups.items():
        members.sort()
        index = [j for _, j in members]
        if key is None:
            entry = None
        else:
            size = perms.size(key)
            if len(index) != size * b:
                raise _error(f"`{what}`: `{names[key]}` moves only some of its units on this axis", what, names[key])
            entry = names[key] if b == 1 else {"perm": names[key], "block": b}
        out.append((min(index), entry, index))
    out.sort(key=lambda g: g[0])
    if len(out) == 1 and out[0][2] == list(range(length)):
        return [(out[0][1], None)]
    return [(entry, torch.tensor(index, dtype=torch.long)) for _, entry, index in out]


def _pieces(splits):
    """Every combination of one group per axis: [(entries, indices)]."""
    combos = [([], [])]
    for groups in splits:
        combos = [(e + [entry], i + [index]) for e, i in combos for entry, index in groups]
    return combos


def _gather(t: "torch.Tensor", index) -> "torch.Tensor":
    for axis, idx in enumerate(index):
        if idx is not None:
            t = t.index_select(axis, idx.to(t.device))
    return t


def _move_split(t: "torch.Tensor", splits, taus: Dict[str, "torch.Tensor"]) -> "torch.Tensor":
    """`t` with the group element `taus` applied: each piece (one group per axis) moved
    by its spec entries and put back where it came from."""
    combos = _pieces(splits)
    if len(combos) == 1 and all(i is None for i in combos[0][1]):
        return _move(t, combos[0][0], taus)
    out = t.clone()
    for entries, index in combos:
        moved = _move(_gather(t, index), entries, taus)
        full = [torch.arange(n) if i is None else i for n, i in zip(t.shape, index)]
        out[torch.meshgrid(*full, indexing="ij")] = moved
    return out


class _Piece:
    """A tensor of the posterior as mi-est holds it: a whole tensor of the model, or, where
    permutations share an axis (a concatenation, padding), one group of indices per axis."""

    __slots__ = ("name", "tensor", "index", "entries")

    def __init__(self, name, tensor, index, entries):
        self.name, self.tensor, self.index, self.entries = name, tensor, index, entries


# --------------------------------------------------------------------------------------
# The derivation.
# --------------------------------------------------------------------------------------


class _Derived:
    """A model's spec with where each of its tensors' values live."""

    def __init__(self, model, guide, leaves, tensors):
        self.model, self.guide = model, guide
        self.leaves, self.tensors = leaves, tensors
        self.pieces: List[_Piece] = []
        self.spec: Dict[str, Any] = {}
        self.leaf_splits: Dict[str, Any] = {}
        self.args: Tuple[Any, ...] = ()

    # values, differentiable where they come from the model's parameters
    def mu(self, t: _Tensor) -> "torch.Tensor":
        if t.site is not None:
            return _attr_path(self.guide.locs, t.site)
        module = self.model.get_submodule(t.module)
        return getattr(module, t.mu)

    def sigma(self, t: _Tensor) -> "torch.Tensor":
        if t.site is not None:
            return _attr_path(self.guide.scales, t.site)
        module = self.model.get_submodule(t.module)
        return torch.log1p(torch.exp(getattr(module, t.rho)))

    def fixed(self, t: _Tensor) -> "torch.Tensor":
        module = self.model.get_submodule(t.module)
        return getattr(module, t.fixed)


def _example(model, leaves, example_input):
    if example_input is not None:
        return example_input if isinstance(example_input, tuple) else (example_input,)
    first = next(iter(leaves.values()), None)
    if first is not None and first.kind == "linear":
        width = first.tensors[0].shape[1]
        return (torch.randn(4, width, generator=torch.Generator().manual_seed(0)),)
    raise _error(
        "from_module: pass example_input= (a small batch the model takes): it is needed to "
        f"follow the shapes{' from `' + first.path + '`' if first else ''}",
        "example_input",
        None,
    )


def _random_like(args, gen):
    out = []
    for a in args:
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            out.append(torch.randn(a.shape, generator=gen, dtype=torch.float64))
        else:
            out.append(a)
    return tuple(out)


def _mean_copy(model, guide, tensors: List[_Tensor], values: Dict[str, "torch.Tensor"]):
    """A float64 copy of `model` in eval mode whose forward uses `values` (spec name ->
    tensor) as its means and fixed tensors, with zero scale; and its Pyro conditioning."""
    m = copy.deepcopy(model).double().eval()
    conditioned = {}
    with torch.no_grad():
        for t in tensors:
            v = values[t.name].to(torch.float64)
            if t.site is not None:
                conditioned[t.site] = v
                continue
            module = m.get_submodule(t.module)
            if t.fixed is not None:
                getattr(module, t.fixed).copy_(v)
            else:
                getattr(module, t.mu).copy_(v)
                getattr(module, t.rho).fill_(-1e4)  # sigma = log1p(exp(-1e4)) = 0 exactly
                if hasattr(module, "freeze") and hasattr(module, "weight_sampler"):
                    module.freeze = True  # blitz: its frozen forward uses the means
    if conditioned:
        import pyro.poutine

        return pyro.poutine.condition(m, data=conditioned), m
    return m, m


def _read_values(derived: "_Derived") -> Dict[str, "torch.Tensor"]:
    with torch.no_grad():
        return {
            t.name: (derived.fixed(t) if t.fixed is not None else derived.mu(t)).detach().to("cpu", torch.float64)
            for t in derived.tensors
        }


def _derive(model, guide=None, example_input=None) -> _Derived:
    if not isinstance(model, torch.nn.Module):
        raise _error(f"`model`: expected a torch.nn.Module, got {type(model).__name__}", "model", type(model).__name__)
    leaves = _leaves(model, guide)
    tensors = [t for leaf in leaves.values() for t in leaf.tensors]
    if not any(t.variational for t in tensors):
        raise _error(
            f"`model` ({type(model).__name__}) has no mean-field layers mi-est reads "
            "(bayesian-torch, blitz, or Pyro with guide=)",
            "model",
            type(model).__name__,
        )
    derived = _Derived(model, guide, leaves, tensors)
    for t in tensors:
        _np_dtype(derived.fixed(t) if t.fixed is not None else derived.mu(t), t.name)
        if t.rho is not None:
            _np_dtype(getattr(model.get_submodule(t.module), t.rho), t.name)
    values = _read_values(derived)
    runnable, copy_model = _mean_copy(model, guide, tensors, values)
    args = tuple(a.to(torch.float64) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in _example(model, leaves, example_input))
    # the copy's layers, by path, for the hooks
    copy_leaves = {path: _Leaf(path, copy_model.get_submodule(path), leaf.kind, leaf.tensors) for path, leaf in leaves.items()}
    trace = _Trace(copy_model, copy_leaves)
    for a in _flat_tensors(args):
        trace.value(a).input = True
    try:
        with torch.no_grad(), _Recorder(trace):
            out = runnable(*args)
    except MiEstError:
        raise
    except Exception as e:  # noqa: BLE001 - the model's own error, named
        raise _error(f"from_module: the model failed on example_input: {type(e).__name__}: {e}", "example_input", None) from e
    finally:
        trace.close()
    outputs = [trace.value(t) for t in _flat_tensors(out)]
    lab = _Labeller(trace)
    lab.run(outputs)
    # parameters used outside the layers: fixed tensors of their own
    for name, axes in lab.param_axes.items():
        path, attr = name.rsplit(".", 1) if "." in name else ("", name)
        shape = copy_model.get_submodule(path)._parameters.get(attr)
        shape = shape if shape is not None else copy_model.get_submodule(path)._buffers.get(attr)
        t = _Tensor(name, shape.shape, path, fixed=attr)
        t.axes = list(axes)
        tensors.append(t)
    # name the permutations that survived, in forward order; split what they share
    perms = lab.perms
    names = _names(perms, tensors)
    pieces: List[_Piece] = []
    for t in tensors:
        t.splits = [_split_axis(perms, names, l, n, t.name) for l, n in zip(t.axes, t.shape)]
        combos = _pieces(t.splits)
        for j, (entries, index) in enumerate(combos):
            layer, part = t.name.rsplit(".", 1) if "." in t.name else ("", t.name)
            name = t.name if len(combos) == 1 else f"{layer}#{j}.{part}"  # `layer2.0.bn2#1.bias`
            pieces.append(_Piece(name, t, index, entries))
    spec = {
        "permutations": {n: perms.size(r) for r, n in names.items()},
        "axes": {p.name: p.entries for p in pieces},
    }
    derived.leaf_splits = {
        path: [_split_axis(perms, names, l, n, path) for l, n in zip(out.labels, out.tensor.shape)]
        for path, (node, out) in lab.leaf_out.items()
    }
    derived.tensors = tensors
    derived.pieces = pieces
    derived.spec = spec
    derived.args = args
    return derived


def _check(derived: _Derived, seed: int = 0, rtol: float = 1e-9):
    """The model's outputs with every permutation applied (at once, then each alone) equal
    the originals on random inputs; else an error naming the permutation and the first
    layer whose output does not move as the spec says."""
    spec = derived.spec
    if not spec["permutations"]:
        return
    gen = torch.Generator().manual_seed(seed)
    values = _read_values(derived)
    args = _random_like(derived.args, gen)
    base, base_model = _mean_copy(derived.model, derived.guide, derived.tensors, values)
    base_outs = _run_with_leaf_outputs(base, base_model, derived, args)

    def trial(perms):
        moved = {t.name: _move_split(values[t.name], t.splits, perms) for t in derived.tensors}
        m, inner = _mean_copy(derived.model, derived.guide, derived.tensors, moved)
        return _run_with_leaf_outputs(m, inner, derived, args)

    names = list(spec["permutations"])
    every = {n: _nontrivial(spec["permutations"][n], gen) for n in names}
    outs = trial(every)
    if _same(outs[0], base_outs[0], rtol):
        return
    for n in names:
        single = {n: every[n]}
        outs = trial(single)
        if _same(outs[0], base_outs[0], rtol):
            continue
        where = "the model's output"
        for path, splits in derived.leaf_splits.items():
            expected = _move_split(base_outs[1][path], splits, single)
            if not _same([outs[1][path]], [expected], rtol):
                leaf = derived.leaves[path]
                where = f"`{leaf.tensors[0].name}`" if leaf.tensors else f"layer `{path}`"
                break
        raise _error(
            f"the derived spec is not a symmetry of the model: permuting `{n}` changes the output; "
            f"the first tensor that breaks it is {where}",
            n,
            None,
        )
    raise _error(
        "the derived spec is not a symmetry of the model: its permutations together change the output",
        "spec",
        None,
    )


def _nontrivial(n: int, gen) -> "torch.Tensor":
    tau = torch.randperm(n, generator=gen)
    if n > 1 and bool((tau == torch.arange(n)).all()):
        tau = torch.roll(tau, 1)
    return tau


def _run_with_leaf_outputs(runnable, inner, derived, args):
    outs = {}
    handles = []
    for path in derived.leaf_splits:
        module = inner.get_submodule(path)

        def hook(mod, a, o, path=path):
            outs[path] = (o[0] if isinstance(o, (tuple, list)) else o).detach()

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = runnable(*args)
    finally:
        for h in handles:
            h.remove()
    return [t.detach() for t in _flat_tensors(out)], outs


def _same(a: List["torch.Tensor"], b: List["torch.Tensor"], rtol: float) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return False
        scale = float(y[torch.isfinite(y)].abs().max()) if torch.isfinite(y).any() else 1.0
        if not torch.allclose(x, y, rtol=rtol, atol=rtol * max(scale, 1e-300), equal_nan=True):
            return False
    return True


# --------------------------------------------------------------------------------------
# The public functions.
# --------------------------------------------------------------------------------------


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


def _np(t: "torch.Tensor", name: str) -> np.ndarray:
    _np_dtype(t, name)
    return t.detach().to("cpu", torch.float64).numpy()


def _np_dtype(t: "torch.Tensor", name: str) -> None:
    """Refuses a tensor that is not float32 or float64 (half precision as the command
    refuses an F16 or BF16 safetensors tensor), naming it."""
    if t.dtype not in (torch.float32, torch.float64):
        raise _error(
            f"tensor `{name}` has dtype {str(t.dtype).replace('torch.', '')}; only float32 and float64 are read",
            name,
            str(t.dtype).replace("torch.", ""),
        )


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
    import json

    meta = {} if prior_scale is None else {"prior_scale": repr(float(prior_scale))}
    return Posterior(_mi_est._Posterior.from_tensors(_tensor_arrays(derived), meta, json.dumps(derived.spec), None))


class MiTerm:
    """The symmetrization term of a model as a differentiable torch scalar: the spec is
    derived (and checked) once, each call reads the model's current means and scales.

    ``estimator`` is one with a gradient (``infonce``, the paper's I^K, for any spec;
    ``sandwich``, its lower bound, for one hidden layer; ``exact-permanent`` for one
    permutation of width <= 24). Each call draws as our trainer draws step ``step`` of
    ``seed``: with ``seed`` fixed and no ``step``, successive calls take steps 0, 1, 2, ...;
    without ``seed``, each call takes a seed from torch's generator (``torch.manual_seed``
    makes it repeatable)."""

    def __init__(self, model, guide=None, estimator: str = "infonce", k: Optional[int] = 20, samples: int = 1, example_input=None, check: bool = True):
        from . import _count

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
        from . import _count

        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
            step = 0 if step is None else _count("step", step)
        else:
            seed = _count("seed", seed)
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
