"""Per-row latency of a built model on any backend, each row timed alone at the inputs it really gets.

The rows' inputs are captured from one forward pass at the real image size, so a row is timed with
the shapes (and the routing) of that model; the result is keyed by YAML row index. This is how a
latency table measures rows too (one row, one standalone measurement), which is what lets ORT's
per-row timings map back to YAML rows: a session per row, not a profile of a fused whole graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from zoo.graph import ZooModel

from .backends.base import Backend, BackendError, Inputs, Shape, input_shapes, time_each
from .latency import LatencyStats, TimingProtocol


@dataclass(frozen=True)
class RowTiming:
    """One YAML row timed alone: which row, the input shapes it was timed at, the statistics."""

    index: int
    module: str
    input_shapes: tuple[Shape, ...]
    latency: LatencyStats


def capture_row_inputs(model: ZooModel, x: torch.Tensor) -> dict[int, Inputs]:
    """Each row's inputs (detached copies) from one eval forward pass on `x`."""
    captured: dict[int, Inputs] = {}

    def hook(index: int, module: Any, inp: Any) -> Any:
        captured[index] = [t.detach().clone() for t in inp] if isinstance(inp, list) else inp.detach().clone()
        return module(inp)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model.run(x, hook)
    finally:
        model.train(was_training)
    return captured


def time_rows(backend: Backend, model: ZooModel, *, imgsz: int = 640, batch: int = 1,
              protocol: TimingProtocol = TimingProtocol(),
              on_row: Callable[[int, int], None] | None = None) -> tuple[RowTiming, ...]:
    """Every row of `model` timed alone by `backend`, in row order (in batches where the backend has
    them: ORT exports several rows at once); `on_row(done, total)` after each."""
    x = torch.randn(batch, model.config.ch, imgsz, imgsz)
    inputs = capture_row_inputs(model, x)
    rows = list(zip(model.layers, model.model))
    out: list[RowTiming] = []
    try:
        for (info, _), stats in zip(rows, time_each(backend, ((m, inputs[i.index]) for i, m in rows), protocol)):
            out.append(RowTiming(index=info.index, module=info.module, input_shapes=input_shapes(inputs[info.index]),
                                 latency=stats))
            if on_row is not None:
                on_row(len(out), len(rows))
    except BackendError as e:  # a batch falls back to row by row, so the failing row is the next one
        info = rows[len(out)][0]
        raise BackendError(e.text, file=model.config.path, row=info.index, module=info.module) from None
    return tuple(out)
