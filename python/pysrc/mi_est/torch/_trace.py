"""The trace: the model run once, every torch function outside the known layers recorded
(a ``TorchFunctionMode``), the layers recorded whole by hooks."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from torch.overrides import TorchFunctionMode

from ._layers import _Leaf

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


