"""Labels: which permutation acts on which axis of every value the trace saw. A union-find
over the permutations (ties, composites of concatenations and padding, head splits) and
the walk over the recorded graph."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Dict, List, Optional, Tuple

import torch

from .. import _error

from ._trace import _Node, _Trace, _Value

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
        """Labels every node that the outputs depend on, in the order they ran (what does
        not reach the output cannot break a symmetry), then drops the permutations that
        reach the output. A value an unknown function made from permuted tensors is
        *poisoned*: an error, named, if it reaches the output or a layer."""
        live = self.live(outputs)
        for node in self.trace.nodes:
            if node.index not in live:
                continue
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
        if leaf.path in self.leaf_out:
            self.fail(node, "the layer runs twice (shared weights); not followed yet, write the spec by hand")
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
        from ._ops import _HANDLERS  # the handlers use this class; imported when first needed

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


