"""Per-part latency of a model without YAML rows: each top-level child timed around its calls inside the
same forward passes (what measure_row_latency does for a ZooModel's rows), with latency.py's warm-up."""
from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from .latency import LatencyStats, summarize, thread_count, time_callable


def measure_child_latency(model: nn.Module, x: torch.Tensor, *, threads: int = 1, runs: int = 30,
                          warmup_runs: int = 5, warmup_s: float = 1.0) -> dict[int, LatencyStats]:
    """Latency of each top-level child (keyed by its position in `children()`) over `runs` forward passes
    of `model(x)`; a child called several times in a pass counts the sum. `model` and `x` are already on
    their device and dtype, in eval mode."""
    dev = x.device
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    recording = [False]
    started: dict[int, float] = {}
    this_pass: dict[int, float] = {}

    def before(i: int) -> Any:
        def hook(_m: nn.Module, _inp: Any) -> None:
            if recording[0]:
                sync()
                started[i] = time.perf_counter()
        return hook

    def after(i: int) -> Any:
        def hook(_m: nn.Module, _inp: Any, _out: Any) -> None:
            if recording[0] and i in started:
                sync()
                this_pass[i] = this_pass.get(i, 0.0) + (time.perf_counter() - started.pop(i)) * 1000.0
        return hook

    handles = []
    for i, child in enumerate(model.children()):
        handles += [child.register_forward_pre_hook(before(i)), child.register_forward_hook(after(i))]
    samples: dict[int, list[float]] = {}
    try:
        with thread_count(threads), torch.inference_mode():
            _, warm = time_callable(lambda: model(x), device=dev, runs=0, warmup_runs=warmup_runs,
                                    warmup_s=warmup_s)
            recording[0] = True
            for _ in range(runs):
                this_pass.clear()
                model(x)
                for i, ms in this_pass.items():
                    samples.setdefault(i, []).append(ms)
    finally:
        for h in handles:
            h.remove()
    return {i: summarize(s, warmup_runs=warm, threads=threads, device=str(dev)) for i, s in samples.items()}
