"""What one row costs, by its signature: params, MACs (fvcore, the conventions of `zoo profile`), the
deploy-form conv calls (the MAE score's fan-ins and TinyNAS's layer count) and the output shape.

A row's costs depend only on its RowSignature, so they are computed once per signature and cached in
memory and, per study, in a JSON-lines file; a candidate's totals are sums over its rows (fvcore
attributes every op to the row that calls it, so a model's count is the sum of its rows' counts).

Computing one row cheaply and still exactly as fvcore counts it: the row runs once on the meta device
(no weights, no arithmetic) while a dispatch mode watches every op and forward hooks note each leaf
module call with its input shapes. When every op outside a leaf is one fvcore never counts (element-
wise maths and data movement, OP_OUTSIDE_LEAVES), the row's MACs are the sum of its leaf calls, and
each distinct leaf call (a Conv2d of given widths at a given size, say) is counted by fvcore itself,
standalone on CPU, once. Rows that compute outside their leaves (a functional matmul, grid_sample,
mean) are counted whole by fvcore on CPU at their real input shapes.
"""
from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from zoo.activation import activation_scope
from zoo.deploy import deploy
from zoo.plan import (RowProbe, RowSignature, checked_forward, construct, example_inputs, instantiate_row, numel,
                      row_spec)

from .flops import count_module_macs

FORMS = ("train", "deploy")

# Ops (as torch dispatches them) that fvcore counts as zero whatever they were called as: they may run
# in a block's own forward without a leaf module around them. Anything else there (mm, bmm, addmm,
# convolution, norms, upsample, grid_sampler, mean...) may be an op fvcore counts, so the row is
# counted whole instead.
OP_OUTSIDE_LEAVES = frozenset({
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "rsqrt", "reciprocal", "abs", "sign",
    "sin", "cos", "sigmoid", "tanh", "relu", "silu", "gelu", "hardswish", "hardsigmoid", "leaky_relu", "elu",
    "mish", "softplus", "clamp", "clamp_min", "clamp_max", "_softmax", "_log_softmax", "where", "masked_fill",
    "eq", "ne", "gt", "ge", "lt", "le", "logical_and", "logical_or", "logical_not", "bitwise_and", "bitwise_not",
    "floor", "ceil", "round", "floor_divide", "remainder", "max", "min", "amax", "amin", "argmax", "argmin",
    "topk", "sort", "sum", "cumsum", "gather", "index", "index_select", "scatter", "index_put",
    "cat", "stack", "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand", "slice", "select",
    "split", "split_with_sizes", "unbind", "squeeze", "unsqueeze", "clone", "contiguous", "copy_", "_to_copy",
    "detach", "alias", "lift_fresh", "flip", "roll", "repeat", "constant_pad_nd", "pixel_shuffle",
    "pixel_unshuffle", "channel_shuffle", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like",
    "empty", "empty_like", "empty_strided", "new_zeros", "new_ones", "new_empty", "new_full", "fill_", "zero_",
    "arange", "linspace", "scalar_tensor", "max_pool2d_with_indices", "max_pool2d", "_local_scalar_dense",
    "sym_size", "sym_stride", "sym_numel", "is_same_size", "fill", "lerp", "addcmul", "addcdiv",
})


@dataclass(frozen=True)
class ConvTerm:
    """One conv (or linear) call of the deploy form: its fan-in and its output width."""

    fan_in: float  # C_in * k_h * k_w / groups for a conv, in_features for a linear
    out_channels: int
    kind: str  # "conv" or "linear"


@dataclass(frozen=True)
class RowCost:
    params: int
    macs: int
    convs: tuple[ConvTerm, ...]  # deploy-form calls in execution order
    out_shape: tuple[int, ...] | None = None

    @property
    def layers(self) -> int:
        """Convs of the deploy form, as TinyNAS counts a network's layers."""
        return sum(1 for c in self.convs if c.kind == "conv")

    def to_json(self) -> dict[str, Any]:
        return {"params": self.params, "macs": self.macs, "out_shape": self.out_shape,
                "convs": [[c.fan_in, c.out_channels, c.kind] for c in self.convs]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RowCost:
        shape = d.get("out_shape")
        return cls(int(d["params"]), int(d["macs"]),
                   tuple(ConvTerm(float(f), int(o), str(k)) for f, o, k in d["convs"]),
                   tuple(shape) if shape is not None else None)


def fan_in(module: nn.Module) -> float:
    """C_in*k_h*k_w/groups for a conv, in_features for a linear (a 1x1 conv)."""
    if isinstance(module, nn.Linear):
        return float(module.in_features)
    ks = math.prod(module.kernel_size)  # type: ignore[attr-defined]
    return float(module.in_channels * ks // module.groups)  # type: ignore[attr-defined]


def conv_term(module: nn.Module) -> ConvTerm:
    if isinstance(module, nn.Linear):
        return ConvTerm(fan_in(module), module.out_features, "linear")
    return ConvTerm(fan_in(module), int(module.out_channels), "conv")  # type: ignore[attr-defined]


class ConvRecorder:
    """Records every conv/linear call of a module's forward passes, in execution order."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.calls: list[ConvTerm] = []
        self._handles: list[Any] = []

    def __enter__(self) -> ConvRecorder:
        def on_call(m: nn.Module, inputs: Any, output: Any) -> None:
            self.calls.append(conv_term(m))

        self._handles = [m.register_forward_hook(on_call) for m in self.module.modules()
                         if isinstance(m, (nn.Conv2d, nn.Linear))]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()


# -- the meta-device pass ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LeafCall:
    """One call of a leaf module that fvcore may count: what it needs to count it standalone."""

    key: tuple[Any, ...]
    module: nn.Module  # the (meta) module called
    shape: tuple[int, ...]  # its one input's shape


def _leaf_key(m: nn.Module, shape: tuple[int, ...]) -> tuple[Any, ...]:
    attrs = tuple(sorted((k, repr(v)) for k, v in vars(m).items()
                         if not k.startswith("_") and k != "training" and not isinstance(v, torch.Tensor)))
    tensors = tuple((n, tuple(t.shape), str(t.dtype)) for n, t in
                    list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)))
    cls = type(m)
    return (f"{cls.__module__}.{cls.__qualname__}", m.extra_repr(), attrs, tensors, m.training, shape)


def _is_leaf(m: nn.Module) -> bool:
    return next(m.children(), None) is None


class _Watch(TorchDispatchMode):
    """Sees every op: those of the innermost leaf module go to its call, the rest are checked."""

    def __init__(self, stack: list[list[Any]]) -> None:
        super().__init__()
        self.stack = stack  # [module, ops seen while it was innermost]
        self.outside: set[str] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
        if self.stack and _is_leaf(self.stack[-1][0]):
            self.stack[-1][1].add(name)
        elif name not in OP_OUTSIDE_LEAVES:
            self.outside.add(name)
        return func(*args, **(kwargs or {}))


@dataclass
class MetaPass:
    """One meta-device forward of a row: its output, the leaf calls fvcore may count, the largest leaf
    (memory), and the ops that ran outside leaves and may be counted (then the row is counted whole)."""

    out: Any
    leaves: list[LeafCall]
    peak_numel: int
    outside: set[str]


def _same_shape(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def _formula_norms(module: nn.Module) -> set[int]:
    """Eval batch norms (counted by handler_macs from their shape) skip their meta kernels, Python
    decompositions of milliseconds each: their output has their input's shape. Returns their ids."""
    ids = set()
    for m in module.modules():
        if type(m) is nn.BatchNorm2d and not m.training and m.track_running_stats:
            m.forward = _same_shape  # type: ignore[method-assign]  # this instance only (a pass's own module)
            ids.add(id(m))
    return ids


def meta_pass(module: nn.Module, feed: Any) -> MetaPass:
    stack: list[list[Any]] = []
    by_formula = _formula_norms(module)
    leaves: list[LeafCall] = []
    peak = [0]
    watch = _Watch(stack)

    def pre(m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        stack.append([m, set(), bool(kwargs)])

    def post(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        _, ops, had_kwargs = stack.pop()
        if not _is_leaf(m):
            return
        peak[0] = max(peak[0], numel(args) + numel(out))
        if id(m) in by_formula:
            shape = tuple(args[0].shape)
            leaves.append(LeafCall(_leaf_key(m, shape), m, shape))
            return
        if ops <= OP_OUTSIDE_LEAVES:
            return  # nothing fvcore counts: 0 MACs, no need to count it
        if had_kwargs or len(args) != 1 or not isinstance(args[0], torch.Tensor):
            watch.outside.update(ops - OP_OUTSIDE_LEAVES)  # cannot be replayed alone: count the row whole
            return
        shape = tuple(args[0].shape)
        leaves.append(LeafCall(_leaf_key(m, shape), m, shape))

    handles = []
    for m in module.modules():
        handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(m.register_forward_hook(post))
    try:
        with torch.no_grad(), watch:
            out = module(feed)
    finally:
        for h in handles:
            h.remove()
    return MetaPass(out, leaves, max(peak[0], numel(feed) + numel(out)), watch.outside)


def _cpu_zeros(module: nn.Module) -> nn.Module:
    """A CPU copy of a meta module with zero-filled weights (values never matter to a count)."""
    twin = copy.deepcopy(module).to_empty(device="cpu")
    with torch.no_grad():
        for t in list(twin.parameters()) + list(twin.buffers()):
            if t.is_floating_point():
                t.zero_()
    return twin


def handler_macs(m: nn.Module, shape: tuple[int, ...]) -> int | None:
    """fvcore's count of a plain Conv2d or an eval-mode BatchNorm2d, by fvcore's own handler formulas
    (`conv_flop_count`: batch x prod(weight shape) x prod(output spatial shape); `batchnorm_flop_jit`:
    input elements x 2 with an affine, else x 1) from the shapes alone: the count without tracing and
    running the op on CPU at full size (the bulk of a new input size's cost). None: count it with fvcore."""
    if type(m) is nn.Conv2d and len(shape) == 4 and not isinstance(m.padding, str):
        spatial = [(size + 2 * p - d * (k - 1) - 1) // s + 1
                   for size, p, d, k, s in zip(shape[2:], m.padding, m.dilation, m.kernel_size, m.stride)]
        if min(spatial) < 1:
            return None
        return shape[0] * math.prod(m.weight.shape) * math.prod(spatial)
    if type(m) is nn.BatchNorm2d and not m.training and m.track_running_stats and len(shape) == 4:
        return math.prod(shape) * (2 if m.affine else 1)
    return None


class RowCostModel:
    """Row costs (and the plan's probes) by signature, with fvcore's leaf counts shared across rows."""

    def __init__(self) -> None:
        self._leaf_macs: dict[tuple[Any, ...], int] = {}
        self.leaf_counts = 0
        self.whole_counts = 0

    def leaf_macs(self, call: LeafCall) -> int:
        hit = self._leaf_macs.get(call.key)
        if hit is None:
            hit = handler_macs(call.module, call.shape)
        if hit is None:
            twin = _cpu_zeros(call.module)
            hit = count_module_macs(twin, torch.zeros(*call.shape))
            self._leaf_macs[call.key] = hit
            self.leaf_counts += 1
        return hit

    def macs_of(self, mp: MetaPass, sig: RowSignature, module_on_cpu: Any) -> int:
        if not mp.outside:
            return sum(self.leaf_macs(c) for c in mp.leaves)
        self.whole_counts += 1
        module, feed = module_on_cpu()
        return count_module_macs(module, feed)

    def compute(self, sig: RowSignature, *, form: str = "train") -> tuple[RowCost, RowProbe]:
        """The row's costs and its probe, from meta passes of the row and of its deploy form (the plan's
        own checked forward: a row `zoo validate` refuses is refused here with the same RowProbeError)."""
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
        spec = row_spec(sig)
        with torch.device("meta"), activation_scope(sig.activation):
            module = construct(spec, sig.call_args, sig.call_kwargs, sig.copies)
        feed = example_inputs(sig, device="meta")
        train = checked_forward(module, feed, lambda: meta_pass(module, feed))
        shape = tuple(int(d) for d in train.out.shape) if isinstance(train.out, torch.Tensor) else None
        probe = RowProbe(shape, numel(train.out), train.peak_numel, sum(p.numel() for p in module.parameters()))
        with torch.device("meta"):
            folded = deploy(copy.deepcopy(module))
        if form == "train":
            counted, mp = module, train
            with ConvRecorder(folded) as rec, torch.no_grad():
                folded(feed)
            convs = tuple(rec.calls)
        else:
            with ConvRecorder(folded) as rec:
                mp = checked_forward(folded, feed, lambda: meta_pass(folded, feed))
            convs = tuple(rec.calls)
            counted = folded

        def on_cpu() -> tuple[nn.Module, Any]:
            m, x = instantiate_row(sig)
            return (deploy(m) if form == "deploy" else m), x

        macs = self.macs_of(mp, sig, on_cpu)
        params = sum(p.numel() for p in counted.parameters())
        return RowCost(params, macs, convs, shape), probe


def compute_row_cost(sig: RowSignature, *, form: str = "train") -> RowCost:
    """One row's costs (a fresh model: no shared leaf counts)."""
    return RowCostModel().compute(sig, form=form)[0]


def deploy_convs(module: nn.Module, inputs: Any, *, deployed: bool = False) -> tuple[ConvTerm, ...]:
    """The conv calls of `module`'s deploy form (a copy is folded unless `deployed`) on `inputs`."""
    net = module if deployed else deploy(copy.deepcopy(module))
    with ConvRecorder(net) as rec, torch.no_grad():
        net.eval()(inputs)
    return tuple(rec.calls)


class CostCache:
    """Row costs by (signature, form), in memory and appended to a JSON-lines file when given one;
    also a prober for zoo.plan, so a candidate's rows are probed and costed in one pass.

    The file is only a cache: a line it cannot read (a torn write) is skipped, never trusted.
    """

    def __init__(self, path: str | Path | None = None, *, form: str = "train") -> None:
        self.path = Path(path) if path is not None else None
        self.form = form
        self.model = RowCostModel()
        self._items: dict[tuple[RowSignature | str, str], RowCost] = {}
        self._probes: dict[RowSignature, RowProbe] = {}
        self._file_items: dict[tuple[str, str], dict[str, Any]] = {}
        self.computed = 0  # computed in this process (the rest came from memory or the file)
        self.skipped_lines = 0
        if self.path is not None and self.path.exists():
            self._load(self.path)

    def _load(self, path: Path) -> None:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    self._file_items[(rec["key"], rec["form"])] = rec
                except (ValueError, KeyError, TypeError):
                    self.skipped_lines += 1

    def __len__(self) -> int:
        return len(self._items)

    def __call__(self, sig: RowSignature) -> RowProbe:
        """zoo.plan's prober: the row's probe, its costs computed on the way (one pass)."""
        probe = self._probes.get(sig)
        if probe is None:
            self.get(sig, self.form)
            probe = self._probes[sig]
        return probe

    def get(self, sig: RowSignature, form: str = "train") -> RowCost:
        hit = self._items.get((sig, form))
        if hit is not None:
            return hit
        stored = self._file_items.get((sig.key(), form)) if self._file_items else None
        if stored is not None and "probe" in stored:
            try:
                cost = RowCost.from_json(stored["cost"])
                p = stored["probe"]
                probe = RowProbe(tuple(p[0]) if p[0] is not None else None, int(p[1]), int(p[2]),
                                 int(p[3]) if len(p) > 3 else None)
            except (ValueError, KeyError, TypeError, IndexError):
                stored = None
            else:
                self._items[(sig, form)] = cost
                self._probes.setdefault(sig, probe)
                return cost
        cost, probe = self.model.compute(sig, form=form)
        self._items[(sig, form)] = cost
        self._probes.setdefault(sig, probe)
        self.computed += 1
        if self.path is not None:
            self._append(sig.key(), form, cost, probe)
        return cost

    def _append(self, key: str, form: str, cost: RowCost, probe: RowProbe) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        rec = {"key": key, "form": form, "cost": cost.to_json(),
               "probe": [probe.out_shape, probe.out_numel, probe.peak_numel, probe.params]}
        line = json.dumps(rec, separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)  # one write per line
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def many(self, sigs: Iterable[RowSignature], form: str = "train") -> list[RowCost]:
        return [self.get(s, form) for s in sigs]


__all__ = ["ConvRecorder", "ConvTerm", "CostCache", "FORMS", "OP_OUTSIDE_LEAVES", "RowCost", "RowCostModel",
           "compute_row_cost", "conv_term", "deploy_convs", "fan_in", "handler_macs"]
