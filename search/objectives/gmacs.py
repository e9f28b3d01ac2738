"""`gmacs`: the candidate's fvcore GMACs at the real image size (every row, the head included).

A baseline that is hard to beat on trained results: under a latency budget it picks the candidate that
spends the most arithmetic, and it reads the image size.
"""
from __future__ import annotations

from typing import Sequence

from .base import ObjectiveContext, ObjectiveValue, RowTerms
from .registry import register_objective


@register_objective("gmacs", uses_imgsz=True, description="fvcore GMACs at the real image size, all rows")
def gmacs(rows: Sequence[RowTerms], ctx: ObjectiveContext) -> ObjectiveValue:
    return ObjectiveValue(sum(r.cost.macs for r in rows) / 1e9)
