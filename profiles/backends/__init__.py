"""Latency backends: `get_backend("torch" | "onnxruntime", threads=..., ...)`; each times a whole model and a
single row alone at its real input shapes, and fingerprints the settings its numbers depend on."""
from __future__ import annotations

from typing import Any, Callable

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


__all__ = ["BACKENDS", "Backend", "BackendError", "BackendInfo", "Inputs", "TorchBackend", "get_backend",
           "input_shapes", "random_inputs"]
