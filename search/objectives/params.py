"""`params`: the candidate's parameter count in millions (every row, as built): a size baseline."""
from __future__ import annotations

from typing import Sequence

from .base import ObjectiveContext, ObjectiveValue, RowTerms
from .registry import register_objective


@register_objective("params", description="parameters in millions, all rows, as built")
def params(rows: Sequence[RowTerms], ctx: ObjectiveContext) -> ObjectiveValue:
    return ObjectiveValue(sum(r.cost.params for r in rows) / 1e6)
