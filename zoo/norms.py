"""The BatchNorm settings of a build: YOLOv5's and Ultralytics' (eps 1e-3, momentum 0.03) unless the
family says otherwise for a config (Ultralytics' classification models keep torch's defaults, since its
ClassificationModel never runs initialize_weights). Carried, as the activation is, by a context variable
set only while a row is built, so no class attribute changes.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class NormSettings:
    """BatchNorm eps and momentum (eps changes eval outputs; momentum only training)."""

    eps: float = 1e-3
    momentum: float = 0.03


DEFAULT = NormSettings()
TORCH = NormSettings(1e-5, 0.1)  # nn.BatchNorm2d's own defaults
_current: contextvars.ContextVar[NormSettings] = contextvars.ContextVar("zoo_norm", default=DEFAULT)


def norm_settings() -> NormSettings:
    """The settings in force for the row being built (DEFAULT outside a build)."""
    return _current.get()


@contextlib.contextmanager
def norm_scope(settings: NormSettings | None) -> Iterator[None]:
    token = _current.set(settings or DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)
