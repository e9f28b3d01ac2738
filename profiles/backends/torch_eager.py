"""Eager PyTorch: the protocol of profiles.latency (warm-up by count and time, pinned intra-op threads,
inference mode, CUDA synchronisation around every timed call on a GPU)."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from ..latency import LatencyStats, TimingProtocol, thread_count, time_module
from .base import BackendInfo, Inputs, Shape, check_threads, dtype_name, random_inputs, settings_tuple


class TorchBackend:
    """Eager torch on `device` (cpu or cuda) in `dtype` with `threads` intra-op threads."""

    name = "torch"

    def __init__(self, *, threads: int = 1, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        self.threads = check_threads(threads)
        try:
            self.device = torch.device(device)
        except RuntimeError as e:
            raise ValueError(f"device={device!r}: {e}") from None
        if self.device.type not in ("cpu", "cuda"):
            raise ValueError(f"device={device!r}: the torch backend times cpu and cuda")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype= must be a floating torch dtype, got {dtype!r}")
        self.dtype = dtype
        self._overhead_ms: float | None = None  # one forward pre-hook's cost (in-context timing)
        self._clock: Any = None

    def fingerprint(self) -> BackendInfo:
        return BackendInfo(name=self.name, version=torch.__version__, device=str(self.device),
                           dtype=dtype_name(self.dtype), threads=self.threads,
                           settings=settings_tuple(self._settings()))

    def time_model(self, model: nn.Module, shape: Shape | Sequence[Shape],
                   protocol: TimingProtocol = TimingProtocol()) -> LatencyStats:
        return self.time_row(model, random_inputs(shape), protocol)

    def time_row(self, module: nn.Module, inputs: Inputs,
                 protocol: TimingProtocol = TimingProtocol()) -> LatencyStats:
        return time_module(module, inputs, device=str(self.device), dtype=self.dtype, threads=self.threads,
                           protocol=protocol)

    def timer(self, module: nn.Module, inputs: Inputs) -> Callable[[TimingProtocol], LatencyStats]:
        """Times `module(inputs)` under any protocol (nothing to prepare in eager mode)."""
        return lambda protocol: self.time_row(module, inputs, protocol)

    def time_in_context(self, model: nn.Module, shape: Shape, protocol: TimingProtocol = TimingProtocol(),
                        *, estimator: str | None = None, clock: Any = None) -> Any:
        """Each row of `model` timed inside its whole forward passes (profiles.incontext): CPU stamps, or
        CUDA events on a GPU (`clock` overrides, for tests); the hook's cost measured once per backend."""
        from ..incontext import DEFAULT_ESTIMATOR, clock_for, hook_overhead_ms, time_in_context

        model = model.to(device=self.device, dtype=self.dtype).eval()
        x = random_inputs(shape).to(device=self.device, dtype=self.dtype)
        clock = clock or self._clock or clock_for(self.device)
        if self._overhead_ms is None or clock is not self._clock:
            with thread_count(self.threads):
                self._overhead_ms = hook_overhead_ms(clock, device=self.device)
            self._clock = clock
        return time_in_context(model, x, protocol=protocol, clock=clock, overhead_ms=self._overhead_ms,
                               estimator=estimator or DEFAULT_ESTIMATOR, threads=self.threads)

    def time_rows(self, items: Iterable[tuple[nn.Module, Inputs]],
                  protocol: TimingProtocol = TimingProtocol()) -> Iterator[LatencyStats]:
        """Each (module, inputs) timed alone, in order."""
        for module, inputs in items:
            yield self.time_row(module, inputs, protocol)

    def _settings(self) -> dict[str, Any]:
        s: dict[str, Any] = {"mode": "eager, inference_mode", "mkldnn": bool(torch.backends.mkldnn.enabled)}
        if self.device.type == "cuda":
            s["gpu_model"] = torch.cuda.get_device_name(self.device)
            s["cudnn_version"] = torch.backends.cudnn.version()
            s["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
        return s
