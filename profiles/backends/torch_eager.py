"""Eager PyTorch: the protocol of profiles.latency (warm-up by count and time, pinned intra-op threads,
inference mode, CUDA synchronisation around every timed call on a GPU)."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from ..latency import LatencyStats, TimingProtocol, time_module
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
