"""The derivation (trace, labels, the spec over pieces) and its numerical check."""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Tuple

import torch

from .. import _error

from .. import MiEstError
from ._labels import _Labeller, _Perms
from ._layers import _attr_path, _Leaf, _leaves, _np_dtype, _Tensor
from ._trace import _flat_tensors, _Recorder, _Trace

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
    """The model's spec, from one run of a float64 copy of it; the run's random draws (a
    variational layer samples its weights) come from a fork of torch's generator, so the
    user's draws after it are those they would have been."""
    with torch.random.fork_rng(devices=[]):
        return _derive_unforked(model, guide, example_input)


def _derive_unforked(model, guide=None, example_input=None) -> _Derived:
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
    """`_check_unforked` on a fork of torch's generator (the model's runs draw from it)."""
    with torch.random.fork_rng(devices=[]):
        _check_unforked(derived, seed, rtol)


def _check_unforked(derived: _Derived, seed: int = 0, rtol: float = 1e-9):
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


