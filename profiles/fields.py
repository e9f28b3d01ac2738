"""Field checks for records read from files zoo did not write itself (latency tables, export manifests,
runner measurements): one ValueError naming the field and what it holds, which the reader turns into a
one-line error naming the file and the line."""
from __future__ import annotations

import math
from typing import Any, Mapping


def text(r: Mapping[str, Any], k: str) -> str:
    v = r.get(k)
    if not isinstance(v, str) or not v:
        raise ValueError(f"{k} must be a non-empty string, got {v!r}")
    return v


def texts(r: Mapping[str, Any], k: str) -> list[str]:
    v = r.get(k, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{k} must be a list of strings")
    return v


def count(r: Mapping[str, Any], k: str) -> int:
    v = r.get(k)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{k} must be an integer >= 0, got {v!r}")
    return v


def number(r: Mapping[str, Any], k: str, *, at_least: float | None = None, positive: bool = False) -> float:
    """A finite number (bools refused), optionally >= `at_least` or > 0."""
    v = r.get(k)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{k} must be a finite number, got {v!r}")
    if at_least is not None and v < at_least:
        raise ValueError(f"{k} must be >= {at_least:g}, got {v!r}")
    if positive and v <= 0:
        raise ValueError(f"{k} must be > 0, got {v!r}")
    return float(v)


__all__ = ["count", "number", "text", "texts"]
