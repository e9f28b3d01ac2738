"""Latency backends: `get_backend("torch" | "onnxruntime", threads=..., ...)`; each times a whole model and a
single row alone at its real input shapes, and fingerprints the settings its numbers depend on."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import Backend, BackendError, BackendInfo, Inputs, input_shapes, random_inputs
from .torch_eager import TorchBackend


def _onnxruntime(**kw: Any) -> Backend:
    from .onnxrt import OnnxRuntimeBackend  # the onnx extra is imported only when asked for
    return OnnxRuntimeBackend(**kw)


BACKENDS: dict[str, Callable[..., Backend]] = {"torch": TorchBackend, "onnxruntime": _onnxruntime}


def get_backend(name: str, **settings: Any) -> Backend:
    """A backend by name with its settings (threads=, device=, dtype=, and the backend's own)."""
    try:
        make = BACKENDS[name]
    except KeyError:
        raise ValueError(f"backend={name!r}: one of {', '.join(BACKENDS)}") from None
    return make(**settings)


def recorded_settings(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The backend's own constructor settings that a fingerprint's settings record (ORT: optimisation
    level, exporter, opset), so that a table is used with the settings it was built with."""
    if name != "onnxruntime":
        return {}
    from .onnxrt import settings_kwargs
    return settings_kwargs(settings)


def backend_of(fingerprint: Any, *, backend: str | None = None, threads: int | None = None,
               device: str | None = None) -> Backend:
    """The backend a table's fingerprint (profiles.fingerprint.DeviceFingerprint) names, with the threads,
    device and backend settings it recorded: where that table's numbers are measured again. `backend`,
    `threads` and `device` (a command's flags) override the recorded ones; the recorded backend settings
    (ORT's optimisation level, exporter, opset) go only with the recorded backend."""
    name = backend or fingerprint.backend
    own = recorded_settings(name, dict(fingerprint.settings)) if name == fingerprint.backend else {}
    return get_backend(name, threads=fingerprint.threads if threads is None else threads,
                       device=fingerprint.device if device is None else device, **own)


__all__ = ["BACKENDS", "backend_of", "Backend", "BackendError", "BackendInfo", "Inputs", "TorchBackend", "get_backend",
           "input_shapes", "random_inputs", "recorded_settings"]
