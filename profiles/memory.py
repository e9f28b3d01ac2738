"""Parameter bytes and peak activation bytes: an estimate from the row plan on CPU, the allocator's
peak on CUDA.

The estimate walks the plan's rows in order: at each row, what is alive is the input image, the older
row outputs the routing keeps for later rows, the previous row's output, and inside the row the larger
of its input plus output and its largest single op's input plus output (learnt by the plan's probe).
Temporaries below module level (e.g. an inline add) are not seen, so it is a lower bound of the
allocator's peak. Sizes scale with the batch and the dtype's element size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.plan import ModelPlan


@dataclass(frozen=True)
class PlanPeak:
    """The row-walk estimate in elements (batch 1) and the row where it peaks."""

    peak_numel: int
    peak_row: int | None


def plan_peak(plan: ModelPlan) -> PlanPeak:
    image = plan.image_numel
    kept = 0
    prev_row, prev_numel = -1, 0
    peak, peak_row = 0, None
    outs: dict[int, int] = {}
    for rp in plan.rows:
        i = rp.index
        inp = sum(image if s < 0 else outs[s] for s in rp.row.sources)
        out = rp.probe.out_numel
        prev_alive = prev_numel if prev_row not in plan.save else 0
        live = image + kept + prev_alive
        row_peak = live + max(rp.probe.peak_numel, inp + out)
        if row_peak > peak:
            peak, peak_row = row_peak, i
        outs[i] = out
        if i in plan.save:
            kept += out
        prev_row, prev_numel = i, out
    return PlanPeak(peak, peak_row)


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


def estimate_memory(model: nn.Module, plan: ModelPlan, *, batch: int = 1, dtype: torch.dtype = torch.float32,
                    device: str | torch.device = "cpu") -> MemoryEstimate:
    """Allocator peak on CUDA (one inference pass); the plan's row-walk estimate elsewhere."""
    dev = torch.device(device)
    if dev.type == "cuda":
        x = torch.zeros(batch, plan.config.ch, plan.imgsz, plan.imgsz, device=dev, dtype=dtype)
        peak, method = cuda_peak_activation_bytes(model, x), "cuda allocator peak"
    else:
        element = torch.empty((), dtype=dtype).element_size()
        peak, method = plan_peak(plan).peak_numel * batch * element, "estimate (row plan)"
    return MemoryEstimate(param_bytes=param_bytes(model), buffer_bytes=buffer_bytes(model),
                          peak_activation_bytes=peak, method=method)
