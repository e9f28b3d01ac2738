"""Search dimensions, one class per file, each registering itself (`@register_dimension`): width per stage,
depth per row, input size, kernel size, expansion ratio and block choice. A new dimension is one more
file imported here, or a class registered by a plugin or a test."""
from __future__ import annotations

from . import block, depth, expansion, imgsz, kernel, width  # noqa: F401  (registers them)
from .base import (DIMENSIONS, Candidate, Dimension, Knob, SpaceBase, Uniform, nearest, ordered,
                   register_dimension, setting_keys, unregister_dimension)
from .width import DEFAULT_WIDTHS

__all__ = ["DEFAULT_WIDTHS", "DIMENSIONS", "Candidate", "Dimension", "Knob", "SpaceBase", "Uniform", "nearest",
           "ordered", "register_dimension", "setting_keys", "unregister_dimension"]
