"""Parameter bytes and peak activation bytes: an estimate on CPU, the allocator's peak on CUDA.

The CPU estimate walks one forward pass through ZooModel.run's hook: at each row, what is alive is
the input image, the older row outputs the routing keeps for later rows, the previous row's output,
and inside the row the largest single op's input plus output. Temporaries below module level
(e.g. an inline add) are not seen, so it is a lower bound of the allocator's peak.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class RowWalk:
    """One forward pass at the real input size: each row's output shape and the live-bytes peak."""

    out_shapes: dict[int, tuple[int, ...] | None] = field(default_factory=dict)
    peak_activation_bytes: int = 0
    peak_row: int | None = None


@dataclass(frozen=True)
class MemoryEstimate:
    param_bytes: int
    buffer_bytes: int
    peak_activation_bytes: int
    method: str  # "estimate (row walk)" or "cuda allocator peak"

    def as_dict(self) -> dict[str, Any]:
        return {"param_bytes": self.param_bytes, "peak_activation_bytes": self.peak_activation_bytes}


def param_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def buffer_bytes(model: nn.Module) -> int:
    return sum(b.numel() * b.element_size() for b in model.buffers())


def tensor_bytes(value: Any) -> int:
    """Bytes of a tensor or of the tensors nested in lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def walk_rows(model: nn.Module, x: torch.Tensor) -> RowWalk:
    """Run `model` (a ZooModel) once on `x`, recording output shapes and the estimated activation peak."""
    save = model.save
    kept = {"bytes": 0}
    prev_bytes = {"row": -1, "bytes": 0}
    leaf_peak = {"bytes": 0}
    shapes: dict[int, tuple[int, ...] | None] = {}
    peak = {"bytes": 0, "row": None}

    def leaf_hook(_m: nn.Module, inp: Any, out: Any) -> None:
        leaf_peak["bytes"] = max(leaf_peak["bytes"], tensor_bytes(inp) + tensor_bytes(out))

    def row_hook(index: int, module: nn.Module, inp: Any) -> Any:
        leaf_peak["bytes"] = 0
        out = module(inp)
        prev_alive = prev_bytes["bytes"] if prev_bytes["row"] not in save else 0
        live = tensor_bytes(x) + kept["bytes"] + prev_alive
        row_peak = live + max(leaf_peak["bytes"], tensor_bytes(inp) + tensor_bytes(out))
        if row_peak > peak["bytes"]:
            peak["bytes"], peak["row"] = row_peak, index
        shapes[index] = tuple(out.shape) if isinstance(out, torch.Tensor) else None
        if index in save:
            kept["bytes"] += tensor_bytes(out)
        prev_bytes["row"], prev_bytes["bytes"] = index, tensor_bytes(out)
        return out

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(leaf_hook) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model.run(x, row_hook)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return RowWalk(out_shapes=shapes, peak_activation_bytes=int(peak["bytes"]), peak_row=peak["row"])


def cuda_peak_activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """The CUDA caching allocator's peak during one inference pass, minus what was allocated before."""
    dev = x.device
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(x)
        torch.cuda.synchronize(dev)
    finally:
        model.train(was_training)
    return int(torch.cuda.max_memory_allocated(dev) - base)


def estimate_memory(model: nn.Module, x: torch.Tensor, walk: RowWalk | None = None) -> MemoryEstimate:
    """Allocator peak on CUDA; the row-walk estimate elsewhere (reusing `walk` when given)."""
    if x.device.type == "cuda":
        peak, method = cuda_peak_activation_bytes(model, x), "cuda allocator peak"
    else:
        peak = (walk or walk_rows(model, x)).peak_activation_bytes
        method = "estimate (row walk)"
    return MemoryEstimate(param_bytes=param_bytes(model), buffer_bytes=buffer_bytes(model),
                          peak_activation_bytes=peak, method=method)
