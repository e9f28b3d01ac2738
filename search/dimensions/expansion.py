"""Expansion ratio: per row (an index, or every row of a block), at the position the block declares in its
registration (`expansion=`): the hidden width of a C3 or a bottleneck as a fraction of its output."""
from __future__ import annotations

from typing import Any

from zoo.limits import MAX_MULTIPLE, number_problem

from .argument import ArgumentDimension
from .base import register_dimension


@register_dimension
class Expansion(ArgumentDimension):
    name = "expansion"
    key = "expansions"
    order = 30
    kind = "expansion"
    prefix = "e"
    what = "expansion ratios"

    def item(self, x: Any, key: Any) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or number_problem(x, limit=MAX_MULTIPLE) \
                or x <= 0:
            raise ValueError(f"{key}: {x!r} is not an expansion ratio in (0, {MAX_MULTIPLE}]")
        return float(x)
