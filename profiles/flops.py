"""MACs by fvcore (the definition of SPEC §4), per YAML row and per operator, with what nobody counts.

GFLOPs = 2 x fvcore's MAC total, eval mode, at the real input size, BN included. fvcore ignores some
ops that cost time (relu, clamp, padding, max...); we give those a handle that counts 0 and records
them, so every costly op is either counted or listed as uncounted, never silently zero. Pure data
movement (view, cat, slicing...) is neither counted nor listed.
"""
from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

# Ops fvcore ignores by default although they cost time: counted as 0, listed as uncounted.
COSTLY_IGNORED_OPS = (
    "aten::relu", "aten::relu_", "aten::clamp", "aten::clamp_", "aten::constant_pad_nd", "aten::max",
    "aten::masked_fill", "aten::floor", "aten::floor_divide", "aten::remainder", "aten::gather",
    "aten::index", "aten::index_put_", "aten::nonzero", "aten::eq", "aten::ge", "aten::gt",
    "aten::__and__", "aten::bitwise_not", "aten::roll",
)

# Pure data movement or tensor creation: costs (almost) no arithmetic, never listed as uncounted.
DATA_MOVEMENT_OPS = frozenset({
    "aten::view", "aten::view_as", "aten::reshape", "aten::cat", "aten::concat", "aten::stack",
    "aten::slice", "aten::select", "aten::narrow", "aten::index_select", "aten::permute",
    "aten::transpose", "aten::t", "aten::contiguous", "aten::expand", "aten::expand_as", "aten::repeat",
    "aten::split", "aten::split_with_sizes", "aten::chunk", "aten::unbind", "aten::squeeze",
    "aten::unsqueeze", "aten::flatten", "aten::unflatten", "aten::movedim", "aten::flip", "aten::clone",
    "aten::copy_", "aten::detach", "aten::to", "aten::type_as", "aten::meshgrid", "aten::pixel_shuffle",
    "aten::pixel_unshuffle", "aten::channel_shuffle", "aten::alias", "aten::lift_fresh", "aten::tensor",
    "aten::zeros", "aten::zeros_like", "aten::ones", "aten::ones_like", "aten::full", "aten::full_like",
    "aten::empty", "aten::empty_like", "aten::new_zeros", "aten::new_ones", "aten::new_empty",
    "aten::new_full", "aten::arange", "aten::linspace", "aten::scalar_tensor", "aten::size",
    "aten::numel", "aten::dropout", "aten::feature_dropout", "aten::Int", "aten::ScalarImplicit",
})


class CountsMacs:
    """Mixin for results with a `macs` field: GMACs and GFLOPs derived in this one place."""

    macs: int

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def gflops(self) -> float:
        return flops_of(self.macs) / 1e9


@dataclass(frozen=True)
class FlopCount(CountsMacs):
    """fvcore's count of one model at one input size. `macs` is the single source of GFLOPs."""

    macs: int
    by_row: dict[int, int] = field(default_factory=dict)
    by_operator: dict[str, int] = field(default_factory=dict)
    uncounted: dict[str, int] = field(default_factory=dict)
    uncounted_by_row: dict[int, dict[str, int]] = field(default_factory=dict)
    imgsz: int = 640
    batch: int = 1


def flops_of(macs: int) -> int:
    """FLOPs as SPEC §4 defines them: one multiply-accumulate is two FLOPs."""
    return 2 * macs


class FlatOutputs(nn.Module):
    """Wraps a model so its outputs are a flat tuple of tensors (the tracer's need); the model is
    untouched. A Detect head in eval mode returns (tensor, [tensors])."""

    PREFIX = "net."

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(flatten_tensors(self.net(x)))


def flatten_tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in flatten_tensors(o)]
    return []


def example_input(model: nn.Module, imgsz: int, batch: int) -> torch.Tensor:
    """A zero image batch on the model's device and dtype."""
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    ch = int(getattr(getattr(model, "config", None), "ch", 3))
    return torch.zeros(batch, ch, imgsz, imgsz, device=device, dtype=dtype)


def row_count(model: nn.Module) -> int:
    layers = getattr(model, "layers", None)
    return len(layers) if layers is not None else 0


def _analysis(net: nn.Module, inputs: Any, recorded: list[tuple[str, int | None]],
              locate: Callable[[str], int | None] | None = None) -> Any:
    """fvcore's analysis as every count of the project sets it up (one place for the conventions)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore and its imports warn about deprecated torch APIs
        from fvcore.nn import FlopCountAnalysis

    analysis = (FlopCountAnalysis(FlatOutputs(net), (inputs,))
                .unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                .tracer_warnings("none").ancestor_mode("caller"))  # shared blocks (one SiLU for all
    # Convs, as YOLOv5's default_act) count in the row that calls them, not where first named
    analysis.set_op_handle(**{op: _recording_handle(op, recorded, locate or _row_of_scope)
                              for op in COSTLY_IGNORED_OPS})
    return analysis


def count_module_macs(module: nn.Module, inputs: Any) -> int:
    """fvcore's MACs of one module (a row alone, in eval mode) on `inputs`, with count_flops' conventions:
    a model's count is the sum of its rows' counts."""
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            return int(_analysis(module, inputs, []).total())
    finally:
        module.train(was_training)


def count_flops(model: nn.Module, *, imgsz: int = 640, batch: int = 1) -> FlopCount:
    """fvcore's MACs of `model` in eval mode on a `batch` x ch x imgsz x imgsz input."""
    scopes = {f"{FlatOutputs.PREFIX}model.{i}": i for i in range(row_count(model))}
    return _count(model, example_input(model, imgsz, batch), scopes, _row_of_scope, imgsz=imgsz, batch=batch)


def count_flops_by_child(model: nn.Module, inputs: torch.Tensor) -> FlopCount:
    """fvcore's MACs of any module in eval mode on `inputs`, with count_flops' conventions, per top-level
    child: `by_row[i]` is the i-th of `named_children()` (a model without YAML rows)."""
    scopes = {f"{FlatOutputs.PREFIX}{name}": i for i, (name, _) in enumerate(model.named_children())}

    def locate(scope: str) -> int | None:
        return next((scopes[part] for part in scope.split("/") if part in scopes), None)

    return _count(model, inputs, scopes, locate, imgsz=int(inputs.shape[-1]) if inputs.dim() else 0,
                  batch=int(inputs.shape[0]) if inputs.dim() else 1)


def _count(model: nn.Module, x: torch.Tensor, scopes: dict[str, int], locate: Callable[[str], int | None], *,
           imgsz: int, batch: int) -> FlopCount:
    """One fvcore pass: the total, per operator, per part (`scopes`: module path -> row) and what is uncounted."""
    was_training = model.training
    model.eval()
    recorded: list[tuple[str, int | None]] = []
    try:
        analysis = _analysis(model, x, recorded, locate)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            total = int(analysis.total())
            by_operator = {k: int(v) for k, v in analysis.by_operator().items() if v}
            by_module = analysis.by_module()
            unsupported = analysis.unsupported_ops()
            by_row = {i: int(by_module.get(scope, 0)) for scope, i in scopes.items()}
            unsupported_by_row = {i: analysis.unsupported_ops(scope) for scope, i in scopes.items()}
    finally:
        model.train(was_training)
    uncounted = Counter(_costly(unsupported))
    uncounted_by_row: dict[int, Counter[str]] = {i: Counter(_costly(c)) for i, c in unsupported_by_row.items()}
    for op, row in recorded:
        uncounted[op] += 1
        if row is not None and row in uncounted_by_row:
            uncounted_by_row[row][op] += 1
    return FlopCount(macs=total, by_row=by_row, by_operator=by_operator, uncounted=_sorted(uncounted),
                     uncounted_by_row={i: _sorted(c) for i, c in uncounted_by_row.items() if c},
                     imgsz=imgsz, batch=batch)


def _costly(counts: dict[str, int]) -> dict[str, int]:
    return {op: int(n) for op, n in counts.items() if op not in DATA_MOVEMENT_OPS and n}


def _sorted(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _recording_handle(op: str, recorded: list[tuple[str, int | None]], locate: Callable[[str], int | None]) -> Any:
    """An fvcore handle for an op it would ignore: counts 0 MACs and records (op, row)."""

    def handle(inputs: list[Any], outputs: list[Any]) -> int:
        scope = outputs[0].node().scopeName() if outputs else ""
        recorded.append((op, locate(scope)))
        return 0

    return handle


def _row_of_scope(scope: str) -> int | None:
    """'net/net.model/net.model.3/net.model.3.cv1' -> 3."""
    head = f"{FlatOutputs.PREFIX}model."
    for part in scope.split("/"):
        if part.startswith(head):
            idx = part[len(head):].split(".", 1)[0]
            if idx.isdigit():
                return int(idx)
    return None


def op_family(op: str) -> str:
    """A counter-neutral name for an op or module class, so the three counters can be compared."""
    raw = op.split("::")[-1]
    raw = raw.split(".")[1] if raw.startswith("aten.") else raw.split(".")[-1]  # torch: aten.conv.default
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", raw).lower().rstrip("_")  # thop: LayerNorm -> layer_norm
    if name in ("conv", "convolution", "_convolution", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                "conv_transpose2d", "conv_transpose3d"):
        return "conv"
    if name in ("linear", "addmm", "mm", "matmul", "bmm", "einsum", "baddbmm"):
        return "matmul"
    if "batch_norm" in name or "batchnorm" in name:
        return "batch_norm"
    if "upsample" in name or name == "upsampling_nearest2d":
        return "upsample"
    if "attention" in name:
        return "attention"
    return name


def group_by_family(counts: dict[str, int] | Iterable[tuple[str, int]]) -> dict[str, int]:
    items = counts.items() if isinstance(counts, dict) else counts
    out: Counter[str] = Counter()
    for op, n in items:
        out[op_family(op)] += int(n)
    return dict(out)
