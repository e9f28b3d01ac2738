"""What every latency backend offers: time a whole model, time one row alone at its real input shapes,
and say which settings its numbers depend on (the fingerprint a latency table is keyed by).

Inputs follow `ZooModel.run`: a tensor for a single-input module, a list of tensors for a multi-input
row (Concat, Detect), exactly what the module is called with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence, Union, runtime_checkable

import torch
from torch import nn

from zoo.errors import ConfigError

from ..latency import LatencyStats, TimingProtocol

Inputs = Union[torch.Tensor, list[torch.Tensor]]
Shape = tuple[int, ...]


class BackendError(ConfigError):
    """A backend cannot run here (a missing extra) or cannot run this module (an export that fails)."""

    def __init__(self, text: str, *, file: str | None = None, row: int | None = None,
                 module: str | None = None) -> None:
        super().__init__(file or "<backend>", text, row=row, module=module)


@dataclass(frozen=True)
class BackendInfo:
    """The settings a backend's timings depend on; two tables are comparable only when these agree."""

    name: str
    version: str
    device: str
    dtype: str
    threads: int
    settings: tuple[tuple[str, Any], ...]  # sorted (name, value) pairs, JSON scalars or lists of them

    def settings_dict(self) -> dict[str, Any]:
        return dict(self.settings)


@runtime_checkable
class Backend(Protocol):
    name: str
    threads: int

    def fingerprint(self) -> BackendInfo: ...

    def time_model(self, model: nn.Module, shape: Shape | Sequence[Shape],
                   protocol: TimingProtocol = TimingProtocol()) -> LatencyStats: ...

    def time_row(self, module: nn.Module, inputs: Inputs,
                 protocol: TimingProtocol = TimingProtocol()) -> LatencyStats: ...


def model_timer(backend: Backend, model: nn.Module, shape: Shape | Sequence[Shape]
                ) -> Callable[[TimingProtocol], LatencyStats]:
    """A callable timing `model` on random inputs of `shape` under any protocol, prepared once where the
    backend prepares (ORT exports and loads once); a backend without `timer` times afresh each call."""
    timer = getattr(backend, "timer", None)
    if timer is None:
        return lambda protocol: backend.time_model(model, shape, protocol)
    return timer(model, random_inputs(shape))


def time_each(backend: Backend, items: Iterable[tuple[nn.Module, Inputs]],
              protocol: TimingProtocol) -> Iterator[LatencyStats]:
    """Each (module, inputs) timed alone, in order, by the backend's batch path where it has one."""
    batch = getattr(backend, "time_rows", None)
    if batch is not None:
        yield from batch(items, protocol)
        return
    for module, inputs in items:
        yield backend.time_row(module, inputs, protocol)


def settings_tuple(settings: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A settings mapping as sorted pairs, lists made tuples so the info stays hashable."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in settings.items()))


def random_inputs(shape: Shape | Sequence[Shape], *, seed: int = 0) -> Inputs:
    """One tensor for one shape `(b, c, h, w)`; a list of tensors for a sequence of shapes."""
    g = torch.Generator().manual_seed(seed)
    if _is_shape(shape):
        return torch.randn(*shape, generator=g)
    shapes = list(shape)
    if not shapes or not all(_is_shape(s) for s in shapes):
        raise ValueError(f"shape= must be a tuple of ints or a sequence of them, got {shape!r}")
    return [torch.randn(*s, generator=g) for s in shapes]


def input_shapes(inputs: Inputs) -> tuple[Shape, ...]:
    """The shapes of a module's inputs, one per tensor."""
    tensors = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    return tuple(tuple(t.shape) for t in tensors)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def check_threads(threads: int) -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads= must be an integer >= 1, got {threads!r}")
    return threads


def _is_shape(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) > 0
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value))
