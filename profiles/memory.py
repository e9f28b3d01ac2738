"""Parameter bytes and peak activation bytes: an estimate from the row plan on CPU, the allocator's
peak on CUDA.

The estimate is the plan's row walk (zoo.plan.activation_peak, which the builder's allocation guard
uses too): a lower bound of the allocator's peak. Sizes scale with the batch and the dtype's element size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.plan import ModelPlan, activation_peak


@dataclass(frozen=True)
class PlanPeak:
    """The row-walk estimate in elements (batch 1) and the row where it peaks."""

    peak_numel: int
    peak_row: int | None


def plan_peak(plan: ModelPlan) -> PlanPeak:
    return PlanPeak(*activation_peak(plan))


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
