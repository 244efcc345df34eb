"""How each torch function the trace records moves the labels of its operands to its
results (`_HANDLERS`, by function name)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, List, Optional, Tuple

import torch

from .. import _error

from ._labels import _invariant_along, _Labeller
from ._trace import _Node, _Value

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


