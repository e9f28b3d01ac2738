"""The number checks dimension settings share."""
from __future__ import annotations

from typing import Any

from zoo.limits import number_problem


def numbers(v: Any, *, positive: bool = False, integer: bool = False, limit: float) -> bool:
    """A non-empty list of finite numbers with |x| <= limit (compared before any float() can overflow)."""
    return (isinstance(v, list) and bool(v) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and number_problem(x, limit=limit) is None
        and (not positive or x > 0) and (not integer or isinstance(x, int)) for x in v))


def integer(x: Any, key: Any, *, low: int, high: int, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or not low <= x <= high:
        raise ValueError(f"{key}: {x!r} is not {what} ({low}..{high})")
    return x
